// Candidate fingerprints: C random subsets of k distinct neurons out of N, drawn with Floyd's
// algorithm (k draws per subset, no rejection loop however close k is to N).
import type { AttackRandom } from '../attacks/index.js';

export function drawCandidates(count: number, k: number, neurons: number, rng: AttackRandom): Uint32Array {
  if (!Number.isInteger(k) || k < 1 || k > neurons)
    throw new RangeError(`Expected an integer k in [1, ${neurons}] for k but received ${k}`);
  if (!Number.isInteger(count) || count < 1)
    throw new RangeError(`Expected a positive integer for candidates but received ${count}`);
  const out = new Uint32Array(count * k);
  const chosen = new Set<number>();
  for (let c = 0; c < count; c++) {
    chosen.clear();
    for (let j = neurons - k; j < neurons; j++) {
      const t = rng.int(j + 1);
      chosen.add(chosen.has(t) ? j : t);
    }
    let i = c * k;
    for (const v of chosen) out[i++] = v;
  }
  return out;
}
