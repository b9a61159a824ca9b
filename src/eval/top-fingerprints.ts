// A bank cut down to each class's top K fingerprints, as `nfp fit --top K` would have kept them
// from the same screen: no refit is needed because a smaller K only keeps a prefix of the choice a
// larger K made. With one attack family fit ranks by |d| alone, so the top K by the bank's recorded
// effect are exactly what it would keep. With several, fit shares the budget out among the families
// (a round-robin over each family's own |d| ranking, see selectPerFamily in src/bank/fit.ts); that
// round-robin is repeated here on each family's Cohen's d, recomputed from the bank's means and
// standard deviations.
import { FingerprintBank } from '../bank/index.js';
import type { BankClass, ClassFingerprints } from '../bank/index.js';

/** Row numbers (0 .. count-1) of the class's fingerprints ordered by the recorded effect, largest first. */
function byEffect(f: ClassFingerprints, rows: number[]): number[] {
  return [...rows].sort((a, b) => f.effect[b]! - f.effect[a]! || a - b);
}

/** |Cohen's d| of row i against family `family`, with the pooled standard deviation as the screen computes it. */
function familyEffect(f: ClassFingerprints, entry: BankClass, family: number, i: number): number {
  const count = f.mu0.length;
  const n0 = entry.clean;
  const n1 = entry.attacked[family] ?? 0;
  // A family with fewer than 2 attacked images borrowed the other families' statistics: its class is
  // relaxed and ranked by effect, and the family adds no ranking of its own.
  if (n0 < 2 || n1 < 2) return 0;
  const sd0 = f.sd0[i]!;
  const sd1 = f.sd1[family * count + i]!;
  const pooled = Math.sqrt(((n0 - 1) * sd0 * sd0 + (n1 - 1) * sd1 * sd1) / (n0 + n1 - 2));
  return pooled > 0 ? Math.abs(f.mu1[family * count + i]! - f.mu0[i]!) / pooled : 0;
}

/** Which of a class's fingerprints a fit with topK = top would have kept, in the bank's order (strongest first). */
export function topRows(f: ClassFingerprints, entry: BankClass, families: number, top: number, dMin: number): number[] {
  const all = Array.from(f.mu0, (_, i) => i);
  if (all.length <= top) return all;
  // A relaxed class was ranked by the largest |d| only, as is a single family.
  if (families <= 1 || entry.relaxed !== undefined) return byEffect(f, all).slice(0, top);
  const ranked = Array.from({ length: families }, (_, fam) => {
    const d = all.map((i) => familyEffect(f, entry, fam, i));
    return all.filter((i) => d[i]! >= dMin).sort((a, b) => d[b]! - d[a]! || a - b);
  });
  const chosen = new Set<number>();
  const next = ranked.map(() => 0);
  while (chosen.size < top && ranked.some((list, fam) => next[fam]! < list.length)) {
    for (const [fam, list] of ranked.entries()) {
      while (next[fam]! < list.length && chosen.has(list[next[fam]!]!)) next[fam]!++;
      if (next[fam]! < list.length && chosen.size < top) chosen.add(list[next[fam]!++]!);
    }
  }
  // Recomputed d can fall just below dMin where fit's passed (the sd floors): fill up by effect.
  for (const i of byEffect(f, all)) if (chosen.size < top) chosen.add(i);
  return byEffect(f, [...chosen]);
}

function subset(f: ClassFingerprints, rows: number[], families: number, k: number): ClassFingerprints {
  const count = f.mu0.length;
  const n = rows.length;
  const pick = (a: Float32Array) => Float32Array.from(rows, (i) => a[i]!);
  const pickFamilies = (a: Float32Array) => {
    const out = new Float32Array(families * n);
    for (let fam = 0; fam < families; fam++)
      rows.forEach((i, j) => {
        out[fam * n + j] = a[fam * count + i]!;
      });
    return out;
  };
  const indices = new Uint32Array(n * k);
  rows.forEach((i, j) => {
    indices.set(f.indices.subarray(i * k, (i + 1) * k), j * k);
  });
  return {
    indices,
    mu0: pick(f.mu0),
    sd0: pick(f.sd0),
    mu1: pickFamilies(f.mu1),
    sd1: pickFamilies(f.sd1),
    effect: pick(f.effect),
    passed: f.passed,
    ...(f.relaxed !== undefined ? { relaxed: f.relaxed } : {}),
  };
}

/**
 * The bank with at most `top` fingerprints per class, uncalibrated (its thresholds no longer apply).
 * Throws when `top` exceeds the fit's own --top: a larger bank needs a refit.
 */
export function keepTopFingerprints(bank: FingerprintBank, top: number): FingerprintBank {
  const { header } = bank;
  if (!Number.isInteger(top) || top < 1)
    throw new RangeError(`Expected a positive integer for top but received ${top}`);
  if (top > header.fit.topK)
    throw new RangeError(
      `Expected top at most the ${header.fit.topK} fingerprints per class the bank was fitted to keep but ` +
        `received ${top}: more needs a refit`,
    );
  const fitted = new Map<number, { fingerprints: ClassFingerprints; clean: number; attacked: number[] }>();
  header.classes.forEach((entry, c) => {
    if (!entry.fitted) return;
    const all = bank.classFingerprints(c);
    const rows = topRows(all, entry, header.families.length, top, header.fit.dMin);
    fitted.set(c, {
      fingerprints: subset(all, rows, header.families.length, header.k),
      clean: entry.clean,
      attacked: entry.attacked,
    });
  });
  const { classes: _classes, calibration: _calibration, ...rest } = header;
  return FingerprintBank.fromClasses({ ...rest, fit: { ...header.fit, topK: top } }, fitted);
}
