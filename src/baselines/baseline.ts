// The interface every peer detector shares with the fingerprint detector's evaluation: fit on the fit
// rows (clean images with their labels, and attacked images per attack family), calibrate a threshold
// on clean calibration images for a target false-positive rate, score any batch (higher = more likely
// attacked). The base class owns the argument checks, the threshold and the cost accounting; each
// detector's file holds only its own method (learn, scoreImages).
import { thresholdFor } from '../detect/index.js';
import type { ImageBatch } from '../model/index.js';

export const baselineNames = ['mahalanobis', 'lid', 'squeeze'] as const;
export type BaselineName = (typeof baselineNames)[number];

export interface LabelledImages {
  images: ImageBatch;
  /** True class per image. */
  labels: Int32Array;
}

/** What a baseline learns from: the fit rows' clean images, and their attacked images per attack family. */
export interface BaselineFitData {
  clean: LabelledImages;
  attacked: Readonly<Record<string, ImageBatch>>;
}

/** Images processed and the wall-clock seconds they took. */
export interface Cost {
  images: number;
  seconds: number;
}

export class BaselineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BaselineError';
  }
}

/** Rows of a batch, checked: float32 NCHW with as many values as its dims say. */
export function checkImages(name: string, images: ImageBatch, shape?: readonly number[]): number {
  const dims = images?.dims;
  const ok =
    images?.data instanceof Float32Array &&
    Array.isArray(dims) &&
    dims.length === 4 &&
    dims.every((d) => Number.isInteger(d) && d >= 0) &&
    images.data.length === dims.reduce((a, v) => a * v, 1) &&
    (shape === undefined || dims.slice(1).every((d, i) => d === shape[i]));
  if (!ok)
    throw new BaselineError(
      `Expected float32 images of shape [N, ${shape?.join(', ') ?? 'C, H, W'}] for ${name} but received ` +
        `${images?.data?.constructor?.name} [${dims?.join(', ')}]`,
    );
  return dims[0]!;
}

export abstract class Baseline {
  abstract readonly name: BaselineName;
  #threshold: number | undefined;
  #fpr: number | undefined;
  #fitted = false;
  readonly cost: { fit: Cost; score: Cost } = {
    fit: { images: 0, seconds: 0 },
    score: { images: 0, seconds: 0 },
  };

  constructor(
    /** [C, H, W] of the model's input. */
    protected readonly inputShape: readonly number[],
  ) {}

  /** Learns from the fit rows; cost.fit records the images used and the seconds. */
  async fit(data: BaselineFitData): Promise<this> {
    const rows = checkImages('fit.clean.images', data?.clean?.images, this.inputShape);
    if (!(data.clean.labels instanceof Int32Array) || data.clean.labels.length !== rows)
      throw new BaselineError(
        `Expected an Int32Array of ${rows} labels for fit.clean.labels but received ${data.clean.labels?.length}`,
      );
    for (const [family, images] of Object.entries(data.attacked ?? {}))
      checkImages(`fit.attacked.${family}`, images, this.inputShape);
    const started = performance.now();
    const images = await this.learn(data);
    this.cost.fit = { images, seconds: (performance.now() - started) / 1000 };
    this.#fitted = true;
    this.#threshold = undefined;
    return this;
  }

  /** Sets the threshold at the (1 - fpr) quantile of the clean images' scores; returns it. */
  async calibrate(clean: ImageBatch, options: { fpr?: number } = {}): Promise<number> {
    const fpr = options.fpr ?? 0.05;
    if (!(fpr > 0 && fpr < 1)) throw new BaselineError(`Expected a rate in (0, 1) for fpr but received ${fpr}`);
    const scores = await this.score(clean);
    if (scores.length === 0) throw new BaselineError('Expected clean images to calibrate on but received none');
    this.#threshold = thresholdFor(scores, fpr);
    this.#fpr = fpr;
    return this.#threshold;
  }

  /** Per-image scores, higher = more likely attacked; cost.score accumulates. */
  async score(images: ImageBatch): Promise<Float64Array> {
    if (!this.#fitted) throw new BaselineError(`${this.name}: fit() before score()`);
    const rows = checkImages('images', images, this.inputShape);
    const started = performance.now();
    const scores = rows === 0 ? new Float64Array(0) : await this.scoreImages(images);
    this.cost.score.images += rows;
    this.cost.score.seconds += (performance.now() - started) / 1000;
    return scores;
  }

  /** Scores and the calibrated decision per image. */
  async detect(images: ImageBatch): Promise<Array<{ score: number; attacked: boolean }>> {
    const threshold = this.threshold;
    if (threshold === undefined) throw new BaselineError(`${this.name}: calibrate() before detect()`);
    return Array.from(await this.score(images), (score) => ({ score, attacked: score > threshold }));
  }

  get threshold(): number | undefined {
    return this.#threshold;
  }

  get fpr(): number | undefined {
    return this.#fpr;
  }

  /** What the fit chose or learned (JSON-ready), for reports. */
  abstract settings(): Record<string, unknown>;

  /** Fits the method; returns the number of images it used. */
  protected abstract learn(data: BaselineFitData): Promise<number>;

  protected abstract scoreImages(images: ImageBatch): Promise<Float64Array>;
}

/** Up to `count` distinct indices of [0, n) in random order (a partial Fisher-Yates shuffle). */
export function sampleRows(n: number, count: number, next: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const take = Math.min(n, count);
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(next() * (n - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order.slice(0, take);
}

/** The images of every attack family stacked into one batch. */
export function stackFamilies(attacked: Readonly<Record<string, ImageBatch>>, shape: readonly number[]): ImageBatch {
  const sets = Object.values(attacked);
  const per = shape.reduce((a, v) => a * v, 1);
  const rows = sets.reduce((n, s) => n + s.dims[0]!, 0);
  const data = new Float32Array(rows * per);
  let at = 0;
  for (const s of sets) {
    data.set(s.data, at);
    at += s.data.length;
  }
  return { data, dims: [rows, ...shape] };
}
