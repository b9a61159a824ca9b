// The family of detectors a bank offers, per class: the random draw picks its detector from this
// family, so its size and diversity are the method's security. Fingerprint counts alone overstate
// it: a bank may hold the same subset several times (banks fitted before candidates were made
// distinct did), many fingerprints may share neurons or a layer, and near-identical neurons are
// one detector in practice (redundancy, measured at fit time on clean images: redundancy.ts).
import type { FingerprintBank } from './bank.js';

/** Fingerprints drawn per input when neither the caller nor a bank's calibration says (the detector's default). */
export const defaultDraws = 25;

export interface ClassFamily {
  class: number;
  /** Fingerprints stored, and distinct ones among them (the same neuron subset counts once). */
  fingerprints: number;
  distinct: number;
  /** Distinct neurons the fingerprints use. */
  neurons: number;
  /** Distinct neurons per tapped layer, in the bank's tap order. */
  perTap: number[];
  /** log10 of the number of distinct draws of `draws` fingerprints from the distinct ones. */
  log10Draws: number;
  /** Mean |correlation| of the fingerprints' clean values, when the bank recorded it. */
  redundancy: number | null;
}

/** log10 of the binomial coefficient C(n, m), exact enough for reporting (log-gamma by summation). */
export function log10Binomial(n: number, m: number): number {
  if (m < 0 || m > n) return Number.NEGATIVE_INFINITY;
  const r = Math.min(m, n - m);
  let sum = 0;
  for (let i = 1; i <= r; i++) sum += Math.log10(n - r + i) - Math.log10(i);
  return sum;
}

/** The family of class c: what a draw of `draws` fingerprints can pick from. */
export function classFamily(bank: FingerprintBank, c: number, draws: number): ClassFamily {
  const { start, count } = bank.range(c);
  const { k, taps } = bank.header;
  const subsets = new Set<string>();
  const neurons = new Set<number>();
  const idx = bank.arrays.indices;
  for (let f = start; f < start + count; f++) {
    const subset = [...idx.subarray(f * k, (f + 1) * k)].sort((a, b) => a - b);
    subsets.add(subset.join(','));
    for (const j of subset) neurons.add(j);
  }
  const ends: number[] = [];
  let at = 0;
  for (const t of taps) {
    at += t.size;
    ends.push(at);
  }
  const perTap = taps.map(() => 0);
  for (const j of neurons) perTap[ends.findIndex((end) => j < end)]!++;
  const redundancy = bank.header.classes[c]!.redundancy;
  return {
    class: c,
    fingerprints: count,
    distinct: subsets.size,
    neurons: neurons.size,
    perTap,
    log10Draws: log10Binomial(subsets.size, Math.min(draws, subsets.size)),
    redundancy: redundancy ?? null,
  };
}

/** Every class's family (classes the bank did not fit have empty ones). */
export function bankFamily(bank: FingerprintBank, draws: number): ClassFamily[] {
  return bank.header.classes.map((_, c) => classFamily(bank, c, draws));
}
