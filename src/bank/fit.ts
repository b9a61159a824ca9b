// Fitting one class's fingerprints: screen distinct candidate neuron subsets with the native
// `screen` kernel against each attack family, keep the subsets that separate clean from at least
// one family (p < pMax and |d| >= dMin), and the top K of those, the budget shared among the
// families. Each family's attacked statistics are kept apart: pooling families into one Gaussian
// scores worse than either alone.
import { screen } from '../kernels.js';
import type { ScreenResult } from '../native.js';
import type { SeededRandom } from '../random.js';
import { emptyArrays } from './bank.js';
import { drawCandidates } from './candidates.js';
import { FingerprintColumns, meanAbsCorrelation } from './redundancy.js';
import type { ActivationSet, BankArrays, ClassFingerprints, ScreenSettings } from './types.js';

export const defaultScreenSettings: ScreenSettings = {
  candidates: 100_000,
  k: 1,
  pMax: 1e-3,
  dMin: 1.5,
  // Each class's strongest 100 (2,000 until 2026-12-02). Measured on all three committed models against
  // 2,000, same held-out attacked images (docs/results.md, "The strongest 100"): AUC up on PGD, FGSM and
  // MI-FGSM (+0.001 to +0.008) and DeepFool (CNN, ResNet), CW-L2 within -0.006; adaptive evasion alike.
  topK: 100,
  minFingerprints: 25,
  maxCorrelation: 1,
};

/** Whether a candidate may join the fingerprints chosen so far. */
type Accept = (candidate: number, chosen: readonly number[]) => boolean;

export async function fitClass(
  clean: ActivationSet,
  families: ActivationSet[],
  neurons: number,
  settings: ScreenSettings,
  rng: SeededRandom,
): Promise<ClassFingerprints> {
  const { k } = settings;
  const candidates = drawCandidates(settings.candidates, k, neurons, rng);
  const results: ScreenResult[] = [];
  for (const family of families) {
    results.push(
      await screen({
        clean: clean.acts,
        cleanRows: clean.rows,
        attacked: family.acts,
        attackedRows: family.rows,
        neurons,
        candidates,
        k,
      }),
    );
  }
  const verdict = judge(results, candidates.length / k, settings);
  const accept = correlationCap(new FingerprintColumns(clean, neurons, candidates, k), settings.maxCorrelation);
  const { chosen, relaxed } = choose(results, verdict, settings, families.length > 0, accept);
  const out = collect(results, candidates, chosen, k, verdict.effect);
  const redundancy = meanAbsCorrelation(new FingerprintColumns(clean, neurons, out.indices, k), chosen.length);
  return {
    ...out,
    passed: verdict.passing.length,
    ...(relaxed ? { relaxed } : {}),
    ...(redundancy !== null ? { redundancy } : {}),
  };
}

interface Verdict {
  /** Candidates screened. */
  count: number;
  /** Largest |d| over families, per candidate. */
  effect: Float64Array;
  /** Candidates with p < pMax and |d| >= dMin for some family, and with p < pMax for some family. */
  passing: number[];
  significant: number[];
}

function judge(results: ScreenResult[], count: number, settings: ScreenSettings): Verdict {
  const effect = new Float64Array(count);
  const passing: number[] = [];
  const significant: number[] = [];
  for (let c = 0; c < count; c++) {
    let best = 0;
    let passes = false;
    let isSignificant = false;
    for (const r of results) {
      const d = Math.abs(r.d[c]!);
      const p = r.p[c]!;
      if (!Number.isFinite(d) || !Number.isFinite(p)) continue;
      if (p < settings.pMax) {
        isSignificant = true;
        if (d >= settings.dMin) passes = true;
      }
      best = Math.max(best, d);
    }
    effect[c] = best;
    if (passes) passing.push(c);
    if (isSignificant) significant.push(c);
  }
  return { count, effect, passing, significant };
}

/** The kept candidates, strongest first, and why the class was relaxed if it was. */
function choose(
  results: ScreenResult[],
  verdict: Verdict,
  settings: ScreenSettings,
  attacked: boolean,
  accept: Accept,
): { chosen: number[]; relaxed?: string } {
  const { effect, passing, significant, count } = verdict;
  const byEffect = (pool: number[]) => [...pool].sort((a, b) => effect[b]! - effect[a]!);
  const greedy = (pool: number[], limit: number) => {
    const chosen: number[] = [];
    for (const c of byEffect(pool)) {
      if (chosen.length >= limit) break;
      if (accept(c, chosen)) chosen.push(c);
    }
    return chosen;
  };
  if (passing.length >= settings.minFingerprints || !attacked) {
    return { chosen: byEffect(selectPerFamily(results, passing, settings, accept)) };
  }
  if (significant.length >= settings.minFingerprints) {
    const chosen = greedy(significant, Math.max(settings.minFingerprints, passing.length));
    return {
      chosen,
      relaxed:
        `${passing.length} of ${count} candidates reached |d| >= ${settings.dMin}; ` +
        `kept the ${chosen.length} largest |d| with p < ${settings.pMax}`,
    };
  }
  const positive = [...effect.keys()].filter((c) => effect[c]! > 0);
  const chosen = greedy(positive, settings.minFingerprints);
  return {
    chosen,
    relaxed:
      `${significant.length} of ${count} candidates reached p < ${settings.pMax}; ` +
      `kept the ${chosen.length} largest |d| regardless`,
  };
}

/**
 * The top K of the passing candidates, the budget shared out among the families: each family gets
 * its K / families strongest (by its own |d|), and what a family cannot fill goes to the others. A
 * plain ranking by the largest |d| would give the budget to whichever attack moves activations most
 * (PGD's d runs to 5 and more) and leave the subtle ones (CW, DeepFool) without fingerprints.
 */
function selectPerFamily(
  results: ScreenResult[],
  passing: number[],
  settings: ScreenSettings,
  accept: Accept,
): number[] {
  const passesFor = (r: ScreenResult, c: number) => r.p[c]! < settings.pMax && Math.abs(r.d[c]!) >= settings.dMin;
  const ranked = (results.length > 1 ? results : results.slice(0, 1)).map((r) =>
    passing
      .filter((c) => results.length === 1 || passesFor(r, c))
      .sort((a, b) => Math.abs(r.d[b]!) - Math.abs(r.d[a]!)),
  );
  const chosen: number[] = [];
  const taken = new Set<number>();
  const next = ranked.map(() => 0);
  // Round-robin over the families' rankings until the budget is spent or every ranking is exhausted.
  while (chosen.length < settings.topK && ranked.some((list, f) => next[f]! < list.length)) {
    for (const [f, list] of ranked.entries()) {
      while (next[f]! < list.length && chosen.length < settings.topK) {
        const c = list[next[f]!++]!;
        if (taken.has(c)) continue;
        taken.add(c);
        if (accept(c, chosen)) {
          chosen.push(c);
          break;
        }
      }
    }
  }
  return chosen;
}

/** Accepts a candidate unless it correlates above `max` with a chosen one (every candidate when max >= 1). */
function correlationCap(columns: FingerprintColumns, max: number): Accept {
  if (max >= 1) return () => true;
  return (candidate, chosen) => chosen.every((c) => columns.correlation(candidate, c) <= max);
}

/**
 * A floor for standard deviations, relative to the scale of the two groups: a neuron that is
 * constant on clean images (a dead ReLU) would otherwise give an infinite log-likelihood.
 */
function sdFloor(sd0: number, sd1: number): number {
  return Math.max(1e-6, 1e-2 * Math.max(sd0, sd1));
}

/** The chosen candidates' indices and statistics, in the bank's layout. */
function collect(
  results: ScreenResult[],
  candidates: Uint32Array,
  chosen: number[],
  k: number,
  effect: Float64Array,
): BankArrays {
  const F = chosen.length;
  const families = results.length;
  const out = emptyArrays(F, k, families);
  chosen.forEach((c, i) => {
    out.indices.set(candidates.subarray(c * k, (c + 1) * k), i * k);
    // Clean statistics are the same in every family's screen; take the first.
    const r0 = results[0]!;
    out.mu0[i] = r0.mu0[c]!;
    let widest = r0.sd0[c]!;
    for (const r of results) widest = Math.max(widest, r.sd1[c]!);
    out.sd0[i] = Math.max(r0.sd0[c]!, sdFloor(r0.sd0[c]!, widest));
    results.forEach((r, f) => {
      out.mu1[f * F + i] = r.mu1[c]!;
      out.sd1[f * F + i] = Math.max(r.sd1[c]!, sdFloor(r0.sd0[c]!, r.sd1[c]!));
    });
    out.effect[i] = effect[c]!;
  });
  return out;
}
