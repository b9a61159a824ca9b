// What `nfp bank info` shows, as one JSON-ready object: the header, each class's counts and its
// family of detectors (family.ts), the spread of the fingerprints over the tapped layers, and the
// histogram of their effect sizes.
import type { FingerprintBank } from './bank.js';
import { bankFamily, defaultDraws } from './family.js';
import type { ClassFamily } from './family.js';
import type { BankClass, BankHeader, BankTap } from './types.js';

export interface BankDescription {
  model: BankHeader['model'];
  taps: Array<BankTap & { used: number }>;
  neurons: number;
  k: number;
  families: string[];
  fingerprints: number;
  /** Draws per input the family metrics assume: the calibration's, else 25. */
  draws: number;
  fit: BankHeader['fit'];
  calibration: BankHeader['calibration'] | null;
  created: string;
  classes: Array<{ class: number } & BankClass & { family: ClassFamily }>;
  /** Fingerprints stored more than once within their class (banks fitted before candidates were distinct). */
  duplicates: number;
  effectHistogram: Array<{ from: number; to: number; count: number }>;
  /** Present for a bank read from a signed file: the key id (hex). */
  signature?: { keyId: string };
}

export function describeBank(bank: FingerprintBank): BankDescription {
  const h = bank.header;
  const draws = h.calibration?.draws ?? defaultDraws;
  const family = bankFamily(bank, draws);
  // Effect sizes |d| in bins of 0.5 from 1.5 up (relaxed classes may hold smaller ones).
  const edges = [0, 1.5, 2, 2.5, 3, 3.5, 4, 5, Number.POSITIVE_INFINITY];
  const histogram = edges.slice(0, -1).map((lo, i) => ({
    from: lo,
    to: edges[i + 1]!,
    count: bank.arrays.effect.filter((d) => d >= lo && d < edges[i + 1]!).length,
  }));
  return {
    model: h.model,
    taps: h.taps.map((t, i) => ({ ...t, used: family.reduce((n, f) => n + f.perTap[i]!, 0) })),
    neurons: h.neurons,
    k: h.k,
    families: h.families,
    fingerprints: bank.fingerprints,
    draws,
    fit: h.fit,
    calibration: h.calibration ?? null,
    created: h.created,
    classes: h.classes.map((c, i) => ({ class: i, ...c, family: family[i]! })),
    duplicates: family.reduce((n, f) => n + f.fingerprints - f.distinct, 0),
    effectHistogram: histogram,
    ...(bank.signature ? { signature: { keyId: bank.signature.keyId } } : {}),
  };
}
