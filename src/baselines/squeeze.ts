// Feature squeezing (Xu, Evans and Qi 2018, "Feature Squeezing: Detecting Adversarial Examples in Deep
// Neural Networks"; the authors' code: mzweilin/EvadeML-Zoo). Each squeezer maps an image to a
// simpler one (bit-depth reduction, median smoothing); the score is the largest L1 distance between
// the model's softmax output on the image and on a squeezed copy. Nothing is learned from attacks:
// fitting only records the squeezers, and the threshold comes from clean images alone.
//
// The default squeezers are the paper's for MNIST, the closest of its data sets to Fashion-MNIST
// (grey 28 x 28): 1-bit depth and 2 x 2 median smoothing. Both follow the authors' numpy code exactly:
// bit depth rounds x (2^b - 1) half to even (np.rint); the median is scipy.ndimage.median_filter's,
// whose even window covers the pixel and the ones above and to its left, takes the upper median, and
// reflects at the border (edge pixels repeat).
import type { AttackModel } from '../attacks/index.js';
import type { ImageBatch } from '../model/index.js';
import { Baseline } from './baseline.js';
import type { BaselineFitData } from './baseline.js';

export type Squeezer = { kind: 'bitDepth'; bits: number } | { kind: 'median'; size: number };

/** The paper's MNIST configuration (EvadeML-Zoo: bit_depth_1, median_filter_2_2). */
export const defaultSqueezers: readonly Squeezer[] = [
  { kind: 'bitDepth', bits: 1 },
  { kind: 'median', size: 2 },
];

export interface SqueezeOptions {
  squeezers?: readonly Squeezer[];
}

/** Round half to even, as np.rint. */
function rint(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Each value v -> rint(v (2^bits - 1)) / (2^bits - 1), the product rounded to float32 as numpy's is. */
export function reduceBitDepth(images: ImageBatch, bits: number): ImageBatch {
  if (!Number.isInteger(bits) || bits < 1 || bits > 16)
    throw new RangeError(`Expected an integer in [1, 16] for bits but received ${bits}`);
  const levels = 2 ** bits - 1;
  return { data: images.data.map((v) => rint(Math.fround(v * levels)) / levels), dims: images.dims };
}

/** scipy's 'reflect' border: -1 -> 0, -2 -> 1, n -> n - 1. */
function reflect(i: number, n: number): number {
  const period = 2 * n;
  let j = ((i % period) + period) % period;
  if (j >= n) j = period - 1 - j;
  return j;
}

/** Median smoothing of every channel plane with a size x size window, as scipy.ndimage.median_filter. */
export function medianFilter(images: ImageBatch, size: number): ImageBatch {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`Expected a positive integer for size but received ${size}`);
  const [n, c, h, w] = images.dims as [number, number, number, number];
  const out = new Float32Array(images.data.length);
  const before = Math.floor(size / 2);
  const rank = Math.floor((size * size) / 2);
  const window = new Float32Array(size * size);
  for (let plane = 0; plane < n * c; plane++) {
    const base = plane * h * w;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        let at = 0;
        for (let dy = 0; dy < size; dy++)
          for (let dx = 0; dx < size; dx++)
            window[at++] = images.data[base + reflect(y + dy - before, h) * w + reflect(x + dx - before, w)]!;
        out[base + y * w + x] = window.sort()[rank]!;
      }
  }
  return { data: out, dims: images.dims };
}

export function squeeze(images: ImageBatch, squeezer: Squeezer): ImageBatch {
  return squeezer.kind === 'bitDepth' ? reduceBitDepth(images, squeezer.bits) : medianFilter(images, squeezer.size);
}

/** Softmax of each row of logits [rows x classes], in float64. */
export function softmaxRows(logits: Float32Array, classes: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r < logits.length / classes; r++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < classes; c++) max = Math.max(max, logits[r * classes + c]!);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += out[r * classes + c] = Math.exp(logits[r * classes + c]! - max);
    for (let c = 0; c < classes; c++) out[r * classes + c]! /= sum;
  }
  return out;
}

export class FeatureSqueezingDetector extends Baseline {
  readonly name = 'squeeze' as const;
  readonly squeezers: readonly Squeezer[];

  constructor(
    private readonly model: Pick<AttackModel, 'inputShape' | 'classes' | 'logits'>,
    options: SqueezeOptions = {},
  ) {
    super(model.inputShape);
    this.squeezers = options.squeezers ?? defaultSqueezers;
    if (this.squeezers.length === 0) throw new RangeError('Expected at least one squeezer for squeezers');
    for (const s of this.squeezers) squeeze({ data: new Float32Array(1), dims: [1, 1, 1, 1] }, s);
  }

  /** No training: the threshold is set by calibrate() on clean images. */
  protected async learn(_data: BaselineFitData): Promise<number> {
    return 0;
  }

  protected async scoreImages(images: ImageBatch): Promise<Float64Array> {
    const k = this.model.classes;
    const rows = images.dims[0]!;
    const original = softmaxRows(await this.model.logits(images), k);
    const scores = new Float64Array(rows);
    for (const squeezer of this.squeezers) {
      const squeezed = softmaxRows(await this.model.logits(squeeze(images, squeezer)), k);
      for (let r = 0; r < rows; r++) {
        let l1 = 0;
        for (let c = 0; c < k; c++) l1 += Math.abs(original[r * k + c]! - squeezed[r * k + c]!);
        scores[r] = Math.max(scores[r]!, l1);
      }
    }
    return scores;
  }

  settings(): Record<string, unknown> {
    return {
      squeezers: this.squeezers.map((s) =>
        s.kind === 'bitDepth' ? `bit depth ${s.bits}` : `median ${s.size}x${s.size}`,
      ),
    };
  }
}
