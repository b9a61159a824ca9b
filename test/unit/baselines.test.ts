// The peer detectors' arithmetic on synthetic data with known answers: the cross-validated logistic
// regression (optimality, the unpenalized intercept, a known generating model, scikit-learn's folds
// and tie rule), tied-covariance Gaussians (two separated Gaussians, an exact hand case, a dead
// feature, the gradient), LID (the estimator by hand, points on known low-dimensional subspaces), and
// feature squeezing (bit depth and median smoothing against numpy/scipy values, the L1 score).
import { expect } from 'chai';

import {
  FeatureSqueezingDetector,
  LidDetector,
  TiedGaussians,
  decisionFunction,
  fitLogistic,
  fitLogisticCV,
  lidEstimate,
  medianFilter,
  reduceBitDepth,
  softmaxRows,
  stratifiedFolds,
} from '../../src/baselines/index.js';
import type { FeatureMatrix, LidModel } from '../../src/baselines/index.js';
import { pinvSymmetric, pseudoInverseRoot } from '../../src/baselines/matrix.js';
import { auc } from '../../src/eval/index.js';
import type { ImageBatch } from '../../src/model/index.js';
import { TestRandom } from '../reference/random.js';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

describe('baselines: logistic regression', () => {
  it('assigns stratified folds as scikit-learn (contiguous blocks per class, the first ones longer)', () => {
    const y = Uint8Array.from([0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 0, 1]);
    // Label 0 at rows 0,1,2,6,7,10 (6 rows: blocks 2,2,2); label 1 at 3,4,5,8,9,11 (same).
    expect(Array.from(stratifiedFolds(y, 3))).to.deep.equal([0, 0, 1, 0, 0, 1, 1, 2, 1, 2, 2, 2]);
    // 7 rows of label 0 in 3 folds: blocks of 3, 2, 2.
    expect(Array.from(stratifiedFolds(Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 1, 1, 1]), 3))).to.deep.equal([
      0, 0, 0, 1, 1, 2, 2, 0, 1, 2,
    ]);
    expect(() => stratifiedFolds(Uint8Array.from([0, 0, 0, 1]), 2)).to.throw(RangeError, /label 1/);
  });

  it('reaches the optimum: the gradient of C * logloss + |w|^2 / 2 vanishes (intercept unpenalized)', () => {
    const rng = new TestRandom(4);
    const rows = 300;
    const cols = 3;
    const data = Float64Array.from({ length: rows * cols }, () => rng.normal());
    const y = Uint8Array.from({ length: rows }, (_, r) =>
      rng.next() < sigmoid(data[r * cols]! - 2 * data[r * cols + 1]! + 0.3) ? 1 : 0,
    );
    for (const C of [0.01, 1, 100]) {
      const model = fitLogistic({ data, rows, cols }, y, C);
      const grad = new Float64Array(cols + 1);
      for (let j = 0; j < cols; j++) grad[j] = model.weights[j]!;
      for (let r = 0; r < rows; r++) {
        let z = model.bias;
        for (let j = 0; j < cols; j++) z += model.weights[j]! * data[r * cols + j]!;
        const g = C * (sigmoid(z) - y[r]!);
        for (let j = 0; j < cols; j++) grad[j] += g * data[r * cols + j]!;
        grad[cols] += g;
      }
      for (const g of grad) expect(Math.abs(g)).to.be.below(1e-7 * Math.max(1, C * rows));
    }
  });

  it('recovers a known generating model, and shrinks to the class log-odds when the penalty dominates', () => {
    const rng = new TestRandom(5);
    const rows = 20_000;
    const data = Float64Array.from({ length: rows * 2 }, () => rng.normal());
    const y = Uint8Array.from({ length: rows }, (_, r) =>
      rng.next() < sigmoid(2 * data[r * 2]! - data[r * 2 + 1]! + 0.5) ? 1 : 0,
    );
    const x = { data, rows, cols: 2 };
    const free = fitLogistic(x, y, 1e4);
    expect(free.weights[0]).to.be.closeTo(2, 0.1);
    expect(free.weights[1]).to.be.closeTo(-1, 0.07);
    expect(free.bias).to.be.closeTo(0.5, 0.07);
    // C -> 0: w -> 0 and the unpenalized intercept -> log(n1 / n0).
    const n1 = y.reduce((a, v) => a + v, 0);
    const shrunk = fitLogistic(x, y, 1e-9);
    expect(Math.abs(shrunk.weights[0]!)).to.be.below(1e-4);
    expect(shrunk.bias).to.be.closeTo(Math.log(n1 / (rows - n1)), 1e-4);
  });

  it('cross-validation takes the smallest C among equal accuracies (scikit-learn) and a larger C when it helps', () => {
    const rng = new TestRandom(6);
    // Separable and symmetric about 0: every C classifies the held-out folds perfectly.
    const rows = 100;
    const y = Uint8Array.from({ length: rows }, (_, r) => r % 2);
    const data = Float64Array.from({ length: rows }, (_, r) => (y[r] === 1 ? 1 : -1) * (1 + rng.next()));
    const easy = fitLogisticCV({ data, rows, cols: 1 }, y);
    expect(easy.scores.every((s) => s === 1)).to.equal(true);
    expect(easy.C).to.equal(easy.Cs[0]);
    expect(easy.C).to.be.closeTo(1e-4, 1e-18);
    // Imbalanced (80% label 0) with a weak feature: a tiny C predicts the majority everywhere, a larger C
    // uses the feature and classifies better.
    const n = 1000;
    const z = Float64Array.from({ length: n }, () => rng.normal());
    const labels = Uint8Array.from(z, (v) => (v + 0.3 * rng.normal() > 0.85 ? 1 : 0));
    const fitted = fitLogisticCV({ data: z, rows: n, cols: 1 }, labels);
    expect(fitted.C).to.be.above(1e-3);
    expect(fitted.scores[fitted.Cs.indexOf(fitted.C)]).to.equal(Math.max(...fitted.scores));
    expect(fitted.scores[fitted.Cs.indexOf(fitted.C)]).to.be.above(fitted.scores[0]! + 0.05);
  });
});

/** Rows from N(mean, L L^T) for a lower-triangular L (row-major). */
function gaussianRows(rng: TestRandom, rows: number, mean: number[], chol: number[][]): number[][] {
  return Array.from({ length: rows }, () => {
    const e = mean.map(() => rng.normal());
    return mean.map((m, i) => m + chol[i]!.reduce((a, l, j) => a + l * e[j]!, 0));
  });
}

describe('baselines: tied Gaussians (Mahalanobis)', () => {
  it('fits two separated Gaussians: means, the tied precision, and distances of known points', () => {
    const rng = new TestRandom(7);
    const chol = [
      [1, 0, 0],
      [0.6, 1.2, 0],
      [0, -0.4, 0.5],
    ];
    const a = gaussianRows(rng, 20_000, [0, 0, 0], chol);
    const b = gaussianRows(rng, 20_000, [6, -2, 1], chol);
    const features = Float64Array.from([...a, ...b].flat());
    const labels = Int32Array.from({ length: 40_000 }, (_, i) => (i < 20_000 ? 0 : 1));
    const g = TiedGaussians.fit(features, 40_000, 3, labels, 2);
    expect(Array.from(g.means.subarray(3, 6)).map((v) => Number(v.toFixed(1)))).to.deep.equal([6, -2, 1]);
    // Covariance S = L L^T; the precision is its inverse: check P S = I.
    const S = chol.map((ri) => chol.map((rj) => ri.reduce((s, v, k) => s + v * rj[k]!, 0)));
    const P = pinvSymmetric(covarianceOf(g), 3);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        const ps = [0, 1, 2].reduce((s, k) => s + P[i * 3 + k]! * S[k]![j]!, 0);
        expect(ps).to.be.closeTo(i === j ? 1 : 0, 0.03);
      }
    // In-distribution rows: the distance to their own class is chi-square with 3 degrees of freedom (mean 3),
    // and the nearest class is their own for all but a vanishing share.
    const near = g.nearest(features, 40_000);
    const own = near.label.reduce((n, c, i) => n + (c === labels[i] ? 1 : 0), 0) / 40_000;
    expect(own).to.be.above(0.999);
    const meanDistance = near.distance.reduce((s, v) => s + v, 0) / 40_000;
    expect(meanDistance).to.be.closeTo(3, 0.06);
    // Far points score higher distances: AUC of the minimum distance, in vs out, is 1.
    const far = Float64Array.from(gaussianRows(rng, 500, [3, 8, -4], chol).flat());
    expect(auc(Array.from(near.distance.subarray(0, 2000)), Array.from(g.nearest(far, 500).distance))).to.be.above(
      0.999,
    );
  });

  it('computes M_c exactly on a hand case, ignores a dead feature, and its gradient matches finite differences', () => {
    // Class 0 at (+-1, 0, 0), (0, +-1, 0); class 1 the same around (4, 0, 0); the third feature is always 0.
    const pts = [
      [1, 0, 0],
      [-1, 0, 0],
      [0, 1, 0],
      [0, -1, 0],
    ];
    const rows = [...pts, ...pts.map(([x, y, z]) => [x! + 4, y!, z!])];
    const g = TiedGaussians.fit(Float64Array.from(rows.flat()), 8, 3, Int32Array.from([0, 0, 0, 0, 1, 1, 1, 1]), 2);
    // Covariance diag(0.5, 0.5, 0): precision diag(2, 2, 0), rank 2.
    expect(g.rank).to.equal(2);
    const q = Float64Array.from([1, 1, 7]);
    const d = g.distances(q, 1);
    expect(d[0]).to.be.closeTo(4, 1e-12); // 2 * 1 + 2 * 1; the dead feature's 7 counts nothing
    expect(d[1]).to.be.closeTo(2 * 9 + 2, 1e-12);
    const h = 1e-6;
    for (const c of [0, 1]) {
      const grad = g.halfDistanceGradient(q, 0, c);
      for (let j = 0; j < 3; j++) {
        const up = Float64Array.from(q);
        const down = Float64Array.from(q);
        up[j]! += h;
        down[j]! -= h;
        const fd = (g.distances(up, 1)[c]! - g.distances(down, 1)[c]!) / (4 * h);
        expect(grad[j]).to.be.closeTo(fd, 1e-6);
      }
    }
    expect(() => TiedGaussians.fit(Float64Array.from([1, 2]), 2, 1, Int32Array.from([0, 0]), 2)).to.throw(
      RangeError,
      /class 1 has none/,
    );
  });

  it('takes the pseudo-inverse root of a rank-deficient matrix: W^T W = pinv(A), A pinv(A) A = A', () => {
    const rng = new TestRandom(8);
    const n = 5;
    const B = Array.from({ length: n }, () => [rng.normal(), rng.normal(), rng.normal()]);
    const A = Float64Array.from({ length: n * n }, (_, k) =>
      B[Math.floor(k / n)]!.reduce((s, v, t) => s + v * B[k % n]![t]!, 0),
    );
    const { rank } = pseudoInverseRoot(A, n);
    expect(rank).to.equal(3);
    const P = pinvSymmetric(A, n);
    const mul = (x: Float64Array, y: Float64Array) =>
      Float64Array.from({ length: n * n }, (_, k) => {
        let s = 0;
        for (let t = 0; t < n; t++) s += x[Math.floor(k / n) * n + t]! * y[t * n + (k % n)]!;
        return s;
      });
    const APA = mul(mul(A, P), A);
    for (let k = 0; k < n * n; k++) expect(APA[k]).to.be.closeTo(A[k]!, 1e-9 * Math.max(1, Math.abs(A[k]!)));
  });
});

/** The covariance behind a fitted TiedGaussians: pinv of W^T W. */
function covarianceOf(g: TiedGaussians): Float64Array {
  const n = g.dim;
  const P = new Float64Array(n * n);
  for (let e = 0; e < g.rank; e++)
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) P[i * n + j] += g.root[e * n + i]! * g.root[e * n + j]!;
  return pinvSymmetric(P, n);
}

/** A stand-in classifier whose input (N x 1 x 1 x D points) is its own single tap. */
function identityModel(D: number): LidModel {
  return {
    inputShape: [1, 1, D],
    neurons: D,
    taps: [{ tensor: 'points', offset: 0, size: D, shape: [D], fullSize: D }],
    run: async (images: ImageBatch) => ({
      rows: images.dims[0]!,
      classes: 1,
      logits: new Float32Array(images.dims[0]!),
      labels: new Int32Array(images.dims[0]!),
      activations: Float32Array.from(images.data),
    }),
  } as unknown as LidModel;
}

/** Gaussian points on a random d-dimensional subspace of R^D, as a batch [rows, 1, 1, D]. */
function subspacePoints(rng: TestRandom, rows: number, d: number, D: number): ImageBatch {
  const basis = Array.from({ length: d }, () => Array.from({ length: D }, () => rng.normal()));
  // Gram-Schmidt, so that distances in the subspace are kept.
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) {
      const dot = basis[i]!.reduce((s, v, t) => s + v * basis[j]![t]!, 0);
      basis[i] = basis[i]!.map((v, t) => v - dot * basis[j]![t]!);
    }
    const norm = Math.sqrt(basis[i]!.reduce((s, v) => s + v * v, 0));
    basis[i] = basis[i]!.map((v) => v / norm);
  }
  const data = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const z = Array.from({ length: d }, () => rng.normal());
    for (let t = 0; t < D; t++) data[r * D + t] = z.reduce((s, v, i) => s + v * basis[i]![t]!, 0);
  }
  return { data, dims: [rows, 1, 1, D] };
}

describe('baselines: LID', () => {
  it('evaluates -k / sum log(d_i / d_k) exactly, with the limits at duplicates', () => {
    expect(lidEstimate([1, 2, 4], 3)).to.be.closeTo(3 / Math.log(8), 1e-12);
    expect(lidEstimate([0.5, 1, 1, 3], 2)).to.be.closeTo(2 / Math.log(2), 1e-12);
    expect(lidEstimate([0, 1, 2], 3)).to.equal(0); // a duplicate neighbour: log 0 = -Infinity
    expect(lidEstimate([0, 0, 0], 3)).to.equal(0);
    expect(lidEstimate([2, 2, 2], 3)).to.equal(Number.POSITIVE_INFINITY);
  });

  it('estimates the dimension of points on 2- and 6-dimensional subspaces of R^40 against clean references there', async () => {
    const rng = new TestRandom(9);
    const D = 40;
    for (const d of [2, 6]) {
      const points = subspacePoints(rng, 900, d, D);
      const detector = new LidDetector(identityModel(D), { seed: 2, regressionImages: 300 });
      const off = offManifold(rng, points, 700, 200, 0.5);
      await detector.fit({
        clean: { images: rowsOfBatch(points, 0, 500), labels: new Int32Array(500) },
        attacked: { off: rowsOfBatch(off, 0, 100) },
      });
      // Two layers (the input and the tap), both the same points: the k = 20 of 100 neighbourhood is not
      // small, so Gaussian points read a little off their dimension (numpy: 2.23 and 5.49).
      // Against a random clean minibatch, and (the regression's clean rows) within minibatches of 100.
      for (const lids of [
        await detector.lids(rowsOfBatch(points, 500, 700)),
        await detector.lidsWithinBatches(rowsOfBatch(points, 500, 700)),
      ]) {
        expect(lids.cols).to.equal(2);
        const mean = lids.data.reduce((a, v) => a + v, 0) / lids.data.length;
        expect(mean).to.be.closeTo(d, 0.2 * d);
      }
    }
  });

  it('gives points pushed off a 2-dimensional manifold a higher LID and detects them (AUC > 0.95)', async () => {
    const rng = new TestRandom(10);
    const D = 40;
    const points = subspacePoints(rng, 1000, 2, D);
    const off = offManifold(rng, points, 600, 400, 1);
    const detector = new LidDetector(identityModel(D), { seed: 3 });
    await detector.fit({
      clean: { images: rowsOfBatch(points, 0, 600), labels: new Int32Array(600) },
      attacked: { off: rowsOfBatch(off, 0, 200) },
    });
    const clean = rowsOfBatch(points, 600, 1000);
    const attacked = rowsOfBatch(off, 200, 400);
    const lidClean = await detector.lids(clean);
    const lidOff = await detector.lids(attacked);
    const mean = (x: FeatureMatrix) => x.data.reduce((a, v) => a + v, 0) / x.data.length;
    expect(mean(lidOff)).to.be.above(2 * mean(lidClean));
    expect(auc(Array.from(await detector.score(clean)), Array.from(await detector.score(attacked)))).to.be.above(0.95);
    expect(detector.settings()).to.include({ k: 20, batchSize: 100 });
  });
});

/** Rows [from, to) of a batch. */
function rowsOfBatch(batch: ImageBatch, from: number, to: number): ImageBatch {
  const per = batch.data.length / batch.dims[0]!;
  return { data: batch.data.subarray(from * per, to * per), dims: [to - from, ...batch.dims.slice(1)] };
}

/** `rows` copies of manifold points from row `from` on, each moved by isotropic noise of norm `size` in R^D. */
function offManifold(rng: TestRandom, points: ImageBatch, from: number, rows: number, size: number): ImageBatch {
  const D = points.dims[3]!;
  const data = new Float32Array(rows * D);
  for (let r = 0; r < rows; r++) {
    const noise = Array.from({ length: D }, () => rng.normal());
    const norm = Math.sqrt(noise.reduce((a, v) => a + v * v, 0));
    for (let t = 0; t < D; t++)
      data[r * D + t] = points.data[(from + (r % (points.dims[0]! - from))) * D + t]! + (size * noise[t]!) / norm;
  }
  return { data, dims: [rows, 1, 1, D] };
}

describe('baselines: feature squeezing', () => {
  it('reduces bit depth as np.rint (half to even) and smooths as scipy.ndimage.median_filter', () => {
    const x: ImageBatch = { data: Float32Array.from([0, 0.24, 0.26, 0.5, 0.74, 1, 1 / 6, 0.5]), dims: [1, 1, 2, 4] };
    expect(Array.from(reduceBitDepth(x, 1).data)).to.deep.equal([0, 0, 0, 0, 1, 1, 0, 0]);
    const three = Array.from(
      reduceBitDepth({ data: Float32Array.from([1 / 6, 0.5, 5 / 6]), dims: [1, 1, 1, 3] }, 2).data,
    );
    expect(three.map((v) => Number(v.toFixed(4)))).to.deep.equal([0, 0.6667, 0.6667]);
    // Values from scipy.ndimage.median_filter(a, size=(1, s, s, 1), mode='reflect') (scipy 1.10).
    const a = Float32Array.from([0.1, 0.9, 0.3, 0.5, 0.7, 0.2, 0.8, 0.4, 0.6, 0, 1, 0.25, 0.35, 0.45, 0.55, 0.65]);
    const two = medianFilter({ data: a, dims: [1, 1, 4, 4] }, 2).data;
    expect(Array.from(two)).to.deep.equal(
      Array.from(
        Float32Array.from([0.1, 0.9, 0.9, 0.5, 0.7, 0.7, 0.8, 0.5, 0.7, 0.6, 0.8, 0.8, 0.6, 0.45, 0.55, 0.65]),
      ),
    );
    const threeByThree = medianFilter({ data: a, dims: [1, 1, 4, 4] }, 3).data;
    expect(Array.from(threeByThree)).to.deep.equal(
      Array.from(
        Float32Array.from([0.2, 0.3, 0.5, 0.5, 0.6, 0.6, 0.4, 0.4, 0.45, 0.55, 0.45, 0.55, 0.35, 0.45, 0.55, 0.65]),
      ),
    );
  });

  it('scores the largest L1 distance between softmax outputs before and after each squeezer, trained on nothing', async () => {
    // Logits [s, -s] with s the sum of the pixels: the softmax moves exactly as squeezing changes s.
    const model = {
      inputShape: [1, 2, 2],
      classes: 2,
      logits: async (images: ImageBatch) => {
        const rows = images.dims[0]!;
        const z = new Float32Array(rows * 2);
        for (let r = 0; r < rows; r++) {
          const s = images.data.subarray(r * 4, r * 4 + 4).reduce((a, v) => a + v, 0);
          z[r * 2] = s;
          z[r * 2 + 1] = -s;
        }
        return z;
      },
    };
    const detector = new FeatureSqueezingDetector(model);
    const empty: ImageBatch = { data: new Float32Array(0), dims: [0, 1, 2, 2] };
    await detector.fit({ clean: { images: empty, labels: new Int32Array(0) }, attacked: {} });
    expect(detector.cost.fit.images).to.equal(0);
    const images: ImageBatch = {
      data: Float32Array.from([0.2, 0.2, 0.2, 0.2, 0.9, 0.1, 0.1, 0.1]),
      dims: [2, 1, 2, 2],
    };
    const scores = await detector.score(images);
    const l1 = (s: number, t: number) => {
      const [p, q] = [softmaxRows(Float32Array.from([s, -s]), 2), softmaxRows(Float32Array.from([t, -t]), 2)];
      return Math.abs(p[0]! - q[0]!) + Math.abs(p[1]! - q[1]!);
    };
    // Image 1: 1-bit depth -> all 0 (s 0.8 -> 0); the 2x2 median leaves it alone.
    expect(scores[0]).to.be.closeTo(l1(0.8, 0), 1e-6);
    // Image 2: 1-bit -> [1, 0, 0, 0] (s 1.2 -> 1); the median (upper of 4, reflected) -> [0.9, 0.9, 0.9, 0.1] (s 2.8).
    expect(scores[1]).to.be.closeTo(Math.max(l1(1.2, 1), l1(1.2, 2.8)), 1e-6);
    const threshold = await detector.calibrate(images, { fpr: 0.5 });
    expect(threshold).to.equal(Math.min(scores[0]!, scores[1]!));
  });
});

describe('baselines: decision function', () => {
  it('is w . x + b per row', () => {
    const x: FeatureMatrix = { data: Float64Array.from([1, 2, 3, 4]), rows: 2, cols: 2 };
    expect(Array.from(decisionFunction({ weights: Float64Array.from([0.5, -1]), bias: 2 }, x))).to.deep.equal([
      0.5, -0.5,
    ]);
  });
});
