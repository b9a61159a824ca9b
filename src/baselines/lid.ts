// The LID detector (Ma et al. 2018, "Characterizing Adversarial Subspaces Using Local Intrinsic
// Dimensionality"; the authors' code: xingjunm/lid_adversarial_subspace_detection). Per layer (the
// input image and each tapped layer, flattened), the maximum-likelihood estimate of the local
// intrinsic dimensionality from the Euclidean distances d_1 <= ... <= d_k to the k nearest of a
// minibatch of clean reference activations,
//   LID(x) = -k / sum_{i=1..k} log(d_i / d_k),
// the per-layer estimates min-max scaled (fitted on the fit rows) and weighed by a logistic
// regression cross-validated as the authors' LogisticRegressionCV. Score: its log-odds of "attacked".
// Defaults as the authors ran it: k = 20, minibatches of 100.
//
// Where this differs from the paper and its code: a clean fit image's neighbours are the other 99 of
// its minibatch (as the authors'), but an attacked or scored image is measured against a random
// minibatch of 100 clean fit images that does not contain it, and all of its k nearest count (the
// authors' minibatch held each adversarial image's own clean source, and they dropped every query's
// nearest neighbour, meant as the query itself); a deployed detector has no clean twin of its input.
// The regression is fitted on the bank's attack families rather than on each attack, with no
// Gaussian-noised negatives, and the scaler sees the fit rows only (the authors scaled before
// splitting). Exact duplicates among the neighbours (d_i = 0) give LID 0, the estimator's limit.
import { gatherImages } from '../data/index.js';
import type { Classifier, ImageBatch } from '../model/index.js';
import { SeededRandom } from '../random.js';
import { Baseline, sampleRows, stackFamilies } from './baseline.js';
import type { BaselineFitData } from './baseline.js';
import { decisionFunction, fitLogisticCV } from './logistic.js';
import type { CrossValidated, CrossValidationOptions, FeatureMatrix } from './logistic.js';

export interface LidOptions {
  /** Nearest neighbours per estimate (default 20). */
  k?: number;
  /** Clean reference images per minibatch (default 100). */
  batchSize?: number;
  /** Count the input image as a layer, as the authors do (default true). */
  includeInput?: boolean;
  /**
   * Clean and attacked fit images the regression sees, at most, each (default 1,000; the clean ones in whole
   * minibatches).
   */
  regressionImages?: number;
  regression?: CrossValidationOptions;
  seed?: number;
}

/**
 * LID from the k smallest distances of a query, sorted ascending: -k / sum log(d_i / d_k). d_k = 0
 * (k exact duplicates) gives 0; k equal distances give +Infinity, the estimator's limits.
 */
export function lidEstimate(sorted: ArrayLike<number>, k: number): number {
  const dk = sorted[k - 1]!;
  if (!(dk > 0)) return 0;
  let sum = 0;
  for (let i = 0; i < k; i++) sum += Math.log(sorted[i]! / dk);
  return sum === 0 ? Number.POSITIVE_INFINITY : -k / sum;
}

/** What LID needs of a model: its input shape, taps and tapped activations (a Classifier). */
export type LidModel = Pick<Classifier, 'inputShape' | 'taps' | 'neurons' | 'run'>;

/** LID values are capped here (see estimate). */
const maxLid = 1e6;

/** A layer's block of each image's vector: the input's pixels, or one tap of the activation matrix. */
interface Block {
  name: string;
  offset: number;
  size: number;
}

export class LidDetector extends Baseline {
  readonly name = 'lid' as const;
  private reference: ImageBatch | undefined;
  private scaler: { min: Float64Array; span: Float64Array } | undefined;
  private regression: CrossValidated | undefined;
  private rng: SeededRandom;
  private readonly blocks: Block[];

  constructor(
    private readonly model: LidModel,
    private readonly options: LidOptions = {},
  ) {
    super(model.inputShape);
    this.rng = new SeededRandom(options.seed ?? 1);
    const k = this.k;
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`Expected a positive integer for k but received ${k}`);
    if (!Number.isInteger(this.batchSize) || this.batchSize <= k)
      throw new RangeError(`Expected an integer above k = ${k} for batchSize but received ${this.batchSize}`);
    const pixels = model.inputShape.reduce((a, v) => a * v, 1);
    this.blocks = [
      ...((options.includeInput ?? true) ? [{ name: 'input', offset: -1, size: pixels }] : []),
      ...model.taps.map((t) => ({ name: t.tensor, offset: t.offset, size: t.size })),
    ];
    if (this.blocks.length === 0) throw new RangeError('Expected tapped layers or the input for lid');
  }

  private get k(): number {
    return this.options.k ?? 20;
  }

  private get batchSize(): number {
    return this.options.batchSize ?? 100;
  }

  protected async learn(data: BaselineFitData): Promise<number> {
    this.rng = new SeededRandom(this.options.seed ?? 1);
    const clean = data.clean.images;
    if (clean.dims[0]! < this.batchSize)
      throw new RangeError(
        `Expected at least ${this.batchSize} clean fit images for lid (one minibatch) but received ${clean.dims[0]}`,
      );
    this.reference = clean;
    const cap = this.options.regressionImages ?? 1000;
    const attacked = stackFamilies(data.attacked, this.inputShape);
    if (attacked.dims[0]! < 2) throw new RangeError('Expected attacked fit images for lid but received none');
    // Clean rows: minibatches of the fit images, each image against the other members of its own minibatch.
    const wholeBatches = Math.max(1, Math.floor(Math.min(cap, clean.dims[0]!) / this.batchSize)) * this.batchSize;
    const negatives = await this.lidsWithinBatches(
      gatherImages(
        clean,
        sampleRows(clean.dims[0]!, wholeBatches, () => this.rng.next()),
      ),
    );
    const positives = await this.lids(
      gatherImages(
        attacked,
        sampleRows(attacked.dims[0]!, cap, () => this.rng.next()),
      ),
    );
    const rows = negatives.rows + positives.rows;
    const x: FeatureMatrix = { data: new Float64Array(rows * this.blocks.length), rows, cols: this.blocks.length };
    x.data.set(negatives.data);
    x.data.set(positives.data, negatives.data.length);
    this.scaler = minMax(x);
    const labels = Uint8Array.from({ length: rows }, (_, i) => (i < negatives.rows ? 0 : 1));
    this.regression = fitLogisticCV(this.scale(x), labels, this.options.regression);
    return rows;
  }

  protected async scoreImages(images: ImageBatch): Promise<Float64Array> {
    return decisionFunction(this.regression!, this.scale(await this.lids(images)));
  }

  /** Per-layer LID of each image against random clean reference minibatches: [rows x layers]. */
  async lids(images: ImageBatch): Promise<FeatureMatrix> {
    const rows = images.dims[0]!;
    const L = this.blocks.length;
    const out = new Float64Array(rows * L);
    const per = images.data.length / Math.max(1, rows);
    const reference = this.reference!;
    for (let start = 0; start < rows; start += this.batchSize) {
      const m = Math.min(this.batchSize, rows - start);
      const chunk: ImageBatch = {
        data: images.data.subarray(start * per, (start + m) * per),
        dims: [m, ...images.dims.slice(1)],
      };
      const refImages = gatherImages(
        reference,
        sampleRows(reference.dims[0]!, this.batchSize, () => this.rng.next()),
      );
      const [queries, refs] = await Promise.all([this.vectors(chunk), this.vectors(refImages)]);
      this.estimate(queries, m, refs, this.batchSize, false, out, start);
    }
    return { data: out, rows, cols: L };
  }

  /**
   * Per-layer LID of each image against the other images of its own minibatch (the authors' clean
   * rows); the caller passes whole minibatches.
   */
  async lidsWithinBatches(images: ImageBatch): Promise<FeatureMatrix> {
    const rows = images.dims[0]!;
    const L = this.blocks.length;
    const out = new Float64Array(rows * L);
    const per = images.data.length / Math.max(1, rows);
    for (let start = 0; start < rows; start += this.batchSize) {
      const m = Math.min(this.batchSize, rows - start);
      const chunk: ImageBatch = {
        data: images.data.subarray(start * per, (start + m) * per),
        dims: [m, ...images.dims.slice(1)],
      };
      const v = await this.vectors(chunk);
      this.estimate(v, m, v, m, true, out, start);
    }
    return { data: out, rows, cols: L };
  }

  /** Input pixels and tapped activations of each image. */
  private async vectors(images: ImageBatch): Promise<{ pixels: Float32Array; activations: Float32Array }> {
    const { activations } = await this.model.run(images);
    return { pixels: images.data, activations };
  }

  /**
   * LID per layer of `m` queries against `n` references, into rows start.. of `out`; `self`: the
   * queries are the references, and each query's own distance (0) is left out.
   */
  private estimate(
    queries: { pixels: Float32Array; activations: Float32Array },
    m: number,
    refs: { pixels: Float32Array; activations: Float32Array },
    n: number,
    self: boolean,
    out: Float64Array,
    start: number,
  ): void {
    const k = Math.min(this.k, self ? n - 1 : n);
    const L = this.blocks.length;
    const neurons = this.model.neurons;
    const distances = new Float64Array(n);
    for (const [l, block] of this.blocks.entries()) {
      const [qData, rData, width, offset] =
        block.offset < 0
          ? [queries.pixels, refs.pixels, block.size, 0]
          : [queries.activations, refs.activations, neurons, block.offset];
      for (let q = 0; q < m; q++) {
        const qBase = q * width + offset;
        let count = 0;
        for (let r = 0; r < n; r++) {
          if (self && r === q) continue;
          const rBase = r * width + offset;
          // Float64 accumulation: layers hold up to tens of thousands of neurons.
          let s = 0;
          for (let i = 0; i < block.size; i++) {
            const d = qData[qBase + i]! - rData[rBase + i]!;
            s += d * d;
          }
          distances[count++] = Math.sqrt(s);
        }
        const sorted = distances.subarray(0, count).sort();
        // A cap keeps the scaler finite should k distances ever be exactly equal (LID +Infinity).
        out[(start + q) * L + l] = Math.min(lidEstimate(sorted, k), maxLid);
      }
    }
  }

  /** Min-max scaling with the fit rows' range; a constant layer maps to 0. */
  private scale(x: FeatureMatrix): FeatureMatrix {
    const { min, span } = this.scaler!;
    const data = new Float64Array(x.data.length);
    for (let i = 0; i < data.length; i++) {
      const j = i % x.cols;
      data[i] = span[j]! > 0 ? (x.data[i]! - min[j]!) / span[j]! : 0;
    }
    return { data, rows: x.rows, cols: x.cols };
  }

  settings(): Record<string, unknown> {
    return {
      k: this.k,
      batchSize: this.batchSize,
      layers: this.blocks.map((b) => b.name),
      regression: this.regression && {
        C: this.regression.C,
        weights: Array.from(this.regression.weights),
        bias: this.regression.bias,
      },
    };
  }
}

function minMax(x: FeatureMatrix): { min: Float64Array; span: Float64Array } {
  const min = new Float64Array(x.cols).fill(Number.POSITIVE_INFINITY);
  const max = new Float64Array(x.cols).fill(Number.NEGATIVE_INFINITY);
  for (let i = 0; i < x.data.length; i++) {
    const j = i % x.cols;
    min[j] = Math.min(min[j]!, x.data[i]!);
    max[j] = Math.max(max[j]!, x.data[i]!);
  }
  return { min, span: max.map((v, j) => v - min[j]!) };
}
