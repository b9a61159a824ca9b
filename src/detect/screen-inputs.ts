// Fail closed on inputs the detector cannot judge. A NaN pixel makes every logit NaN and the argmax
// says class 0; if the random draw then misses the neurons the NaN reached, the score is finite and
// the input would pass as clean. So every input is checked before it is scored: its pixels finite
// and inside the model's input range, its logits finite, and (when the kernel reports one) its
// drawn activations finite. An input that fails is flagged, with the reason, never scored as clean.
import { rowsWithin } from '../kernels.js';

/** The first non-finite value of each row, or values outside [lo, hi], as a reason; undefined when fine. */
export function pixelProblems(
  data: Float32Array,
  rows: number,
  range: readonly [number, number] | 'any',
): Array<string | undefined> {
  const per = rows === 0 ? 0 : data.length / rows;
  const out: Array<string | undefined> = new Array(rows);
  // Most rows are fine: one comparison pair per value shows it (NaN fails both), and only a row that
  // fails it is scanned again for the reason. On the committed CNN the full scan cost 2% of inference.
  // Finite bounds for 'any' too, so that the one test also fails +-Infinity.
  const lo0 = range === 'any' ? -Number.MAX_VALUE : range[0] - 1e-6;
  const hi0 = range === 'any' ? Number.MAX_VALUE : range[1] + 1e-6;
  // The scan runs natively (vectorized: a tenth of the time of this loop, which detect() paid on
  // every batch); rowsWithinReference is the same test in TypeScript.
  const fine = rows === 0 ? new Uint8Array(0) : rowsWithin({ data, rows, lo: lo0, hi: hi0 });
  for (let r = 0; r < rows; r++) {
    if (fine[r] === 1) continue;
    let nonFinite = 0;
    let first = -1;
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = r * per; i < (r + 1) * per; i++) {
      const v = data[i]!;
      if (v - v !== 0) {
        // NaN or +-Infinity: v - v is NaN for both.
        if (nonFinite++ === 0) first = i - r * per;
        continue;
      }
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (nonFinite > 0) {
      out[r] =
        `${nonFinite} non-finite pixel value${nonFinite > 1 ? 's' : ''} (${data[r * per + first]} at index ${first})`;
    } else if (range !== 'any' && per > 0 && (lo < range[0] - 1e-6 || hi > range[1] + 1e-6)) {
      out[r] = `pixel values in [${lo}, ${hi}] outside the model's input range [${range[0]}, ${range[1]}]`;
    }
  }
  return out;
}

/** What rowsWithin computes natively, in TypeScript: the reference its tests compare against. */
export function rowsWithinReference(data: Float32Array, rows: number, lo: number, hi: number): Uint8Array {
  const per = rows === 0 ? 0 : data.length / rows;
  const out = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) {
    let fine = 1;
    for (let i = r * per; i < (r + 1) * per; i++) {
      const v = data[i]!;
      if (!(v >= lo && v <= hi)) {
        fine = 0;
        break;
      }
    }
    out[r] = fine;
  }
  return out;
}

/** Rows whose values (logits, or tapped activations) hold a non-finite number, as a reason naming `what`. */
export function nonFiniteRows(values: Float32Array, rows: number, what: string): Array<string | undefined> {
  const per = rows === 0 ? 0 : values.length / rows;
  const out: Array<string | undefined> = new Array(rows);
  for (let r = 0; r < rows; r++) {
    for (let i = r * per; i < (r + 1) * per; i++) {
      const v = values[i]!;
      if (v - v !== 0) {
        out[r] = `non-finite ${what} (${v} at ${i - r * per})`;
        break;
      }
    }
  }
  return out;
}

/** The first reason of each row among several checks. */
export function firstProblem(...checks: Array<Array<string | undefined>>): Array<string | undefined> {
  const rows = Math.max(0, ...checks.map((c) => c.length));
  // Dense (no holes): callers concatenate these with flatMap, which would drop holes.
  const out: Array<string | undefined> = new Array(rows).fill(undefined);
  // Most checks find nothing: skip those (holes and undefined entries alike) without a per-row search.
  const found = checks.filter((c) => c.some((v) => v !== undefined));
  if (found.length === 0) return out;
  for (let r = 0; r < rows; r++) out[r] = found.find((c) => c[r] !== undefined)?.[r];
  return out;
}
