// Plain TypeScript reference implementations of every native kernel, written for clarity and
// float64 throughout. The property tests compare the addon against these; the kernel
// benchmark uses them as its slowest baseline.
import type { BankSpec, Combine, ScreenResult, TTest, TapBuffer } from '../../src/index.js';

export function subsetMeans(
  acts: Float32Array,
  rows: number,
  neurons: number,
  subsets: Uint32Array,
  k: number,
): Float64Array {
  const count = subsets.length / k;
  const out = new Float64Array(rows * count);
  for (let b = 0; b < rows; b++) {
    for (let f = 0; f < count; f++) {
      let s = 0;
      for (let j = 0; j < k; j++) s += acts[b * neurons + subsets[f * k + j]!]!;
      out[b * count + f] = s / k;
    }
  }
  return out;
}

function logNormal(x: number, mu: number, sd: number): number {
  const z = (x - mu) / sd;
  return -0.5 * z * z - Math.log(sd) - 0.5 * Math.log(2 * Math.PI);
}

export interface ReferenceDetect {
  score: Float64Array;
  familyScores: Float64Array;
  means: Float64Array;
  terms: Float64Array;
}

function combineSums(sums: number[], combine: Combine): { value: number; weights: number[] } {
  const best = sums.reduce((bi, v, i) => (v > sums[bi]! ? i : bi), 0);
  if (combine === 'max' || sums.length === 1)
    return { value: sums[best]!, weights: sums.map((_, i) => (i === best ? 1 : 0)) };
  const top = sums[best]!;
  const e = sums.map((v) => Math.exp(v - top));
  const total = e.reduce((a, v) => a + v, 0);
  return { value: top + Math.log(total), weights: e.map((v) => v / total) };
}

export function detectScores(
  bank: BankSpec,
  acts: Float32Array,
  rows: number,
  draws: Uint32Array,
  combine: Combine,
): ReferenceDetect {
  const count = bank.indices.length / bank.k;
  const A = bank.families;
  const m = rows === 0 ? 0 : draws.length / rows;
  const out: ReferenceDetect = {
    score: new Float64Array(rows),
    familyScores: new Float64Array(rows * A),
    means: new Float64Array(rows * m),
    terms: new Float64Array(rows * m * A),
  };
  for (let b = 0; b < rows; b++) {
    const sums = new Array<number>(A).fill(0);
    for (let i = 0; i < m; i++) {
      const f = draws[b * m + i]!;
      let s = 0;
      for (let j = 0; j < bank.k; j++) s += acts[b * bank.neurons + bank.indices[f * bank.k + j]!]!;
      const x = s / bank.k;
      out.means[b * m + i] = x;
      for (let a = 0; a < A; a++) {
        const term =
          logNormal(x, bank.mu1[a * count + f]!, bank.sd1[a * count + f]!) - logNormal(x, bank.mu0[f]!, bank.sd0[f]!);
        out.terms[(b * m + i) * A + a] = term;
        sums[a] = sums[a]! + term;
      }
    }
    sums.forEach((v, a) => {
      out.familyScores[b * A + a] = v;
    });
    out.score[b] = combineSums(sums, combine).value;
  }
  return out;
}

/**
 * The activation matrix [rows x neurons] that tap buffers stand for (what detectScores reads from
 * them in place): tap t's neurons follow those of taps 0..t-1; neuron j of tap t is column
 * columns[j] (or j) of image r's `width` values.
 */
export function packTaps(taps: TapBuffer[], rows: number): Float32Array {
  const sizes = taps.map((t) => t.columns?.length ?? t.width);
  const neurons = sizes.reduce((a, v) => a + v, 0);
  const out = new Float32Array(rows * neurons);
  for (let r = 0; r < rows; r++) {
    let at = r * neurons;
    taps.forEach((t, i) => {
      for (let j = 0; j < sizes[i]!; j++) out[at + j] = t.data[r * t.width + (t.columns?.[j] ?? j)]!;
      at += sizes[i]!;
    });
  }
  return out;
}

export function scoreGradient(
  bank: BankSpec,
  acts: Float32Array,
  rows: number,
  draws: Uint32Array,
  combine: Combine,
): Float64Array {
  const count = bank.indices.length / bank.k;
  const A = bank.families;
  const m = rows === 0 ? 0 : draws.length / rows;
  const ref = detectScores(bank, acts, rows, draws, combine);
  const grad = new Float64Array(rows * bank.neurons);
  for (let b = 0; b < rows; b++) {
    const sums = Array.from(ref.familyScores.subarray(b * A, (b + 1) * A));
    const { weights } = combineSums(sums, combine);
    for (let i = 0; i < m; i++) {
      const f = draws[b * m + i]!;
      const x = ref.means[b * m + i]!;
      let dx = (x - bank.mu0[f]!) / bank.sd0[f]! ** 2;
      for (let a = 0; a < A; a++) dx -= (weights[a]! * (x - bank.mu1[a * count + f]!)) / bank.sd1[a * count + f]! ** 2;
      for (let j = 0; j < bank.k; j++) grad[b * bank.neurons + bank.indices[f * bank.k + j]!]! += dx / bank.k;
    }
  }
  return grad;
}

/** Regularized incomplete beta by its continued fraction (Lentz), for the reference p-values. */
export function incompleteBeta(a: number, b: number, x: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const logFront = a * Math.log(x) + b * Math.log1p(-x) - (logGamma(a) + logGamma(b) - logGamma(a + b));
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(b, a, 1 - x);
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m < 100000; m++) {
    for (const num of [
      (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)),
      (-(a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1)),
    ]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-15) break;
  }
  return (Math.exp(logFront) * h) / a;
}

/** log Gamma(x), x > 0: Stirling's series at x >= 15, reached by the recurrence from below. */
export function logGamma(x: number): number {
  let shift = 0;
  while (x < 15) {
    shift += Math.log(x);
    x += 1;
  }
  const inv = 1 / x,
    inv2 = inv * inv;
  const series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680 - inv2 / 1188))));
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series - shift;
}

export function tTwoSidedP(t: number, df: number): number {
  if (Number.isNaN(t)) return NaN;
  if (!Number.isFinite(t)) return 0;
  return incompleteBeta(df / 2, 0.5, df / (df + t * t));
}

export function screen(
  clean: Float32Array,
  cleanRows: number,
  attacked: Float32Array,
  attackedRows: number,
  neurons: number,
  candidates: Uint32Array,
  k: number,
  test: TTest = 'welch',
): ScreenResult {
  const count = candidates.length / k;
  const r: ScreenResult = {
    mu0: new Float64Array(count),
    sd0: new Float64Array(count),
    mu1: new Float64Array(count),
    sd1: new Float64Array(count),
    t: new Float64Array(count),
    p: new Float64Array(count),
    d: new Float64Array(count),
  };
  const x0 = new Float64Array(cleanRows);
  const x1 = new Float64Array(attackedRows);
  for (let c = 0; c < count; c++) {
    const subset = candidates.subarray(c * k, (c + 1) * k);
    x0.set(subsetMeans(clean, cleanRows, neurons, subset, k));
    x1.set(subsetMeans(attacked, attackedRows, neurons, subset, k));
    const [m0, v0] = meanVar(x0);
    const [m1, v1] = meanVar(x1);
    const n0 = cleanRows,
      n1 = attackedRows;
    const pooled = ((n0 - 1) * v0 + (n1 - 1) * v1) / (n0 + n1 - 2);
    let se2: number, df: number;
    if (test === 'welch') {
      se2 = v0 / n0 + v1 / n1;
      df = se2 ** 2 / ((v0 / n0) ** 2 / (n0 - 1) + (v1 / n1) ** 2 / (n1 - 1));
    } else {
      se2 = pooled * (1 / n0 + 1 / n1);
      df = n0 + n1 - 2;
    }
    const diff = m1 - m0;
    r.mu0[c] = m0;
    r.sd0[c] = Math.sqrt(v0);
    r.mu1[c] = m1;
    r.sd1[c] = Math.sqrt(v1);
    r.t[c] = se2 > 0 ? diff / Math.sqrt(se2) : diff === 0 ? 0 : Math.sign(diff) * Infinity;
    r.p[c] = se2 > 0 ? tTwoSidedP(r.t[c]!, df) : diff === 0 ? 1 : 0;
    r.d[c] = pooled > 0 ? diff / Math.sqrt(pooled) : diff === 0 ? 0 : Math.sign(diff) * Infinity;
  }
  return r;
}

function meanVar(x: Float64Array): [number, number] {
  let s = 0;
  for (const v of x) s += v;
  const mean = s / x.length;
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  return [mean, ss / (x.length - 1)];
}
