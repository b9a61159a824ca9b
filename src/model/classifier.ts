// Classifier: an ONNX image classifier run through ONNX Runtime with activation taps. One
// session, reused; inputs of any batch size are split into chunks; the tapped outputs are
// concatenated into one activation matrix [B x N] ready for the native kernels.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import * as ort from 'onnxruntime-node';

import type { ImageBatch } from '../data/index.js';

import { cardTaps } from './card.js';
import { probeLayers } from './layers.js';
import type { LayerInfo } from './layers.js';
import { decodeModel, ModelFormatError, realInputs, sha256, shapeOf, withExtraOutputs } from './onnx.js';
import type { Graph } from './onnx-schema.js';
import { createSession } from './session.js';
import type { SessionSettings } from './session.js';
import { copyTapOutputs, layoutTaps, tapRunRows } from './tap-layout.js';
import type { TapLayout, TapPlan } from './tap-layout.js';
import { defaultNeuronBudget } from './tap-sample.js';
import { resolveTaps } from './taps.js';
import type { TapRequest, TapSpec } from './taps.js';

export interface Preprocess {
  /** Per-channel mean and std applied as (x - mean) / std before the model. */
  mean: number[];
  std: number[];
}

export interface ClassifierOptions extends SessionSettings {
  /**
   * Layers whose outputs form the activation vector (see TapSpec): 'default' (the model card's
   * detector taps when the model file has a card, else 'wide'), 'wide', 'auto', or names.
   */
  taps?: TapSpec;
  /**
   * Neurons the activation vector of 'wide' taps may hold (default defaultNeuronBudget): larger
   * layers contribute a seeded random sample of their neurons (the logits stay whole). Other taps
   * are taken whole.
   */
  neuronBudget?: number;
  /** Seed of those samples (default: random; the samples are recorded in the layout either way). */
  tapSeed?: number;
  /** Images per ONNX Runtime call (default 32). */
  batchSize?: number;
  preprocess?: Preprocess;
  /** [C, H, W], required only when the model leaves them symbolic. */
  inputShape?: number[];
}

export interface ClassifierOutput {
  rows: number;
  classes: number;
  /** [rows x classes] */
  logits: Float32Array;
  labels: Int32Array;
  /** Shape [rows x neurons]: the tapped outputs, flattened and concatenated in tap order. */
  activations: Float32Array;
}

export class ClassifierError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClassifierError';
  }
}

/**
 * An ONNX image classifier run through ONNX Runtime with activation taps: logits, predicted labels and
 * the tapped activation matrix [rows x neurons] (tapped outputs flattened and concatenated in tap
 * order; a large layer under the 'wide' neuron budget contributes a recorded sample of its neurons).
 *
 * Arguments (`load`): `taps` ('default': the model card's detector taps, else 'wide'; 'wide', 'auto'
 * or node/tensor names), `neuronBudget`, `tapSeed`, `batchSize` (32), `preprocess` (mean/std),
 * `inputShape` ([C, H, W] when symbolic), ONNX Runtime session settings.
 *
 * @example
 * const c = await Classifier.load('models/fmnist-cnn.onnx', { taps: 'auto' });
 * const { labels, logits, activations } = await c.run({ data, dims: [n, 1, 28, 28] });
 */
export class Classifier {
  private constructor(
    readonly source: string,
    readonly sha256: string,
    readonly inputName: string,
    /** [C, H, W] */
    readonly inputShape: number[],
    readonly logitsName: string,
    readonly classes: number,
    readonly taps: TapLayout[],
    readonly neurons: number,
    /** How the taps were chosen (rule, budget, sampled layers). */
    readonly tapPlan: TapPlan,
    readonly batchSize: number,
    private readonly session: ort.InferenceSession,
    private readonly bytes: Uint8Array,
    private readonly graph: Graph,
    private readonly settings: SessionSettings,
    private readonly preprocess?: Preprocess,
  ) {}

  static async load(model: string | Uint8Array, options: ClassifierOptions = {}): Promise<Classifier> {
    const source = typeof model === 'string' ? basename(model) : 'model';
    let bytes: Uint8Array;
    try {
      bytes = typeof model === 'string' ? new Uint8Array(await readFile(model)) : model;
    } catch (error) {
      throw new ClassifierError(
        `cannot read model ${String(model)}: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    const parsed = decodeModel(bytes, source);
    const graph = parsed.graph;
    const inputs = realInputs(graph);
    if (inputs.length !== 1) {
      throw new ClassifierError(
        `${source}: expected one image input but the model ` +
          `has ${inputs.length} (${inputs.map((i) => i.name).join(', ')})`,
      );
    }
    const input = inputs[0]!;
    const declared = shapeOf(input) ?? [];
    const inputShape = options.inputShape ?? declared.slice(1).map((d) => (typeof d === 'number' ? d : NaN));
    if (inputShape.length !== 3 || inputShape.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new ClassifierError(
        `${source}: input '${input.name}' has shape ` +
          `[${declared.join(', ')}]; expected [batch, C, H, W] with fixed C, H, W (pass inputShape for symbolic ones)`,
      );
    }
    const logitsName = graph.output?.[0]?.name;
    if (logitsName === undefined) throw new ModelFormatError(`${source}: the graph has no outputs`);
    const declaredLogits = shapeOf(graph.output![0]!);
    if (declaredLogits !== undefined && declaredLogits.length !== 2) {
      throw new ClassifierError(
        `${source} is not a classifier: its first output ` +
          `'${logitsName}' has shape [${declaredLogits.join(', ')}], expected [batch, classes]`,
      );
    }
    const plan = planTaps(options, model);
    const tapTensors = resolveTaps(graph, plan.spec, logitsName);
    const graphOutputs = new Set((graph.output ?? []).map((o) => o.name));
    const tapped = withExtraOutputs(
      bytes,
      tapTensors.filter((t) => !graphOutputs.has(t)),
    );
    const settings: SessionSettings = {
      ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
      ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
      ...(options.interOpThreads !== undefined ? { interOpThreads: options.interOpThreads } : {}),
    };
    const session = await createSession(tapped, settings);
    // A probe run learns each tap's size and checks that the first output is [batch, classes].
    const pixels = new Float32Array(inputShape.reduce((a, b) => a * b, 1)).fill(0.5);
    const probe = await session.run({ [input.name]: new ort.Tensor('float32', pixels, [1, ...inputShape]) }, [
      logitsName,
      ...tapTensors,
    ]);
    const logits = probe[logitsName]!;
    if (logits.dims.length !== 2 || logits.type !== 'float32') {
      await session.release();
      throw new ClassifierError(
        `${source} is not a classifier: its first output ` +
          `'${logitsName}' is ${logits.type} of shape [${logits.dims.join(', ')}], expected float32 [batch, classes]`,
      );
    }
    let layout: ReturnType<typeof layoutTaps>;
    try {
      layout = layoutTaps(probe, tapTensors, {
        lenient: plan.rule === 'wide',
        budget: plan.budget,
        logits: logitsName,
        ...(options.tapSeed !== undefined ? { seed: options.tapSeed } : {}),
        ...(plan.requests ? { requests: plan.requests } : {}),
      });
    } catch (error) {
      await session.release();
      throw new ClassifierError(`${source}: ${(error as Error).message}`);
    }
    const { taps, neurons: offset } = layout;
    const tapPlan: TapPlan = {
      rule: plan.rule,
      fullNeurons: taps.reduce((n, t) => n + t.fullSize, 0),
      budget: plan.budget,
      sampled: taps.filter((t) => t.sample !== undefined).length,
      skipped: layout.skipped,
    };
    const batchSize = options.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new ClassifierError(`Expected a positive integer for batchSize but received ${batchSize}`);
    if (options.preprocess) {
      const c = inputShape[0]!;
      const { mean, std } = options.preprocess;
      if (mean.length !== c || std.length !== c || std.some((s) => !(s > 0))) {
        throw new ClassifierError(
          `Expected ${c} means and ${c} positive stds for preprocess but received mean [${mean}] std [${std}]`,
        );
      }
    }
    return new Classifier(
      source,
      sha256(bytes),
      input.name,
      inputShape,
      logitsName,
      Number(logits.dims[1]),
      taps,
      offset,
      tapPlan,
      batchSize,
      session,
      bytes,
      graph,
      settings,
      options.preprocess,
    );
  }

  /** Every node output with its per-image shape (one probe run; for `nfp layers`). */
  async layers(): Promise<LayerInfo[]> {
    return probeLayers(this.bytes, this.graph, { name: this.inputName, shape: this.inputShape }, this.settings);
  }

  /**
   * Runs the model on NCHW images: logits, predicted labels and the tapped activation matrix.
   * `{ activations: false }` fetches the logits only (the activation matrix comes back empty).
   */
  async run(images: ImageBatch | ort.Tensor, options: { activations?: boolean } = {}): Promise<ClassifierOutput> {
    const { data, dims } = this.checkInput(images);
    const rows = dims[0]!;
    const perImage = this.inputShape[0]! * this.inputShape[1]! * this.inputShape[2]!;
    const taps = options.activations === false ? [] : this.taps;
    const logits = new Float32Array(rows * this.classes);
    const activations = new Float32Array(taps.length === 0 ? 0 : rows * this.neurons);
    const outputs = [this.logitsName, ...taps.map((t) => t.tensor)];
    const chunk = tapRunRows(taps, this.batchSize);
    for (let start = 0; start < rows; start += chunk) {
      const n = Math.min(chunk, rows - start);
      let x = data.subarray(start * perImage, (start + n) * perImage);
      if (this.preprocess) x = this.normalize(x);
      const result = await this.session.run(
        { [this.inputName]: new ort.Tensor('float32', x, [n, ...this.inputShape]) },
        outputs,
      );
      logits.set(result[this.logitsName]!.data as Float32Array, start * this.classes);
      copyTapOutputs(result, taps, n, this.neurons, activations, start);
    }
    return { rows, classes: this.classes, logits, labels: argmaxRows(logits, rows, this.classes), activations };
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  private checkInput(images: ImageBatch | ort.Tensor): { data: Float32Array; dims: readonly number[] } {
    const data = images.data;
    const dims = images.dims;
    if (!(data instanceof Float32Array)) {
      throw new ClassifierError(
        `Expected float32 image data for ${this.source} but received ${data?.constructor?.name ?? typeof data}`,
      );
    }
    const want = [this.inputShape[0], this.inputShape[1], this.inputShape[2]];
    if (
      dims.length !== 4 ||
      dims.slice(1).some((d, i) => d !== want[i]) ||
      !Number.isInteger(dims[0]) ||
      dims[0]! < 0
    ) {
      throw new ClassifierError(
        `Expected input of shape [N, ${want.join(', ')}] for ${this.source} but received [${dims.join(', ')}]`,
      );
    }
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new ClassifierError(
        `Expected ${expected} values for input of shape [${dims.join(', ')}] but received ${data.length}`,
      );
    }
    return { data, dims };
  }

  private normalize(x: Float32Array): Float32Array {
    const { mean, std } = this.preprocess!;
    const plane = this.inputShape[1]! * this.inputShape[2]!;
    const channels = this.inputShape[0]!;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const c = Math.floor(i / plane) % channels;
      out[i] = (x[i]! - mean[c]!) / std[c]!;
    }
    return out;
  }
}

export function argmaxRows(values: Float32Array, rows: number, cols: number): Int32Array {
  const labels = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (values[r * cols + c]! > values[r * cols + best]!) best = c;
    labels[r] = best;
  }
  return labels;
}

/** The tap rule and budget that apply to a load: 'default' becomes the card's taps or 'wide'. */
function planTaps(
  options: ClassifierOptions,
  model: string | Uint8Array,
): { spec: Exclude<TapSpec, 'default'>; rule: TapPlan['rule']; budget: number; requests?: Map<string, TapRequest> } {
  const asked = options.taps ?? 'default';
  let spec: Exclude<TapSpec, 'default'>;
  let rule: TapPlan['rule'];
  if (asked === 'default') {
    const card = typeof model === 'string' ? cardTaps(model) : undefined;
    spec = card ?? 'wide';
    rule = card !== undefined ? 'card' : 'wide';
  } else {
    spec = asked;
    rule = asked === 'wide' || asked === 'auto' ? asked : 'named';
  }
  // Only the 'wide' rule samples: named taps, a card's and 'auto' are taken whole, as asked.
  const budget = rule === 'wide' ? (options.neuronBudget ?? defaultNeuronBudget) : Number.POSITIVE_INFINITY;
  if (!(budget >= 1))
    throw new ClassifierError(`Expected a positive neuron budget for neuronBudget but received ${budget}`);
  const requests =
    Array.isArray(spec) && spec.some((t) => typeof t !== 'string')
      ? new Map(spec.filter((t): t is TapRequest => typeof t !== 'string').map((t) => [t.tensor, t]))
      : undefined;
  return { spec, rule, budget, ...(requests ? { requests } : {}) };
}
