// Where each tapped layer sits in the activation vector, and copying a run's tapped outputs into
// the activation matrix [rows x neurons]. A layer may contribute a recorded sample of its neurons
// (tap-sample.ts) instead of all of them; the vector then holds those neurons, in ascending order.
import { randomInt } from 'node:crypto';

import type * as ort from 'onnxruntime-node';

import { allocateBudget, drawSample, layerSeed, replaySample } from './tap-sample.js';
import type { TapSample } from './tap-sample.js';
import type { TapRequest } from './taps.js';

/** Where one tapped layer sits in the activation vector. */
export interface TapLayout {
  tensor: string;
  offset: number;
  /** Neurons this layer contributes to the activation vector. */
  size: number;
  /** The layer's per-image output shape (all of its neurons). */
  shape: number[];
  /** Neurons in the layer's output: size, unless it is sampled. */
  fullSize: number;
  /** Present when the layer contributes a sample of its neurons: the record and the indices (ascending). */
  sample?: TapSample;
  indices?: Uint32Array;
}

/** How the taps were chosen, for people: printed by `nfp fit`, kept out of the bank. */
export interface TapPlan {
  /** 'card': the model card's taps; 'wide' / 'auto': by rule; 'named': the caller's names or a bank's record. */
  rule: 'card' | 'wide' | 'auto' | 'named';
  /** Neurons of every tapped layer before sampling, and the neuron budget that applied (Infinity: none). */
  fullNeurons: number;
  budget: number;
  /** Layers that contribute a sample of their neurons. */
  sampled: number;
  /** Candidate layers left out because their output is not float32 or not one row per image ('wide' only). */
  skipped: string[];
}

export interface LayoutOptions {
  /** Layers whose output is not float32 or not batch-major are skipped instead of rejected (the 'wide' rule). */
  lenient: boolean;
  /** Neurons the whole vector may hold; larger layers are sampled (the logits always stay whole). */
  budget: number;
  /** Seed of the samples (default: a random one, recorded with each sample). */
  seed?: number;
  /** Samples recorded in a bank, per tensor: replayed exactly. */
  requests?: Map<string, TapRequest>;
  logits: string;
  /** Images in the probe run (default 1; a model that fixes its batch is probed at that size). */
  rows?: number;
}

export class TapLayoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TapLayoutError';
  }
}

/** Lays out the taps from one probe run (at batch size 1, or the model's fixed batch size). */
export function layoutTaps(
  probe: ort.InferenceSession.ReturnType,
  tensors: string[],
  options: LayoutOptions,
): { taps: TapLayout[]; neurons: number; skipped: string[] } {
  const skipped: string[] = [];
  const shapes: Array<{ tensor: string; shape: number[]; fullSize: number }> = [];
  for (const tensor of tensors) {
    const t = probe[tensor]!;
    const batchMajor = t.dims.length >= 1 && Number(t.dims[0]) === (options.rows ?? 1);
    if (t.type !== 'float32' || !batchMajor) {
      if (options.lenient) {
        skipped.push(tensor);
        continue;
      }
      const what = t.type !== 'float32' ? t.type : `of shape [${t.dims.join(', ')}], not one row per image`;
      throw new TapLayoutError(
        `tap '${tensor}' is ${what}; only float32 tensors with a leading batch axis can be tapped`,
      );
    }
    const shape = t.dims.slice(1).map(Number);
    shapes.push({ tensor, shape, fullSize: shape.reduce((a, b) => a * b, 1) });
  }
  const counts = allocateBudget(
    shapes.map((s) => s.fullSize),
    options.budget,
    shapes.map((s) => s.tensor === options.logits),
  );
  const seed = options.seed ?? randomInt(2 ** 32 - 1);
  let offset = 0;
  const taps = shapes.map(({ tensor, shape, fullSize }, i): TapLayout => {
    const recorded = options.requests?.get(tensor)?.sample;
    let layout: TapLayout;
    if (recorded !== undefined) {
      if (recorded.of !== fullSize) {
        throw new TapLayoutError(
          `tap '${tensor}' has ${fullSize} neurons but the recorded sample was drawn from ${recorded.of}: ` +
            'the bank belongs to another model',
        );
      }
      layout = {
        tensor,
        offset,
        size: recorded.count,
        shape,
        fullSize,
        sample: recorded,
        indices: replaySample(recorded, tensor),
      };
    } else if (options.requests === undefined && counts[i]! < fullSize) {
      const { sample, indices } = drawSample(fullSize, counts[i]!, layerSeed(seed, i));
      layout = { tensor, offset, size: sample.count, shape, fullSize, sample, indices };
    } else {
      layout = { tensor, offset, size: fullSize, shape, fullSize };
    }
    offset += layout.size;
    return layout;
  });
  return { taps, neurons: offset, skipped };
}

/**
 * Copies the tapped outputs of one run over `rows` images into rows `start ..` of the activation
 * matrix `out` [* x neurons]; sampled layers contribute their sampled neurons only. A run padded to a
 * model's fixed batch size covers `ranRows` images, of which the first `rows` are copied.
 */
export function copyTapOutputs(
  result: ort.InferenceSession.ReturnType,
  taps: TapLayout[],
  rows: number,
  neurons: number,
  out: Float32Array,
  start: number,
  ranRows = rows,
  gathered = false,
): void {
  // One copy loop for both: TapActivations over the reads tapRead gives these taps.
  const reads = taps.map((t) => tapRead(t, gathered));
  new TapActivations(result, taps, rows, neurons, ranRows, reads).copyInto(out, start);
}

/** The graph output that holds a sampled layer's sample (a Gather the classifier adds to the model). */
export function sampleOutputName(tensor: string): string {
  return `nfp.sample:${tensor}`;
}

/**
 * Where a run's output holds a tap's neurons: the layer's own tensor, whole (`width` its full size; a
 * sampled layer's neurons at `columns`), or, when the model gathers samples in the graph (`gathered`),
 * a sampled layer's sample alone (`width` its sample size, in sample order). Gathering in the graph
 * keeps ONNX Runtime from returning whole layers only to drop most of them: ResNet-50's wide taps are
 * 9.8 million values per image, their sample 111,848.
 */
export function tapRead(tap: TapLayout, gathered: boolean): { output: string; width: number; columns?: Uint32Array } {
  if (tap.indices === undefined) return { output: tap.tensor, width: tap.fullSize };
  if (gathered) return { output: sampleOutputName(tap.tensor), width: tap.size };
  return { output: tap.tensor, width: tap.fullSize, columns: tap.indices };
}

/**
 * Where a run's output holds a tap's neurons, as TapActivations reads it: an output of `width` values
 * per image and, unless it holds the tap's neurons in order, the column of each of them. `output`
 * undefined: nothing is fetched for the tap (a readout none of whose neurons lie in it); a stand-in of
 * one zero per image takes its place.
 */
export interface TapRead {
  output: string | undefined;
  width: number;
  columns?: Uint32Array;
  /** A readout's: the tap's neurons it holds (positions in the tap, ascending); the others read as 0 in matrix(). */
  held?: Uint32Array;
}

/** Values per image a run fetches through `reads` (a stand-in fetches nothing). */
export function fetchedValues(reads: readonly TapRead[]): number {
  return reads.reduce((n, r) => n + (r.output === undefined ? 0 : r.width), 0);
}

/** The graph output that holds a readout's neurons of one layer (a Gather the classifier adds). */
export function readoutOutputName(tensor: string): string {
  return `nfp.readout:${tensor}`;
}

/**
 * A readout of some neurons of the activation vector: per tap, a Gather in the graph of the layer's
 * columns that hold them (taps with none are not fetched), and the reads that map each neuron of
 * the tap to its place in that output (neurons outside the readout to column 0, which the native
 * scorer never reads for them; TapActivations.matrix() gives them 0). detect() reads the neurons
 * its bank's fingerprints use: ONNX Runtime then returns a few hundred values per image instead of
 * whole layers, and the tapped layers need not be materialized as graph outputs.
 */
export function planReadout(
  taps: TapLayout[],
  neurons: Uint32Array,
  logits: string,
): { reads: TapRead[]; gathers: Array<{ tensor: string; output: string; indices: Uint32Array }> } {
  const total = taps.reduce((n, t) => n + t.size, 0);
  const wanted = new Uint8Array(total);
  for (const n of neurons) {
    if (!(n < total)) throw new TapLayoutError(`readout neuron ${n} is outside the taps' ${total} neurons`);
    wanted[n] = 1;
  }
  const gathers: Array<{ tensor: string; output: string; indices: Uint32Array }> = [];
  const reads = taps.map((tap): TapRead => {
    const used: number[] = [];
    for (let j = 0; j < tap.size; j++) if (wanted[tap.offset + j] === 1) used.push(j);
    if (used.length === 0)
      return { output: undefined, width: 1, columns: new Uint32Array(tap.size), held: new Uint32Array(0) };
    // The logits come back anyway: read them whole.
    if (tap.tensor === logits) return tapRead(tap, false);
    const columns = new Uint32Array(tap.size);
    used.forEach((j, at) => {
      columns[j] = at;
    });
    const output = readoutOutputName(tap.tensor);
    gathers.push({
      tensor: tap.tensor,
      output,
      indices: Uint32Array.from(used, (j) => (tap.indices === undefined ? j : tap.indices[j]!)),
    });
    return { output, width: used.length, columns, held: Uint32Array.from(used) };
  });
  return { reads, gathers };
}

/**
 * The tapped outputs of one run over `rows` images, left where ONNX Runtime put them: the buffers
 * the native scorer reads in place (detectScores' `taps`), so detect() copies no activations. A run
 * padded to a model's fixed batch size holds more images than `rows`; the rest are ignored. The
 * activation matrix [rows x neurons] these stand for is made only when asked (matrix(), copyInto()).
 */
export class TapActivations {
  /** One per tap, in tap order: its output and, unless it holds the tap's neurons in order, their columns. */
  readonly buffers: Array<{ data: Float32Array; width: number; columns?: Uint32Array }>;
  #matrix: Float32Array | undefined;

  constructor(
    result: ort.InferenceSession.ReturnType,
    /** The classifier's taps. */
    readonly taps: TapLayout[],
    readonly rows: number,
    readonly neurons: number,
    ranRows: number,
    /** How each tap is read: the same array for every run of one classifier, so it keys the bank's binding. */
    readonly reads: readonly TapRead[],
  ) {
    this.buffers = taps.map((tap, i) => {
      const read = reads[i]!;
      const data = read.output === undefined ? new Float32Array(ranRows) : (result[read.output]!.data as Float32Array);
      if (data.length !== ranRows * read.width) {
        throw new TapLayoutError(
          `tap '${tap.tensor}' returned ${data.length} values for ${ranRows} images of ${read.width}`,
        );
      }
      return { data, width: read.width, ...(read.columns !== undefined ? { columns: read.columns } : {}) };
    });
  }

  /** Copies these rows into rows `start ..` of an activation matrix [* x neurons] (a readout's others as 0). */
  copyInto(out: Float32Array, start: number): void {
    this.taps.forEach((tap, i) => {
      const { data, width, columns } = this.buffers[i]!;
      const held = this.reads[i]!.held;
      for (let r = 0; r < this.rows; r++) {
        const at = (start + r) * this.neurons + tap.offset;
        if (held !== undefined) {
          out.fill(0, at, at + tap.size);
          for (const j of held) out[at + j] = data[r * width + columns![j]!]!;
        } else if (columns === undefined) out.set(data.subarray(r * width, r * width + tap.size), at);
        else for (let j = 0; j < tap.size; j++) out[at + j] = data[r * width + columns[j]!]!;
      }
    });
  }

  /** The activation matrix [rows x neurons], made on the first call. */
  matrix(): Float32Array {
    if (this.#matrix === undefined) {
      this.#matrix = new Float32Array(this.rows * this.neurons);
      this.copyInto(this.#matrix, 0);
    }
    return this.#matrix;
  }
}

/** The layout of the same taps with every layer whole: what the gradient graph's tap seed covers. */
export function wholeLayout(taps: TapLayout[]): TapLayout[] {
  let offset = 0;
  return taps.map((t) => {
    const whole = { tensor: t.tensor, offset, size: t.fullSize, shape: t.shape, fullSize: t.fullSize };
    offset += t.fullSize;
    return whole;
  });
}

/** Spreads a tap seed laid out like the activation matrix [rows x neurons] over the whole layers [rows x whole]. */
export function expandTapSeed(seed: Float32Array, taps: TapLayout[], rows: number, neurons: number): Float32Array {
  if (taps.every((t) => t.indices === undefined)) return seed;
  const whole = wholeLayout(taps);
  const width = whole.reduce((n, t) => n + t.size, 0);
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    taps.forEach((tap, i) => {
      const from = r * neurons + tap.offset;
      const to = r * width + whole[i]!.offset;
      if (tap.indices === undefined) out.set(seed.subarray(from, from + tap.size), to);
      else for (let j = 0; j < tap.indices.length; j++) out[to + tap.indices[j]!] = seed[from + j]!;
    });
  }
  return out;
}

/** What one run's tapped outputs may take before they are copied (or sampled) into the activation matrix. */
export const tapRunBytes = 256 * 2 ** 20;

/**
 * Images per run with these taps (read as `reads`, by default tapRead's): the batch size, fewer when
 * whole tapped layers would pass tapRunBytes (wide taps over a large model hold tens of megabytes per
 * image before sampling).
 */
export function tapRunRows(
  taps: TapLayout[],
  batchSize: number,
  gathered = false,
  reads: readonly TapRead[] = taps.map((t) => tapRead(t, gathered)),
): number {
  const perImage = 4 * fetchedValues(reads);
  return Math.max(1, Math.min(batchSize, Math.floor(tapRunBytes / Math.max(1, perImage))));
}

/** Activation matrix memory one step of a long scoring (calibration, evaluation) may hold. */
export const activationChunkBytes = 256 * 2 ** 20;

/** Rows of `neurons` float32 activations that fit in activationChunkBytes (at least one). */
export function activationChunkRows(neurons: number): number {
  return Math.max(1, Math.floor(activationChunkBytes / (4 * Math.max(1, neurons))));
}
