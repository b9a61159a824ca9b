// Screening for the offline gap experiments (scripts/gap-*.ts): candidate features, single neurons or
// differences x_a - x_b between two neurons, ranked by |Cohen's d| between clean and attacked activations, the
// strongest kept with their Gaussian statistics (as the library screens single neurons, without its t-test).
import type { GaussianPair } from './gap-rules.js';

/** A feature x_a - x_b (b = -1: the neuron x_a alone). */
export interface Features {
  a: Int32Array;
  b: Int32Array;
}
/** Kept features of one class and family, with their clean and attacked Gaussians. */
export interface Screened extends Features, GaussianPair {}

/** Every neuron of an activation vector of N, alone: the library's candidates at k = 1. */
export const everyNeuron = (N: number): Features => ({
  a: Int32Array.from({ length: N }, (_, j) => j),
  b: new Int32Array(N).fill(-1),
});

/** The first `k` of screened features (they are ordered by effect). */
export const strongestOf = (s: Screened, k: number): Screened => ({
  a: s.a.slice(0, k),
  b: s.b.slice(0, k),
  mu0: s.mu0.slice(0, k),
  sd0: s.sd0.slice(0, k),
  mu1: s.mu1.slice(0, k),
  sd1: s.sd1.slice(0, k),
});

/** Feature (a, b)'s value in row `row` of an activation matrix with N columns. */
export const value = (acts: Float32Array, row: number, N: number, a: number, b: number) =>
  b < 0 ? acts[row * N + a]! : acts[row * N + a]! - acts[row * N + b]!;

/** Means and sample sds of every feature over the rows of an activation matrix [n x N], in float64. */
function moments(acts: Float32Array, n: number, N: number, f: Features): { mu: Float64Array; sd: Float64Array } {
  const F = f.a.length;
  const mu = new Float64Array(F);
  const sq = new Float64Array(F);
  for (let r = 0; r < n; r++)
    for (let j = 0; j < F; j++) {
      const v = value(acts, r, N, f.a[j]!, f.b[j]!);
      mu[j] += v;
      sq[j] += v * v;
    }
  const sd = new Float64Array(F);
  for (let j = 0; j < F; j++) {
    mu[j]! /= n;
    sd[j] = Math.sqrt(Math.max((sq[j]! - n * mu[j]! * mu[j]!) / Math.max(1, n - 1), 0));
  }
  return { mu, sd };
}

/** |Cohen's d| of every feature (pooled sd), and the `keep` strongest with their statistics (sd floored). */
export function screen(
  clean: Float32Array,
  n0: number,
  attacked: Float32Array,
  n1: number,
  N: number,
  f: Features,
  keep: number,
): Screened {
  const a = moments(clean, n0, N, f);
  const b = moments(attacked, n1, N, f);
  const d = new Float64Array(f.a.length);
  for (let j = 0; j < d.length; j++) {
    const pooled = Math.sqrt(((n0 - 1) * a.sd[j]! ** 2 + (n1 - 1) * b.sd[j]! ** 2) / Math.max(1, n0 + n1 - 2));
    d[j] = pooled > 1e-6 ? Math.abs(b.mu[j]! - a.mu[j]!) / pooled : 0;
  }
  const order = [...d.keys()].sort((x, y) => d[y]! - d[x]!).slice(0, keep);
  const floor = (v: number) => Math.max(v, 1e-3);
  return {
    a: Int32Array.from(order, (j) => f.a[j]!),
    b: Int32Array.from(order, (j) => f.b[j]!),
    mu0: Float64Array.from(order, (j) => a.mu[j]!),
    sd0: Float64Array.from(order, (j) => floor(a.sd[j]!)),
    mu1: Float64Array.from(order, (j) => b.mu[j]!),
    sd1: Float64Array.from(order, (j) => floor(b.sd[j]!)),
  };
}
