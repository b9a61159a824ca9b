// Candidate fingerprints: distinct subsets of k distinct neurons out of N, each sorted ascending.
// No subset is screened twice: subsets drawn independently repeat (at k = 1 each neuron about
// C / N times), and a class's top K then holds the same few neurons many times, which shrinks the
// family of detectors the random draw picks from. When C covers every possible subset, all of them
// are screened (at k = 1: every neuron once).
import type { SeededRandom } from '../random.js';

/** Subsets enumerated outright, rather than sampled, when there are at most this many. */
const ENUMERATE_LIMIT = 4_000_000;

/** The number of k-subsets of N, or Infinity past 2^53. */
export function subsetCount(neurons: number, k: number): number {
  let total = 1;
  for (let i = 0; i < k; i++) {
    total = (total * (neurons - i)) / (i + 1);
    if (total > Number.MAX_SAFE_INTEGER) return Number.POSITIVE_INFINITY;
  }
  return Math.round(total);
}

/**
 * min(count, C(N, k)) distinct candidates [C' x k], each sorted ascending: every subset (in
 * lexicographic order) when count >= C(N, k), else a uniform sample of distinct subsets.
 */
export function drawCandidates(count: number, k: number, neurons: number, rng: SeededRandom): Uint32Array {
  if (!Number.isInteger(k) || k < 1 || k > neurons)
    throw new RangeError(`Expected an integer k in [1, ${neurons}] for k but received ${k}`);
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`Expected a positive integer for candidates but received ${count}`);
  const total = subsetCount(neurons, k);
  if (count >= total) return allSubsets(neurons, k, total);
  if (k === 1) return sampleDistinct(neurons, count, rng).sort();
  if (total <= ENUMERATE_LIMIT && count * 2 >= total) {
    // Most of the subsets are wanted: enumerate them and keep a random `count` (rejection would stall).
    const all = allSubsets(neurons, k, total);
    const keep = sampleDistinct(total, count, rng).sort();
    const out = new Uint32Array(count * k);
    keep.forEach((c, i) => {
      out.set(all.subarray(c * k, (c + 1) * k), i * k);
    });
    return out;
  }
  const out = new Uint32Array(count * k);
  const seen = new Set<string>();
  let filled = 0;
  while (filled < count) {
    const subset = sampleDistinct(neurons, k, rng).sort();
    const key = subset.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    out.set(subset, filled * k);
    filled++;
  }
  return out;
}

/** `count` distinct values of [0, n) (Floyd's algorithm: `count` draws, no rejection loop). */
function sampleDistinct(n: number, count: number, rng: SeededRandom): Uint32Array {
  const chosen = new Set<number>();
  for (let j = n - count; j < n; j++) {
    const t = rng.int(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return Uint32Array.from(chosen);
}

/** Every k-subset of [0, N) in lexicographic order. */
function allSubsets(neurons: number, k: number, total: number): Uint32Array {
  const out = new Uint32Array(total * k);
  const subset = Array.from({ length: k }, (_, i) => i);
  for (let c = 0; c < total; c++) {
    out.set(subset, c * k);
    // Next combination: bump the rightmost index that can still move, reset those after it.
    let i = k - 1;
    while (i >= 0 && subset[i] === neurons - k + i) i--;
    if (i < 0) break;
    subset[i]!++;
    for (let j = i + 1; j < k; j++) subset[j] = subset[j - 1]! + 1;
  }
  return out;
}
