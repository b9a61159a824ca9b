// Class-conditional Gaussians with one tied covariance over a layer's features (Lee et al. 2018,
// eq. 1): class means, the covariance of every row about its class mean (maximum likelihood,
// divided by n, as scikit-learn's EmpiricalCovariance), and its pseudo-inverse P as the precision.
// The Mahalanobis distance of f to class c is M_c(f) = (f - mu_c)^T P (f - mu_c) = ||W f - W mu_c||^2
// with W^T W = P, so a row costs one product with W and then a short difference per class.
import { pseudoInverseRoot } from './matrix.js';

export class TiedGaussians {
  /** W mu_c per class: [classes x rank]. */
  private readonly whitenedMeans: Float64Array;

  constructor(
    /** [classes x dim] */
    readonly means: Float64Array,
    /** W [rank x dim] with W^T W = P. */
    readonly root: Float64Array,
    readonly rank: number,
    readonly classes: number,
    readonly dim: number,
  ) {
    this.whitenedMeans = new Float64Array(classes * rank);
    for (let c = 0; c < classes; c++) this.whiten(means.subarray(c * dim, (c + 1) * dim), this.whitenedMeans, c);
  }

  /** Fits on rows of features [rows x dim] with their class labels; every class needs a row. */
  static fit(features: Float64Array, rows: number, dim: number, labels: Int32Array, classes: number): TiedGaussians {
    if (features.length !== rows * dim)
      throw new TypeError(`Expected ${rows} x ${dim} features but received ${features.length} values`);
    if (labels.length !== rows) throw new TypeError(`Expected ${rows} labels but received ${labels.length}`);
    const means = new Float64Array(classes * dim);
    const counts = new Float64Array(classes);
    for (let r = 0; r < rows; r++) {
      const c = labels[r]!;
      if (!(c >= 0 && c < classes))
        throw new RangeError(`Expected labels in [0, ${classes}) but received ${c} at row ${r}`);
      counts[c]!++;
      for (let j = 0; j < dim; j++) means[c * dim + j] += features[r * dim + j]!;
    }
    const empty = counts.indexOf(0);
    if (empty >= 0) throw new RangeError(`Expected clean fit images of every class but class ${empty} has none`);
    for (let c = 0; c < classes; c++) for (let j = 0; j < dim; j++) means[c * dim + j]! /= counts[c]!;
    // Covariance of the class-centred rows (their mean is zero by construction), accumulated in float64.
    const cov = new Float64Array(dim * dim);
    const centred = new Float64Array(dim);
    for (let r = 0; r < rows; r++) {
      const c = labels[r]!;
      for (let j = 0; j < dim; j++) centred[j] = features[r * dim + j]! - means[c * dim + j]!;
      for (let i = 0; i < dim; i++) {
        const ci = centred[i]!;
        if (ci === 0) continue;
        for (let j = 0; j <= i; j++) cov[i * dim + j] += ci * centred[j]!;
      }
    }
    for (let i = 0; i < dim; i++)
      for (let j = 0; j <= i; j++) {
        cov[i * dim + j]! /= rows;
        cov[j * dim + i] = cov[i * dim + j]!;
      }
    const { rank, root } = pseudoInverseRoot(cov, dim);
    return new TiedGaussians(means, root, rank, classes, dim);
  }

  /** W f into row `at` of `out` [.. x rank]. */
  private whiten(f: Float64Array, out: Float64Array, at: number): void {
    const { rank, dim, root } = this;
    for (let e = 0; e < rank; e++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += root[e * dim + j]! * f[j]!;
      out[at * rank + e] = s;
    }
  }

  /** M_c(f) for every row of `features` [rows x dim] and class c: [rows x classes]. */
  distances(features: Float64Array, rows: number): Float64Array {
    const { rank, dim, classes } = this;
    const out = new Float64Array(rows * classes);
    const g = new Float64Array(rank);
    for (let r = 0; r < rows; r++) {
      this.whiten(features.subarray(r * dim, (r + 1) * dim), g, 0);
      for (let c = 0; c < classes; c++) {
        let m = 0;
        for (let e = 0; e < rank; e++) {
          const d = g[e]! - this.whitenedMeans[c * rank + e]!;
          m += d * d;
        }
        out[r * classes + c] = m;
      }
    }
    return out;
  }

  /** The smallest distance per row and the class it belongs to. */
  nearest(features: Float64Array, rows: number): { distance: Float64Array; label: Int32Array } {
    const all = this.distances(features, rows);
    const distance = new Float64Array(rows);
    const label = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = 0;
      for (let c = 1; c < this.classes; c++) if (all[r * this.classes + c]! < all[r * this.classes + best]!) best = c;
      distance[r] = all[r * this.classes + best]!;
      label[r] = best;
    }
    return { distance, label };
  }

  /** d (M_c(f) / 2) / d f = P (f - mu_c) = W^T (W f - W mu_c) for row r of `features`. */
  halfDistanceGradient(features: Float64Array, r: number, c: number): Float64Array {
    const { rank, dim, root } = this;
    const g = new Float64Array(rank);
    this.whiten(features.subarray(r * dim, (r + 1) * dim), g, 0);
    for (let e = 0; e < rank; e++) g[e]! -= this.whitenedMeans[c * rank + e]!;
    const out = new Float64Array(dim);
    for (let e = 0; e < rank; e++) {
      const ge = g[e]!;
      for (let j = 0; j < dim; j++) out[j] += root[e * dim + j]! * ge;
    }
    return out;
  }
}
