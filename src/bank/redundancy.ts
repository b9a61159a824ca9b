// How much a class's fingerprints say the same thing: the mean |correlation| of their values on the
// class's clean images. 25 near-identical neurons are one detector in practice however many
// fingerprints the bank lists, so a family of detectors is only as diverse as this is low. The same
// standardized values serve the optional correlation cap of the selection (fit.ts).
import { SeededRandom } from '../random.js';
import type { ActivationSet } from './types.js';

/** Standardized values of fingerprints over a set of images, one column (of `rows`) per fingerprint. */
export class FingerprintColumns {
  readonly rows: number;
  private readonly cache = new Map<number, Float64Array | null>();

  constructor(
    private readonly set: ActivationSet,
    private readonly neurons: number,
    private readonly indices: Uint32Array,
    private readonly k: number,
  ) {
    this.rows = set.rows;
  }

  /** Fingerprint f's values, centered and scaled to unit norm; null when they are constant. */
  column(f: number): Float64Array | null {
    const hit = this.cache.get(f);
    if (hit !== undefined) return hit;
    const { acts } = this.set;
    const out = new Float64Array(this.rows);
    let mean = 0;
    for (let r = 0; r < this.rows; r++) {
      let v = 0;
      for (let j = 0; j < this.k; j++) v += acts[r * this.neurons + this.indices[f * this.k + j]!]!;
      out[r] = v / this.k;
      mean += out[r]!;
    }
    mean /= this.rows;
    let norm = 0;
    for (let r = 0; r < this.rows; r++) {
      out[r]! -= mean;
      norm += out[r]! ** 2;
    }
    const column = norm > 0 && Number.isFinite(norm) ? out.map((v) => v / Math.sqrt(norm)) : null;
    this.cache.set(f, column);
    return column;
  }

  /** |correlation| of fingerprints a and b (0 when either is constant). */
  correlation(a: number, b: number): number {
    const x = this.column(a);
    const y = this.column(b);
    if (x === null || y === null) return 0;
    let dot = 0;
    for (let r = 0; r < this.rows; r++) dot += x[r]! * y[r]!;
    return Math.abs(dot);
  }
}

/**
 * Mean |correlation| over pairs of the `count` fingerprints: every pair when there are at most
 * `maxPairs`, else that many pairs drawn with a fixed seed (the estimate's error is then about
 * 0.003). Null for fewer than two fingerprints or fewer than three images.
 */
export function meanAbsCorrelation(columns: FingerprintColumns, count: number, maxPairs = 20_000): number | null {
  if (count < 2 || columns.rows < 3) return null;
  const pairs = (count * (count - 1)) / 2;
  let sum = 0;
  let n = 0;
  if (pairs <= maxPairs) {
    for (let a = 0; a < count; a++) {
      for (let b = a + 1; b < count; b++) {
        sum += columns.correlation(a, b);
        n++;
      }
    }
  } else {
    const rng = new SeededRandom(0);
    for (; n < maxPairs; n++) {
      const a = rng.int(count);
      let b = rng.int(count - 1);
      if (b >= a) b++;
      sum += columns.correlation(a, b);
    }
  }
  return sum / n;
}
