// Classifier: an ONNX image classifier run through ONNX Runtime with activation taps. One
// session, reused; inputs of any batch size are split into chunks (padded to the model's batch
// size when it fixes one); the tapped outputs are concatenated into one activation matrix [B x N]
// ready for the native kernels. Images come in the model's own layout (channels first or last), and
// the logits are taken before a trailing Softmax / LogSoftmax (signature.ts).
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import * as ort from 'onnxruntime-node';

import type { ImageBatch } from '../data/index.js';

import { cardTaps } from './card.js';
import { probeLayers } from './layers.js';
import type { LayerInfo } from './layers.js';
import type { Layout } from '../data/layout.js';
import { decodeModel, sha256, shapeOf, withExtraOutputs, withSampleGathers } from './onnx.js';
import type { Graph } from './onnx-schema.js';
import { SignatureError, imageInput, logitsOutput, toChannelsFirst } from './signature.js';
import type { ImageInput, OutputKind } from './signature.js';
import { createSession } from './session.js';
import type { SessionSettings } from './session.js';
import {
  TapActivations,
  copyTapOutputs,
  fetchedValues,
  layoutTaps,
  planReadout,
  sampleOutputName,
  tapRead,
  tapRunRows,
} from './tap-layout.js';
import type { TapLayout, TapPlan, TapRead } from './tap-layout.js';
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
  /**
   * The per-image shape in the model's layout ([C, H, W], or [H, W, C] channels-last), required only
   * where the model leaves it symbolic; a channels-last model also accepts it channels-first.
   */
  inputShape?: number[];
  /** The input's layout, where its declared shape does not tell (default: detected from the shape). */
  layout?: Layout;
  /**
   * Whether sampled layers come back from ONNX Runtime as their samples, gathered in the graph (true),
   * or whole, the sample picked afterwards (false). 'auto' (the default) gathers when the sampled layers
   * hold at least gatherSamplesFrom values per image: on ResNet-50's wide taps (9.8 million) gathering
   * halved detect(), while on the small CNN with four sampled layers (50,176 values) it made runs 27% slower.
   */
  gatherSamples?: boolean | 'auto';
  /**
   * Neurons of the activation vector (indices) that runTaps returns, the others not fetched: each
   * tapped layer's are gathered in the graph (planReadout). What detect() asks for: its bank's
   * neurons. run() still returns every neuron.
   */
  readout?: Uint32Array;
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

/** One ONNX Runtime call of Classifier.runTaps: rows start .. start + rows of the call's images. */
export interface TapRun {
  start: number;
  rows: number;
  /** [rows x classes], a view on ONNX Runtime's output. */
  logits: Float32Array;
  labels: Int32Array;
  /** The tapped outputs as ONNX Runtime returned them. */
  taps: TapActivations;
}

/** Values per image of sampled layers from which 'auto' gathers the samples in the graph (4 MB per image). */
export const gatherSamplesFrom = 1_000_000;

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
    /** Per-image shape in the model's layout: [C, H, W], or [H, W, C] for a channels-last model. */
    readonly inputShape: number[],
    readonly layout: Layout,
    /** The batch size the model fixes, or undefined for a free batch axis. */
    readonly fixedBatch: number | undefined,
    /** The logits tensor: the first output, or the input of its trailing Softmax / LogSoftmax. */
    readonly logitsName: string,
    /** What the model's first output holds. */
    readonly outputKind: OutputKind,
    readonly classes: number,
    readonly taps: TapLayout[],
    readonly neurons: number,
    /** How the taps were chosen (rule, budget, sampled layers). */
    readonly tapPlan: TapPlan,
    readonly batchSize: number,
    /** The session with every tap (run()); made again from fullModel on first use when a readout took its place. */
    private session: ort.InferenceSession | undefined,
    private readonly fullModel: () => Uint8Array,
    /** The readout's session (runTaps), when there is a readout. */
    private readonly readoutSession: ort.InferenceSession | undefined,
    private readonly bytes: Uint8Array,
    private readonly graph: Graph,
    private readonly settings: SessionSettings,
    /** Whether sampled layers come back as their samples (see tapRead). */
    private readonly gathered: boolean,
    /**
     * How runTaps reads each tap: the readout's reads, or tapRead's. One array for the classifier's
     * life: it keys the bank's binding to this layout.
     */
    readonly tapReads: readonly TapRead[],
    private readonly preprocess?: Preprocess,
  ) {}

  /** Each tap's buffer as runTaps returns it: its width per image and, unless in order, its neurons' columns. */
  get tapShapes(): Array<{ width: number; columns?: Uint32Array }> {
    return this.tapReads.map((read) => ({
      width: read.width,
      ...(read.columns !== undefined ? { columns: read.columns } : {}),
    }));
  }

  /** The outputs runTaps fetches: the logits and the tapped outputs it reads (fixed with tapReads). */
  get tapOutputs(): string[] {
    this.#tapOutputs ??= [
      ...new Set([this.logitsName, ...this.tapReads.flatMap((r) => (r.output === undefined ? [] : [r.output]))]),
    ];
    return this.#tapOutputs;
  }

  #tapOutputs: string[] | undefined;

  /** Values per image runTaps fetches besides the logits' (the readout's neurons, or the tapped layers). */
  get fetchedPerImage(): number {
    return fetchedValues(this.tapReads);
  }

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
    let input: ImageInput;
    let out: ReturnType<typeof logitsOutput>;
    try {
      input = imageInput(graph, source, options.layout);
      out = logitsOutput(graph, source);
    } catch (error) {
      throw error instanceof SignatureError ? new ClassifierError(error.message) : error;
    }
    const inputShape = resolveInputShape(input, options.inputShape, source);
    const logitsName = out.logits;
    const declaredLogits = shapeOf(graph.output![0]!);
    if (declaredLogits !== undefined && declaredLogits.length !== 2) {
      throw new ClassifierError(
        `${source} is not a classifier: its first output ` +
          `'${out.output}' has shape [${declaredLogits.join(', ')}], expected [batch, classes]`,
      );
    }
    const plan = planTaps(options, model);
    const tapTensors = resolveTaps(graph, plan.spec, logitsName);
    const graphOutputs = new Set((graph.output ?? []).map((o) => o.name));
    const settings: SessionSettings = {
      ...(options.executionProviders ? { executionProviders: options.executionProviders } : {}),
      ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}),
      ...(options.interOpThreads !== undefined ? { interOpThreads: options.interOpThreads } : {}),
      ...(options.allowSpinning !== undefined ? { allowSpinning: options.allowSpinning } : {}),
    };
    // The model with every tap as an output: what run() runs, unless sampled layers are gathered (below).
    // Made on demand, not kept: it is as large as the model.
    let fullModel = () =>
      withExtraOutputs(
        bytes,
        [...new Set([logitsName, ...tapTensors])].filter((t) => !graphOutputs.has(t)),
      );
    const session = await createSession(fullModel(), settings);
    // A probe run learns each tap's size and checks that the first output is [batch, classes].
    // A model that fixes its batch size is probed (and run) at that size.
    const probeRows = input.batch ?? 1;
    const pixels = new Float32Array(probeRows * inputShape.reduce((a, b) => a * b, 1)).fill(0.5);
    const probe = await session.run({ [input.name]: new ort.Tensor('float32', pixels, [probeRows, ...inputShape]) }, [
      logitsName,
      ...tapTensors,
    ]);
    const logits = probe[logitsName]!;
    if (logits.dims.length !== 2 || logits.type !== 'float32') {
      await session.release();
      const which =
        out.kind === 'logits'
          ? 'its first output'
          : `the input of its final ${out.kind === 'probabilities' ? 'Softmax' : 'LogSoftmax'}`;
      throw new ClassifierError(
        `${source} is not a classifier: ${which} ` +
          `'${logitsName}' is ${logits.type} of shape [${logits.dims.join(', ')}], expected float32 [batch, classes]`,
      );
    }
    let layout: ReturnType<typeof layoutTaps>;
    try {
      layout = layoutTaps(probe, tapTensors, {
        lenient: plan.rule === 'wide',
        budget: plan.budget,
        rows: probeRows,
        logits: logitsName,
        ...(options.tapSeed !== undefined ? { seed: options.tapSeed } : {}),
        ...(plan.requests ? { requests: plan.requests } : {}),
      });
    } catch (error) {
      await session.release();
      throw new ClassifierError(`${source}: ${(error as Error).message}`);
    }
    const { taps, neurons: offset } = layout;
    // Sampled layers come back as their samples: a second session whose graph gathers them, checked
    // against the whole layers of the probe run, replaces the first.
    const run1 = { [input.name]: new ort.Tensor('float32', pixels, [probeRows, ...inputShape]) };
    let fullSession = session;
    let gathered = false;
    const sampled = taps.filter((t) => t.indices !== undefined);
    const gatherOption = options.gatherSamples ?? 'auto';
    const gatherWanted =
      gatherOption === 'auto' ? sampled.reduce((n, t) => n + t.fullSize, 0) >= gatherSamplesFrom : gatherOption;
    const sampleGathers = sampled.map((t) => ({
      tensor: t.tensor,
      output: sampleOutputName(t.tensor),
      indices: t.indices!,
    }));
    if (sampled.length > 0 && gatherWanted) {
      const whole = taps.filter((t) => t.indices === undefined).map((t) => t.tensor);
      fullModel = () =>
        withSampleGathers(
          bytes,
          [...new Set([logitsName, ...whole])].filter((t) => !graphOutputs.has(t)),
          sampleGathers,
        );
      fullSession = await gatheringSession(
        fullModel(),
        settings,
        session,
        run1,
        probeRows,
        probe,
        source,
        sampleGathers,
      );
      gathered = true;
    }
    let tapReads: readonly TapRead[] = taps.map((t) => tapRead(t, gathered));
    // A readout: runTaps gets the asked-for neurons alone, from a session whose graph gathers them and
    // leaves the tapped layers inside (a layer that is a graph output costs ONNX Runtime a copy out of
    // its blocked layout and a fresh buffer per run, even when not fetched). Taken when it fetches at
    // most a quarter of the values: gathering most of a layer in the graph costs more than it saves
    // (a 2,000-per-class bank with k = 10 over the CNN's five taps reads every neuron). run() then
    // builds the full session again on its first call, so that serving holds one session.
    let readoutSession: ort.InferenceSession | undefined;
    if (options.readout !== undefined) {
      let readout: ReturnType<typeof planReadout>;
      try {
        readout = planReadout(taps, options.readout, logitsName);
      } catch (error) {
        await fullSession.release();
        throw new ClassifierError(`${source}: ${(error as Error).message}`);
      }
      if (4 * fetchedValues(readout.reads) <= fetchedValues(tapReads)) {
        readoutSession = await gatheringSession(
          withSampleGathers(bytes, graphOutputs.has(logitsName) ? [] : [logitsName], readout.gathers),
          settings,
          undefined,
          run1,
          probeRows,
          probe,
          source,
          readout.gathers,
        ).catch(async (error: unknown) => {
          await fullSession.release();
          throw error;
        });
        await fullSession.release();
        tapReads = readout.reads;
      }
    }
    const tapPlan: TapPlan = {
      rule: plan.rule,
      fullNeurons: taps.reduce((n, t) => n + t.fullSize, 0),
      budget: plan.budget,
      sampled: taps.filter((t) => t.sample !== undefined).length,
      skipped: layout.skipped,
    };
    if (options.batchSize !== undefined && (!Number.isInteger(options.batchSize) || options.batchSize < 1))
      throw new ClassifierError(`Expected a positive integer for batchSize but received ${options.batchSize}`);
    // A model that fixes its batch size runs at that size (the last chunk padded).
    const batchSize = input.batch ?? options.batchSize ?? 32;
    if (options.preprocess) {
      const c = toChannelsFirst(inputShape, input.layout)[0]!;
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
      input.layout,
      input.batch,
      logitsName,
      out.kind,
      Number(logits.dims[1]),
      taps,
      offset,
      tapPlan,
      batchSize,
      readoutSession === undefined ? fullSession : undefined,
      fullModel,
      readoutSession,
      bytes,
      graph,
      settings,
      gathered,
      tapReads,
      options.preprocess,
    );
  }

  /** Every node output with its per-image shape (one probe run; for `nfp layers`). */
  async layers(): Promise<LayerInfo[]> {
    return probeLayers(this.bytes, this.graph, { name: this.inputName, shape: this.inputShape }, this.settings, {
      batch: this.fixedBatch ?? 1,
    });
  }

  /**
   * Runs the model on images in its layout (NCHW, or NHWC channels-last): logits, predicted labels and the
   * tapped activation matrix.
   * `{ activations: false }` fetches the logits only (the activation matrix comes back empty).
   */
  async run(images: ImageBatch | ort.Tensor, options: { activations?: boolean } = {}): Promise<ClassifierOutput> {
    const rows = this.checkInput(images).dims[0]!;
    const taps = options.activations === false ? [] : this.taps;
    const logits = new Float32Array(rows * this.classes);
    const activations = new Float32Array(taps.length === 0 ? 0 : rows * this.neurons);
    const outputs = [this.logitsName, ...taps.map((t) => tapRead(t, this.gathered).output)];
    const chunk = tapRunRows(taps, this.batchSize, this.gathered);
    for await (const { start, rows: n, ran, result } of this.runs(images, outputs, chunk)) {
      logits.set((result[this.logitsName]!.data as Float32Array).subarray(0, n * this.classes), start * this.classes);
      copyTapOutputs(result, taps, n, this.neurons, activations, start, ran, this.gathered);
    }
    return { rows, classes: this.classes, logits, labels: argmaxRows(logits, rows, this.classes), activations };
  }

  /**
   * run() without the copy into one activation matrix: one TapRun per ONNX Runtime call (at most the
   * batch size, see tapRunRows), its tapped outputs left where ONNX Runtime put them, for the native
   * scorer to read in place (what detect() does: on a small model the copy cost more than the scoring).
   */
  async *runTaps(images: ImageBatch | ort.Tensor): AsyncGenerator<TapRun> {
    const chunk = tapRunRows(this.taps, this.batchSize, this.gathered, this.tapReads);
    const session = await this.tapSession();
    for await (const { start, rows, ran, result } of this.runs(images, this.tapOutputs, chunk, session)) {
      const logits = (result[this.logitsName]!.data as Float32Array).subarray(0, rows * this.classes);
      yield {
        start,
        rows,
        logits,
        labels: argmaxRows(logits, rows, this.classes),
        taps: new TapActivations(result, this.taps, rows, this.neurons, ran, this.tapReads),
      };
    }
  }

  /** The ONNX Runtime calls over the images, `chunk` at a time: `ran` images each, the first `rows` of them real. */
  private async *runs(
    images: ImageBatch | ort.Tensor,
    outputs: string[],
    chunk: number,
    session?: ort.InferenceSession,
  ): AsyncGenerator<{ start: number; rows: number; ran: number; result: ort.InferenceSession.ReturnType }> {
    const { data, dims } = this.checkInput(images);
    const rows = dims[0]!;
    const perImage = this.inputShape[0]! * this.inputShape[1]! * this.inputShape[2]!;
    const fixed = this.fixedBatch;
    for (let start = 0; start < rows; start += chunk) {
      const n = Math.min(chunk, rows - start);
      let x = data.subarray(start * perImage, (start + n) * perImage);
      if (this.preprocess) x = this.normalize(x);
      if (fixed !== undefined && n < fixed) {
        const padded = new Float32Array(fixed * perImage);
        padded.set(x);
        x = padded;
      }
      const result = await (session ?? (await this.fullSession())).run(
        { [this.inputName]: new ort.Tensor('float32', x, [fixed ?? n, ...this.inputShape]) },
        outputs,
      );
      yield { start, rows: n, ran: fixed ?? n, result };
    }
  }

  /** The session runTaps runs: the readout's, else the full one. */
  private async tapSession(): Promise<ort.InferenceSession> {
    return this.readoutSession ?? (await this.fullSession());
  }

  private async fullSession(): Promise<ort.InferenceSession> {
    if (this.released) throw new ClassifierError(`${this.source}: the classifier was released`);
    // Concurrent first calls share one build.
    this.building ??=
      this.session !== undefined ? Promise.resolve(this.session) : createSession(this.fullModel(), this.settings);
    this.session = await this.building;
    return this.session;
  }

  private building: Promise<ort.InferenceSession> | undefined;
  private released = false;

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const full = this.session ?? (await this.building?.catch(() => undefined));
    await Promise.all([full?.release(), this.readoutSession?.release()]);
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
      const other = this.layout === 'nhwc' ? `; images [N, ${want[2]}, ${want[0]}, ${want[1]}] go in by toLayout` : '';
      throw new ClassifierError(
        `Expected input of shape [N, ${want.join(', ')}] (${this.layout.toUpperCase()}) for ${this.source} but ` +
          `received [${dims.join(', ')}]${other}`,
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
    const [channels, height, width] = toChannelsFirst(this.inputShape, this.layout) as [number, number, number];
    const plane = height * width;
    const last = this.layout === 'nhwc';
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const c = last ? i % channels : Math.floor(i / plane) % channels;
      out[i] = (x[i]! - mean[c]!) / std[c]!;
    }
    return out;
  }
}

/**
 * A session of `model`, whose graph gathers `gathers` from tapped layers, checked against the probe
 * run's whole layers; `previous` (the session it replaces) is released should it fail.
 */
async function gatheringSession(
  model: Uint8Array,
  settings: SessionSettings,
  previous: ort.InferenceSession | undefined,
  feeds: Record<string, ort.Tensor>,
  rows: number,
  probe: ort.InferenceSession.ReturnType,
  source: string,
  gathers: Array<{ tensor: string; output: string; indices: Uint32Array }>,
): Promise<ort.InferenceSession> {
  const next = await createSession(model, settings);
  // Nothing gathered (a readout of the logits alone): nothing to check, and ONNX Runtime refuses an empty fetch list.
  if (gathers.length === 0) {
    await previous?.release();
    return next;
  }
  try {
    const check = await next.run(
      feeds,
      gathers.map((g) => g.output),
    );
    for (const g of gathers) {
      const got = check[g.output]!.data as Float32Array;
      const all = probe[g.tensor]!.data as Float32Array;
      const width = all.length / rows;
      for (let r = 0; r < rows; r++)
        for (let j = 0; j < g.indices.length; j++)
          if (!Object.is(got[r * g.indices.length + j], all[r * width + g.indices[j]!]))
            throw new ClassifierError(
              `${source}: the neurons of '${g.tensor}' gathered in the graph differ from the layer`,
            );
    }
  } catch (error) {
    await Promise.all([next.release(), previous?.release()]);
    throw error;
  }
  await previous?.release();
  return next;
}

/**
 * The per-image shape in the model's layout: the declared one, the given one where the model leaves
 * dimensions symbolic, or the given channels-first shape of a channels-last model.
 */
function resolveInputShape(input: ImageInput, given: number[] | undefined, source: string): number[] {
  const declared = input.shape;
  const fits = (shape: readonly number[]) =>
    shape.length === 3 &&
    shape.every((d, i) => Number.isInteger(d) && d > 0 && (Number.isNaN(declared[i]!) || d === declared[i]));
  if (given !== undefined) {
    if (fits(given)) return [...given];
    if (input.layout === 'nhwc' && given.length === 3) {
      const last = [given[1]!, given[2]!, given[0]!];
      if (fits(last)) return last;
    }
  } else if (declared.every((d) => Number.isInteger(d))) return [...declared];
  const shown = declared.map((d) => (Number.isNaN(d) ? '?' : String(d))).join(', ');
  const form = input.layout === 'nhwc' ? '[batch, H, W, C]' : '[batch, C, H, W]';
  throw new ClassifierError(
    given !== undefined
      ? `${source}: inputShape [${given.join(', ')}] does not fit input '${input.name}' [N, ${shown}] (${input.layout})`
      : `${source}: input '${input.name}' has shape [N, ${shown}]; expected ${form} with fixed sizes (pass ` +
          `inputShape for symbolic ones)`,
  );
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
