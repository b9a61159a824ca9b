// Fitting one class's fingerprints: screen C random neuron subsets with the native `screen` kernel
// against each attack family, keep the subsets that separate clean from at least one family
// (p < pMax and |d| >= dMin), and the top K of those by their largest |d|. Each family's attacked
// statistics are kept apart: pooling families into one Gaussian scores worse than either alone.
import { screen } from '../kernels.js';
import type { ScreenResult } from '../native.js';
import type { AttackRandom } from '../attacks/index.js';
import type { BankArrays } from './bank.js';
import { drawCandidates } from './candidates.js';

export interface ScreenSettings {
  /** Random subsets screened per class (default 100,000). */
  candidates: number;
  /** Neurons per subset (default 1: on the committed CNN with wide taps k = 1 beat 3 on every attack and 10 on all but
   * CW-L2; docs/results.md). */
  k: number;
  /** Significance required of the t-test (default 1e-3). */
  pMax: number;
  /** Effect size required, |Cohen's d| (default 1.5). */
  dMin: number;
  /** Fingerprints kept per class (default 2,000). */
  topK: number;
  /** Below this many passing fingerprints a class is relaxed: the best by |d| among p < pMax, then the best by |d|
   * (default 25). */
  minFingerprints: number;
}

export const defaultScreenSettings: ScreenSettings = {
  candidates: 100_000,
  k: 1,
  pMax: 1e-3,
  dMin: 1.5,
  topK: 2000,
  minFingerprints: 25,
};

export interface ActivationSet {
  /** Row-major [rows x neurons]. */
  acts: Float32Array;
  rows: number;
}

export interface ClassFingerprints extends BankArrays {
  /** Candidates that passed p < pMax and |d| >= dMin for at least one family. */
  passed: number;
  /** Why the class kept fingerprints that did not pass, when it had to. */
  relaxed?: string;
}

/**
 * The top K of the passing candidates, the budget shared out among the families: each family gets
 * its K / families strongest (by its own |d|), and what a family cannot fill goes to the others. A
 * plain ranking by the largest |d| would give the budget to whichever attack moves activations most
 * (PGD's d runs to 5 and more) and leave the subtle ones (CW, DeepFool) without fingerprints.
 */
function selectPerFamily(results: ScreenResult[], passing: number[], settings: ScreenSettings): number[] {
  if (results.length <= 1 || passing.length <= settings.topK) return passing;
  const passesFor = (r: ScreenResult, c: number) => r.p[c]! < settings.pMax && Math.abs(r.d[c]!) >= settings.dMin;
  const ranked = results.map((r) =>
    passing.filter((c) => passesFor(r, c)).sort((a, b) => Math.abs(r.d[b]!) - Math.abs(r.d[a]!)),
  );
  const chosen = new Set<number>();
  const next = ranked.map(() => 0);
  // Round-robin over the families' rankings until the budget is spent or every ranking is exhausted.
  while (chosen.size < settings.topK && ranked.some((list, f) => next[f]! < list.length)) {
    for (const [f, list] of ranked.entries()) {
      while (next[f]! < list.length && chosen.has(list[next[f]!]!)) next[f]!++;
      if (next[f]! < list.length && chosen.size < settings.topK) chosen.add(list[next[f]!++]!);
    }
  }
  return [...chosen];
}

/**
 * A floor for standard deviations, relative to the scale of the two groups: a neuron that is
 * constant on clean images (a dead ReLU) would otherwise give an infinite log-likelihood.
 */
function sdFloor(sd0: number, sd1: number): number {
  return Math.max(1e-6, 1e-2 * Math.max(sd0, sd1));
}

export async function fitClass(
  clean: ActivationSet,
  families: ActivationSet[],
  neurons: number,
  settings: ScreenSettings,
  rng: AttackRandom,
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
  const C = settings.candidates;
  const effect = new Float64Array(C);
  const passes = new Uint8Array(C);
  const significant = new Uint8Array(C);
  for (let c = 0; c < C; c++) {
    let best = 0;
    for (const r of results) {
      const d = Math.abs(r.d[c]!);
      const p = r.p[c]!;
      if (!Number.isFinite(d) || !Number.isFinite(p)) continue;
      if (p < settings.pMax) {
        significant[c] = 1;
        if (d >= settings.dMin) passes[c] = 1;
      }
      best = Math.max(best, d);
    }
    effect[c] = best;
  }
  const byEffect = (pool: number[]) => pool.sort((a, b) => effect[b]! - effect[a]!).slice(0, settings.topK);
  const passing = [...passes.keys()].filter((c) => passes[c]);
  let chosen = byEffect(selectPerFamily(results, passing, settings));
  let relaxed: string | undefined;
  if (passing.length < settings.minFingerprints && families.length > 0) {
    const sig = [...significant.keys()].filter((c) => significant[c]);
    if (sig.length >= settings.minFingerprints) {
      chosen = byEffect(sig).slice(0, Math.max(settings.minFingerprints, passing.length));
      relaxed =
        `${passing.length} of ${C} candidates reached |d| ` +
        `>= ${settings.dMin}; kept the ${chosen.length} largest |d| with p < ${settings.pMax}`;
    } else {
      chosen = byEffect([...effect.keys()].filter((c) => effect[c]! > 0)).slice(0, settings.minFingerprints);
      relaxed =
        `${sig.length} of ${C} candidates reached p < ${settings.pMax}; kept the ${chosen.length} largest ` +
        `|d| regardless`;
    }
  }
  const F = chosen.length;
  const out: ClassFingerprints = {
    indices: new Uint32Array(F * k),
    mu0: new Float32Array(F),
    sd0: new Float32Array(F),
    mu1: new Float32Array(families.length * F),
    sd1: new Float32Array(families.length * F),
    effect: new Float32Array(F),
    passed: passing.length,
    ...(relaxed ? { relaxed } : {}),
  };
  chosen.forEach((c, i) => {
    out.indices.set(candidates.subarray(c * k, (c + 1) * k), i * k);
    // Clean statistics are the same in every family's screen; take the first.
    const r0 = results[0]!;
    out.mu0[i] = r0.mu0[c]!;
    let widest = r0.sd0[c]!;
    results.forEach((r) => {
      widest = Math.max(widest, r.sd1[c]!);
    });
    out.sd0[i] = Math.max(r0.sd0[c]!, sdFloor(r0.sd0[c]!, widest));
    results.forEach((r, f) => {
      out.mu1[f * F + i] = r.mu1[c]!;
      out.sd1[f * F + i] = Math.max(r.sd1[c]!, sdFloor(r0.sd0[c]!, r.sd1[c]!));
    });
    out.effect[i] = effect[c]!;
  });
  return out;
}
