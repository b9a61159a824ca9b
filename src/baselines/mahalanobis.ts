// The Mahalanobis detector (Lee et al. 2018, "A Simple Unified Framework for Detecting
// Out-of-Distribution Samples and Adversarial Attacks"; the authors' code: pokaxpoka/
// deep_Mahalanobis_detector). Per tapped layer l: the channel means f_l(x), class means and one tied
// covariance fitted on clean fit images by their true labels, and the confidence score
//   S_l(x) = max_c -M_c(f_l(x')) / 2,  x' = x - eps * sign(grad_x M_c*(f_l(x)) / 2),  c* = argmin_c M_c(f_l(x)),
// the input pre-processing of the paper (its gradient through the library's autodiff: a tap seed on
// layer l). A logistic regression, cross-validated as the authors' LogisticRegressionCV, weighs the
// layers; eps comes from the authors' list by validation AUC. Score: the regression's log-odds of
// "attacked".
//
// Where this differs from the paper and its code: the regression is fitted on the fit rows' clean and
// attacked images of the bank's attack families (the authors fit one per attack, on 10% of that
// attack's test images, with Gaussian-noised clean images as extra negatives: there are none here);
// eps is chosen on an interleaved half of those rows and the regression then refitted on all of them
// (the authors keep the half-fitted one); a token tap [T, D] reduces over its tokens (see layers.ts).
// As in the authors' code, x' is not clipped to the image range and a zero gradient counts as +1.
import type { GradientModel } from '../autodiff/index.js';
import { gatherImages } from '../data/index.js';
import { auc } from '../eval/metrics.js';
import type { ImageBatch } from '../model/index.js';
import { SeededRandom } from '../random.js';
import { Baseline, sampleRows, stackFamilies } from './baseline.js';
import type { BaselineFitData } from './baseline.js';
import { TiedGaussians } from './gaussians.js';
import { channelLayers, channelMeans, pickLayers, spreadChannelGradient } from './layers.js';
import type { ChannelLayer } from './layers.js';
import { decisionFunction, fitLogisticCV } from './logistic.js';
import type { CrossValidated, CrossValidationOptions, FeatureMatrix } from './logistic.js';

/** The authors' noise magnitudes (ADV_Generate_LID_Mahalanobis.py), in their order: the first best wins. */
export const mahalanobisMagnitudes: readonly number[] = [0, 0.01, 0.005, 0.002, 0.0014, 0.001, 0.0005];

export interface MahalanobisOptions {
  /** Input pre-processing magnitudes to choose from by validation AUC (default mahalanobisMagnitudes). */
  magnitudes?: readonly number[];
  /** Tap tensor names to use as layers (default: every tap of the model). */
  layers?: readonly string[];
  /** Clean and attacked fit images the regression sees, at most, each (default 1,000). */
  regressionImages?: number;
  /** Images per model run (default: the model's batch size). */
  batchSize?: number;
  regression?: CrossValidationOptions;
  seed?: number;
}

interface Layer extends ChannelLayer {
  gaussians: TiedGaussians;
}

export class MahalanobisDetector extends Baseline {
  readonly name = 'mahalanobis' as const;
  private layers: Layer[] = [];
  private magnitude = 0;
  private regression: CrossValidated | undefined;
  private selection: Array<{ magnitude: number; auc: number }> = [];

  constructor(
    private readonly model: GradientModel,
    private readonly options: MahalanobisOptions = {},
  ) {
    super(model.inputShape);
    const magnitudes = options.magnitudes ?? mahalanobisMagnitudes;
    if (magnitudes.length === 0 || magnitudes.some((m) => !(m >= 0)))
      throw new RangeError(`Expected non-negative numbers for magnitudes but received [${magnitudes.join(', ')}]`);
    if (model.taps.length === 0) throw new RangeError('Expected a model with tapped layers for mahalanobis');
  }

  private get batchSize(): number {
    return this.options.batchSize ?? this.model.batchSize;
  }

  protected async learn(data: BaselineFitData): Promise<number> {
    const rng = new SeededRandom(this.options.seed ?? 1);
    const classes = this.model.classes;
    const chosen = pickLayers(channelLayers(this.model.taps), this.options.layers);
    // Class means and tied covariance per layer from every clean fit image, by its true label.
    const clean = data.clean.images;
    const features = chosen.map(() => [] as Float64Array[]);
    await this.forEachChunk(clean, async (chunk, rows) => {
      const out = await this.model.classifier.run(chunk);
      chosen.forEach((layer, l) => {
        features[l]!.push(channelMeans(layer, out.activations, rows, this.model.neurons));
      });
    });
    this.layers = chosen.map((layer, l) => ({
      ...layer,
      gaussians: TiedGaussians.fit(concat(features[l]!), clean.dims[0]!, layer.channels, data.clean.labels, classes),
    }));

    // The regression's rows: clean and attacked fit images, the same number of each at most.
    const cap = this.options.regressionImages ?? 1000;
    const attacked = stackFamilies(data.attacked, this.inputShape);
    if (attacked.dims[0]! < 2) throw new RangeError('Expected attacked fit images for mahalanobis but received none');
    const negatives = gatherImages(
      clean,
      sampleRows(clean.dims[0]!, cap, () => rng.next()),
    );
    const positives = gatherImages(
      attacked,
      sampleRows(attacked.dims[0]!, cap, () => rng.next()),
    );
    const labels = Uint8Array.from({ length: negatives.dims[0]! + positives.dims[0]! }, (_, i) =>
      i < negatives.dims[0]! ? 0 : 1,
    );
    // Interleaved halves (alternate rows of each kind): fit on one, measure AUC on the other.
    const half = (i: number) => (i < negatives.dims[0]! ? i : i - negatives.dims[0]!) % 2;
    const first = [...labels.keys()].filter((i) => half(i) === 0);
    const second = [...labels.keys()].filter((i) => half(i) === 1);
    let best: { magnitude: number; auc: number; x: FeatureMatrix } | undefined;
    this.selection = [];
    for (const magnitude of this.options.magnitudes ?? mahalanobisMagnitudes) {
      const x = stackRows(await this.layerScores(negatives, magnitude), await this.layerScores(positives, magnitude));
      const model = fitLogisticCV(rowsOf(x, first), pick(labels, first), this.options.regression);
      const z = decisionFunction(model, rowsOf(x, second));
      const secondLabels = pick(labels, second);
      const value = auc(
        [...z].filter((_, i) => secondLabels[i] === 0),
        [...z].filter((_, i) => secondLabels[i] === 1),
      );
      this.selection.push({ magnitude, auc: value });
      if (best === undefined || value > best.auc) best = { magnitude, auc: value, x };
    }
    this.magnitude = best!.magnitude;
    this.regression = fitLogisticCV(best!.x, labels, this.options.regression);
    return clean.dims[0]! + positives.dims[0]!;
  }

  protected async scoreImages(images: ImageBatch): Promise<Float64Array> {
    const x = await this.layerScores(images, this.magnitude);
    return decisionFunction(this.regression!, x);
  }

  /** S_l per image and layer: [rows x layers]. */
  async layerScores(images: ImageBatch, magnitude: number): Promise<FeatureMatrix> {
    const rows = images.dims[0]!;
    const L = this.layers.length;
    const out = new Float64Array(rows * L);
    const n = this.model.neurons;
    let at = 0;
    await this.forEachChunk(images, async (chunk, m) => {
      const clean = await this.model.classifier.run(chunk);
      for (const [l, layer] of this.layers.entries()) {
        let f = channelMeans(layer, clean.activations, m, n);
        if (magnitude > 0) {
          // grad_x M_c*(f_l(x)) / 2 through a tap seed on layer l: P (f - mu_c*) spread over the channel's neurons.
          const nearest = layer.gaussians.nearest(f, m);
          const seed = new Float32Array(m * n);
          for (let r = 0; r < m; r++)
            spreadChannelGradient(layer, layer.gaussians.halfDistanceGradient(f, r, nearest.label[r]!), seed, r, n);
          const { grad } = await this.model.gradient(chunk, { tapSeed: seed, activations: false });
          const moved = new Float32Array(chunk.data.length);
          for (let i = 0; i < moved.length; i++) moved[i] = chunk.data[i]! - magnitude * (grad[i]! >= 0 ? 1 : -1);
          const after = await this.model.classifier.run({ data: moved, dims: chunk.dims });
          f = channelMeans(layer, after.activations, m, n);
        }
        const { distance } = layer.gaussians.nearest(f, m);
        for (let r = 0; r < m; r++) out[(at + r) * L + l] = -0.5 * distance[r]!;
      }
      at += m;
    });
    return { data: out, rows, cols: L };
  }

  private async forEachChunk(
    images: ImageBatch,
    body: (chunk: ImageBatch, rows: number) => Promise<void>,
  ): Promise<void> {
    const rows = images.dims[0]!;
    const per = images.data.length / Math.max(1, rows);
    for (let start = 0; start < rows; start += this.batchSize) {
      const m = Math.min(this.batchSize, rows - start);
      await body({ data: images.data.subarray(start * per, (start + m) * per), dims: [m, ...images.dims.slice(1)] }, m);
    }
  }

  settings(): Record<string, unknown> {
    return {
      layers: this.layers.map((l) => ({ tap: l.tap, channels: l.channels, rank: l.gaussians.rank })),
      magnitude: this.magnitude,
      selection: this.selection,
      regression: this.regression && {
        C: this.regression.C,
        weights: Array.from(this.regression.weights),
        bias: this.regression.bias,
      },
    };
  }
}

function concat(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function stackRows(a: FeatureMatrix, b: FeatureMatrix): FeatureMatrix {
  return { data: concat([a.data, b.data]), rows: a.rows + b.rows, cols: a.cols };
}

export function rowsOf(x: FeatureMatrix, rows: number[]): FeatureMatrix {
  const data = new Float64Array(rows.length * x.cols);
  rows.forEach((r, i) => {
    data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols);
  });
  return { data, rows: rows.length, cols: x.cols };
}

function pick(labels: Uint8Array, rows: number[]): Uint8Array {
  return Uint8Array.from(rows, (r) => labels[r]!);
}
