// Small dense linear algebra in float64 for the baselines: a Cholesky solve (the logistic
// regression's Newton steps) and the pseudo-inverse of a symmetric matrix by Jacobi rotations (the
// Mahalanobis detector's tied precision, as scikit-learn's EmpiricalCovariance takes it with pinvh).
// Matrices are row-major Float64Arrays of n x n; n is at most a few hundred here.

/** Solves A x = b for symmetric positive definite A; null when A is not (numerically) positive definite. */
export function choleskySolve(a: Float64Array, b: Float64Array, n: number): Float64Array | null {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * n + j]!;
      for (let k = 0; k < j; k++) s -= l[i * n + k]! * l[j * n + k]!;
      if (i === j) {
        if (!(s > 0)) return null;
        l[i * n + i] = Math.sqrt(s);
      } else {
        l[i * n + j] = s / l[j * n + j]!;
      }
    }
  }
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * n + k]! * y[k]!;
    y[i] = s / l[i * n + i]!;
  }
  const x = new Float64Array(n);
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < n; k++) s -= l[k * n + i]! * x[k]!;
    x[i] = s / l[i * n + i]!;
  }
  return x;
}

/**
 * Eigenvalues and eigenvectors of a symmetric matrix by cyclic Jacobi rotations: A = V diag(values) V^T,
 * eigenvector j in column j of V. Accurate to rounding for the small matrices used here.
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const m = Float64Array.from(a);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    let total = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        const x = m[i * n + j]! * m[i * n + j]!;
        total += x;
        if (i !== j) off += x;
      }
    if (off <= 1e-30 * total || off === 0) break;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q]!;
        if (apq === 0) continue;
        const app = m[p * n + p]!;
        const aqq = m[q * n + q]!;
        // The rotation that zeroes m[p][q]: t = tan(theta), the smaller root for stability.
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const mkp = m[k * n + p]!;
          const mkq = m[k * n + q]!;
          m[k * n + p] = c * mkp - s * mkq;
          m[k * n + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < n; k++) {
          const mpk = m[p * n + k]!;
          const mqk = m[q * n + k]!;
          m[p * n + k] = c * mpk - s * mqk;
          m[q * n + k] = s * mpk + c * mqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p]!;
          const vkq = v[k * n + q]!;
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = m[i * n + i]!;
  return { values, vectors: v };
}

/**
 * A square root of the Moore-Penrose pseudo-inverse of a symmetric positive semi-definite matrix:
 * W [rank x n] with W^T W = pinv(A), so that x^T pinv(A) x = ||W x||^2. Eigenvalues at most
 * n * 2^-52 * the largest count as zero (scipy.linalg.pinvh's default cutoff), so a direction with no
 * variance (a channel that never fires) is ignored instead of dividing by zero.
 */
export function pseudoInverseRoot(a: Float64Array, n: number): { rank: number; root: Float64Array } {
  const { values, vectors } = symmetricEigen(a, n);
  const largest = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  const cutoff = largest * n * Number.EPSILON;
  const kept = [...values.keys()].filter((e) => values[e]! > cutoff);
  const root = new Float64Array(kept.length * n);
  kept.forEach((e, row) => {
    const scale = 1 / Math.sqrt(values[e]!);
    for (let j = 0; j < n; j++) root[row * n + j] = vectors[j * n + e]! * scale;
  });
  return { rank: kept.length, root };
}

/** The pseudo-inverse of a symmetric positive semi-definite matrix, W^T W from pseudoInverseRoot. */
export function pinvSymmetric(a: Float64Array, n: number): Float64Array {
  const { rank, root } = pseudoInverseRoot(a, n);
  const out = new Float64Array(n * n);
  for (let e = 0; e < rank; e++)
    for (let i = 0; i < n; i++) {
      const wi = root[e * n + i]!;
      if (wi === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += wi * root[e * n + j]!;
    }
  return out;
}
