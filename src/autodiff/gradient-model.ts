// GradientModel: a classifier whose single ONNX Runtime run returns logits, tapped activations
// and the gradient of a seeded loss (logit seed, tap seed, cross-entropy, Carlini-Wagner margin)
// w.r.t. the images.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import * as ort from 'onnxruntime-node';

import { Classifier, copyTapOutputs, expandTapSeed, tapRunRows, wholeLayout } from '../model/index.js';
import type { ImageBatch, Layout, OutputKind, TapLayout, TapSpec } from '../model/index.js';
import { createSession } from '../model/session.js';
import type { SessionSettings } from '../model/session.js';
import { classifierGradientBytes, reluTemperature } from './gradient-graph.js';
import { GradientError } from './rules/index.js';
import { GradientOutputs, SeedInputs } from './seeds.js';
import type { TapSeeding } from './seeds.js';

export interface GradientModelOptions extends SessionSettings {
  /** Tapped layers, as for Classifier (default 'default': the model card's taps, else 'wide'). */
  taps?: TapSpec;
  /** As for Classifier: the neuron budget of the taps and the seed of their samples. */
  neuronBudget?: number;
  tapSeed?: number;
  /** Images per ONNX Runtime call (default 32; a model that fixes its batch size runs at that size). */
  batchSize?: number;
  /**
   * Input values one gradient run may take at most: fewer images per call for large inputs (a
   * gradient run holds every intermediate tensor of its batch).
   */
  maxInputValuesPerRun?: number;
  /** Per-image shape in the model's layout, required only where the model leaves it symbolic (as Classifier). */
  inputShape?: number[];
  /** The input's layout where its declared shape does not tell (default: detected). */
  layout?: Layout;
  /**
   * BPDA for ReLUs (BackwardOptions): the gradient takes sigmoid(x / temperature) for each Relu's
   * step; logits and activations stay exact. Absent: the exact gradient.
   */
  reluSurrogate?: { temperature: number };
}

export interface GradientRequest {
  /** Shape [rows x classes]: adds sum(logitSeed * logits) to the loss. */
  logitSeed?: Float32Array;
  /** [rows x neurons], laid out like the activation matrix: adds sum(tapSeed * activations). */
  tapSeed?: Float32Array;
  /** Class per row: adds the summed cross-entropy of the logits against these labels. */
  labels?: Int32Array;
  /** Class per row: adds the Carlini-Wagner margin z_label - max_{j != label} z_j. */
  marginLabels?: Int32Array;
  /** false: leave the tapped activations out of the result (they are not fetched or copied). */
  activations?: boolean;
  /**
   * Seeds the taps in the graph from the activations (TapSeeding 'quadratic'; not with tapSeed; opset
   * 11+). The table: `index` [groups x width] the neuron (of the activation matrix; -1: none) of each
   * column for a group of rows, `quad`, `lin`, `center` [tableRows x width] and `constant` [tableRows];
   * a row's value is sum(0.5 quad d^2 + lin d) + constant over its group's columns, d = activation -
   * center. Per image: `group` [rows] and `rows` [rows x parts], the table rows it takes the largest of.
   * The result's `tapValue` is that largest value.
   */
  tapQuadratic?: {
    index: Int32Array;
    quad: Float32Array;
    lin: Float32Array;
    center: Float32Array;
    constant: Float32Array;
    group: Int32Array;
    rows: Int32Array;
  };
}

export interface GradientResult {
  rows: number;
  classes: number;
  /** [rows x classes] */
  logits: Float32Array;
  /** [rows x neurons], as Classifier.run returns them; empty with `activations: false`. */
  activations: Float32Array;
  /** Same shape as the images: d loss / d images. */
  grad: Float32Array;
  /** [rows] per-image cross-entropy, when labels were given. */
  loss?: Float32Array;
  /** [rows] per-image Carlini-Wagner margin, when marginLabels were given. */
  margin?: Float32Array;
  /** [rows] the quadratic tap term's value, with tapQuadratic. */
  tapValue?: Float32Array;
}

/**
 * A classifier that also returns input gradients: the library's reverse-mode transform appends the
 * backward graph to the ONNX model, so one ONNX Runtime run gives the logits, the tapped activations
 * and d loss / d images for a loss of logit seeds, tap seeds (adaptive attacks), cross-entropy and
 * the Carlini-Wagner margin. What every attack differentiates.
 *
 * Arguments (`load`): as Classifier (`taps`, `neuronBudget`, `tapSeed`, `batchSize`, `inputShape`).
 * Shapes: images float32 [N, C, H, W]; seeds [N x classes] and [N x neurons]; labels Int32Array [N].
 *
 * @example
 * const model = await GradientModel.load('models/fmnist-cnn.onnx', { taps: 'auto' });
 * const { grad, loss } = await model.gradient(images, { labels });
 */
export class GradientModel {
  /** The gradient graph with a tap seed input, built on the first request that seeds the taps. */
  #tapSeeded: Promise<ort.InferenceSession> | undefined;
  #tapQuadratic: Promise<ort.InferenceSession> | undefined;
  /** The last quadratic table's index, mapped to the whole-layer layout the graph sees (kept while fed again). */
  #index: { given: Int32Array; whole: BigInt64Array } | undefined;

  private constructor(
    /** The plain forward model (same taps), for runs that need no gradient. */
    readonly classifier: Classifier,
    /** The gradient graph without tap seeds: what attacks use, with no backward work for the taps. */
    private readonly session: ort.InferenceSession,
    readonly batchSize: number,
    private readonly build: (tapSeeds: TapSeeding) => Promise<ort.InferenceSession>,
  ) {}

  get inputShape(): number[] {
    return this.classifier.inputShape;
  }
  get layout(): Layout {
    return this.classifier.layout;
  }
  get outputKind(): OutputKind {
    return this.classifier.outputKind;
  }
  get classes(): number {
    return this.classifier.classes;
  }
  get taps(): TapLayout[] {
    return this.classifier.taps;
  }
  get neurons(): number {
    return this.classifier.neurons;
  }

  static async load(model: string | Uint8Array, options: GradientModelOptions = {}): Promise<GradientModel> {
    const source = typeof model === 'string' ? basename(model) : 'model';
    const bytes = typeof model === 'string' ? new Uint8Array(await readFile(model)) : model;
    const {
      taps,
      neuronBudget,
      tapSeed,
      batchSize: asked = 32,
      inputShape,
      maxInputValuesPerRun,
      layout,
      reluSurrogate,
      ...settings
    } = options;
    const backward = reluSurrogate !== undefined ? { reluSurrogate } : {};
    reluTemperature(backward);
    if (!Number.isInteger(asked) || asked < 1)
      throw new GradientError(`Expected a positive integer for batchSize but received ${asked}`);
    const capped = (shape: readonly number[]) =>
      maxInputValuesPerRun === undefined
        ? asked
        : Math.max(1, Math.min(asked, Math.floor(maxInputValuesPerRun / shape.reduce((a, b) => a * b, 1))));
    // The path, when there is one, so that the classifier (and banks fitted through it) name the model by its file.
    const classifier = await Classifier.load(typeof model === 'string' ? model : bytes, {
      ...settings,
      batchSize: inputShape ? capped(inputShape) : asked,
      ...(taps ? { taps } : {}),
      ...(neuronBudget !== undefined ? { neuronBudget } : {}),
      ...(tapSeed !== undefined ? { tapSeed } : {}),
      ...(inputShape ? { inputShape } : {}),
      ...(layout ? { layout } : {}),
    });
    const build = async (tapSeeds: TapSeeding) =>
      createSession(
        await classifierGradientBytes(
          bytes,
          source,
          {
            name: classifier.inputName,
            shape: classifier.inputShape,
            ...(classifier.fixedBatch !== undefined ? { batch: classifier.fixedBatch } : {}),
          },
          { logits: classifier.logitsName, classes: classifier.classes, taps: wholeLayout(classifier.taps) },
          settings,
          tapSeeds,
          backward,
        ),
        settings,
      );
    try {
      // A model that fixes its batch size runs at that size.
      const batchSize = classifier.fixedBatch ?? capped(classifier.inputShape);
      return new GradientModel(classifier, await build(false), batchSize, build);
    } catch (error) {
      await classifier.release();
      throw error;
    }
  }

  /** One forward and backward pass per chunk of `batchSize` images. */
  async gradient(images: ImageBatch, request: GradientRequest = {}): Promise<GradientResult> {
    const { data, dims } = images;
    const perImage = this.inputShape.reduce((a, v) => a * v, 1);
    if (
      !(data instanceof Float32Array) ||
      dims.length !== 4 ||
      dims.slice(1).some((d, i) => d !== this.inputShape[i]) ||
      data.length !== dims.reduce((a, v) => a * v, 1)
    ) {
      throw new GradientError(
        `Expected float32 images of shape [N, ${this.inputShape.join(', ')}] for images but ` +
          `received ${data?.constructor?.name} [${dims.join(', ')}] (${data?.length} values)`,
      );
    }
    const rows = dims[0]!;
    const k = this.classes;
    const n = this.neurons;
    check('logitSeed', request.logitSeed, rows * k);
    check('tapSeed', request.tapSeed, rows * n);
    if (request.tapSeed !== undefined && n === 0) throw new GradientError('Expected no tapSeed: the model has no taps');
    const onehot = request.labels === undefined ? undefined : oneHot('labels', request.labels, rows, k);
    const marginHot =
      request.marginLabels === undefined ? undefined : oneHot('marginLabels', request.marginLabels, rows, k);
    const logits = new Float32Array(rows * k);
    const grad = new Float32Array(rows * perImage);
    const loss = onehot === undefined ? undefined : new Float32Array(rows);
    const margin = marginHot === undefined ? undefined : new Float32Array(rows);
    const seeded = request.tapSeed !== undefined;
    const quadratic = request.tapQuadratic === undefined ? undefined : this.quadraticTable(request.tapQuadratic, rows);
    if (seeded && quadratic !== undefined)
      throw new GradientError('Expected tapSeed or tapQuadratic but received both');
    if (seeded) this.#tapSeeded ??= this.build(true);
    if (quadratic !== undefined) this.#tapQuadratic ??= this.build('quadratic');
    const session = seeded
      ? await this.#tapSeeded!
      : quadratic !== undefined
        ? await this.#tapQuadratic!
        : this.session;
    const tapValue = quadratic === undefined ? undefined : new Float32Array(rows);
    const taps = request.activations === false ? [] : this.taps;
    const activations = new Float32Array(taps.length === 0 ? 0 : rows * n);
    const outputs = [
      this.classifier.logitsName,
      ...taps.map((t) => t.tensor),
      GradientOutputs.grad,
      GradientOutputs.ceLoss,
      GradientOutputs.margin,
      ...(quadratic !== undefined ? [GradientOutputs.tapValue] : []),
    ];
    // A model that fixes its batch size gets every chunk padded to it with zero images and zero seeds.
    const fixed = this.classifier.fixedBatch;
    const chunk = tapRunRows(taps, this.batchSize);
    for (let start = 0; start < rows; start += chunk) {
      const m = Math.min(chunk, rows - start);
      const fed = fixed ?? m;
      const pad = (part: Float32Array, width: number) => {
        if (fed === m) return part;
        const padded = new Float32Array(fed * width);
        padded.set(part);
        return padded;
      };
      const rowsOf = (a: Float32Array | undefined, width: number) =>
        a === undefined ? new Float32Array(fed * width) : pad(a.subarray(start * width, (start + m) * width), width);
      const feeds: Record<string, ort.Tensor> = {
        [this.classifier.inputName]: new ort.Tensor('float32', rowsOf(data, perImage), [fed, ...this.inputShape]),
        [SeedInputs.logits]: new ort.Tensor('float32', rowsOf(request.logitSeed, k), [fed, k]),
        [SeedInputs.onehot]: new ort.Tensor('float32', rowsOf(onehot, k), [fed, k]),
        [SeedInputs.marginOnehot]: new ort.Tensor('float32', rowsOf(marginHot, k), [fed, k]),
      };
      if (seeded) {
        // Sampled layers take the seed of their sampled neurons, zero elsewhere.
        const seed = expandTapSeed(rowsOf(request.tapSeed, n), this.taps, fed, n);
        feeds[SeedInputs.taps] = new ort.Tensor('float32', seed, [fed, seed.length / fed]);
      }
      if (quadratic !== undefined) {
        const { parts, width, q } = quadratic;
        const chunkRows = new BigInt64Array(fed * parts);
        const chunkGroups = new BigInt64Array(fed);
        for (let i = 0; i < m * parts; i++) chunkRows[i] = BigInt(q.rows[start * parts + i]!);
        for (let i = 0; i < m; i++) chunkGroups[i] = BigInt(q.group[start + i]!);
        const tableRows = q.constant.length;
        feeds[SeedInputs.tapIndex] = new ort.Tensor('int64', quadratic.index, [quadratic.index.length / width, width]);
        feeds[SeedInputs.tapGroup] = new ort.Tensor('int64', chunkGroups, [fed]);
        feeds[SeedInputs.tapQuad] = new ort.Tensor('float32', q.quad, [tableRows, width]);
        feeds[SeedInputs.tapLin] = new ort.Tensor('float32', q.lin, [tableRows, width]);
        feeds[SeedInputs.tapCenter] = new ort.Tensor('float32', q.center, [tableRows, width]);
        feeds[SeedInputs.tapConst] = new ort.Tensor('float32', q.constant, [tableRows]);
        feeds[SeedInputs.tapRows] = new ort.Tensor('int64', chunkRows, [fed, parts]);
      }
      const result = await session.run(feeds, outputs);
      const first = (name: string, width: number) => (result[name]!.data as Float32Array).subarray(0, m * width);
      logits.set(first(this.classifier.logitsName, k), start * k);
      grad.set(first(GradientOutputs.grad, perImage), start * perImage);
      loss?.set(first(GradientOutputs.ceLoss, 1), start);
      margin?.set(first(GradientOutputs.margin, 1), start);
      tapValue?.set(first(GradientOutputs.tapValue, 1), start);
      copyTapOutputs(result, taps, m, n, activations, start, fed);
    }
    return {
      rows,
      classes: k,
      logits,
      activations,
      grad,
      ...(loss ? { loss } : {}),
      ...(margin ? { margin } : {}),
      ...(tapValue ? { tapValue } : {}),
    };
  }

  /** A request's quadratic table, checked, its index mapped to the whole-layer layout (kept while fed again). */
  private quadraticTable(
    q: NonNullable<GradientRequest['tapQuadratic']>,
    rows: number,
  ): { parts: number; width: number; index: BigInt64Array; q: NonNullable<GradientRequest['tapQuadratic']> } {
    const n = this.neurons;
    if (n === 0) throw new GradientError('Expected no tapQuadratic: the model has no taps');
    const tableRows = q.constant instanceof Float32Array ? q.constant.length : 0;
    const groups = q.group instanceof Int32Array ? q.group.length : -1;
    if (tableRows === 0) throw new GradientError('Expected a non-empty Float32Array for tapQuadratic.constant');
    if (!(q.index instanceof Int32Array) || q.index.length === 0)
      throw new GradientError('Expected a non-empty Int32Array for tapQuadratic.index');
    if (!(q.quad instanceof Float32Array) || q.quad.length % tableRows !== 0)
      throw new GradientError(`Expected a Float32Array of ${tableRows} rows for tapQuadratic.quad`);
    const width = q.quad.length / tableRows;
    if (q.index.length % width !== 0)
      throw new GradientError(
        `Expected rows of ${width} columns for tapQuadratic.index but received ${q.index.length}`,
      );
    for (const [name, a] of [
      ['tapQuadratic.lin', q.lin],
      ['tapQuadratic.center', q.center],
    ] as const)
      if (!(a instanceof Float32Array) || a.length !== tableRows * width)
        throw new GradientError(`Expected a Float32Array of ${tableRows} x ${width} values for ${name}`);
    if (groups !== rows) throw new GradientError(`Expected an Int32Array of ${rows} groups for tapQuadratic.group`);
    if (!(q.rows instanceof Int32Array) || q.rows.length === 0 || q.rows.length % rows !== 0)
      throw new GradientError(
        `Expected an Int32Array of ${rows} x parts table rows for tapQuadratic.rows but received ${q.rows?.length}`,
      );
    const badRow = q.rows.find((r) => !(r >= 0 && r < tableRows));
    if (badRow !== undefined)
      throw new GradientError(`Expected table rows in [0, ${tableRows}) for tapQuadratic.rows but received ${badRow}`);
    const indexRows = q.index.length / width;
    const badGroup = q.group.find((g) => !(g >= 0 && g < indexRows));
    if (badGroup !== undefined)
      throw new GradientError(`Expected groups in [0, ${indexRows}) for tapQuadratic.group but received ${badGroup}`);
    if (this.#index?.given !== q.index) this.#index = { given: q.index, whole: this.wholeIndex(q.index) };
    return { parts: q.rows.length / rows, width, index: this.#index.whole, q };
  }

  /** Activation-matrix neurons as the gradient graph's whole-layer columns; -1 (none) as the zero column past them. */
  private wholeIndex(index: Int32Array): BigInt64Array {
    const n = this.neurons;
    const whole = wholeLayout(this.taps);
    const width = whole.reduce((w, t) => w + t.size, 0);
    const column = new Int32Array(n);
    this.taps.forEach((tap, t) => {
      for (let j = 0; j < tap.size; j++)
        column[tap.offset + j] = whole[t]!.offset + (tap.indices === undefined ? j : tap.indices[j]!);
    });
    return BigInt64Array.from(index, (i) => {
      if (i === -1) return BigInt(width);
      if (!(Number.isInteger(i) && i >= 0 && i < n))
        throw new GradientError(`Expected neurons in [0, ${n}) or -1 for tapQuadratic.index but received ${i}`);
      return BigInt(column[i]!);
    });
  }

  /** Logits only, from the plain forward model (no gradient graph, no taps fetched). */
  async logits(images: ImageBatch): Promise<Float32Array> {
    return (await this.classifier.run(images, { activations: false })).logits;
  }

  async release(): Promise<void> {
    const seeded = this.#tapSeeded;
    this.#tapSeeded = undefined;
    const quadratic = this.#tapQuadratic;
    this.#tapQuadratic = undefined;
    await quadratic?.then(
      (s) => s.release(),
      () => {},
    );
    await Promise.all([
      this.session.release(),
      this.classifier.release(),
      seeded?.then(
        (s) => s.release(),
        () => undefined,
      ),
    ]);
  }
}

function check(name: string, value: Float32Array | undefined, length: number): void {
  if (value !== undefined && (!(value instanceof Float32Array) || value.length !== length)) {
    throw new GradientError(
      `Expected a Float32Array ` +
        `of ${length} values for ${name} but received ${value?.constructor?.name} of ${value?.length}`,
    );
  }
}

function oneHot(name: string, labels: Int32Array, rows: number, classes: number): Float32Array {
  if (!(labels instanceof Int32Array) || labels.length !== rows) {
    throw new GradientError(
      `Expected an Int32Array ` +
        `of ${rows} labels for ${name} but received ${labels?.constructor?.name} of ${labels?.length}`,
    );
  }
  const out = new Float32Array(rows * classes);
  labels.forEach((c, r) => {
    if (!Number.isInteger(c) || c < 0 || c >= classes)
      throw new GradientError(`Expected labels in [0, ${classes}) for ${name} but received ${c} at row ${r}`);
    out[r * classes + c] = 1;
  });
  return out;
}
