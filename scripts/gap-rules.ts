// Shared by the offline gap experiments (scripts/gap-*.ts): per-class standardization of a score on the
// calibration rows, the drawn log-likelihood ratio sum, the held-out sets, and the table that judges scoring
// rules on held-out clean and attacked images.
import { gatherImages } from '../src/data/index.js';
import type { FingerprintDetector } from '../src/detect/index.js';
import { SeededDraws, standardizedStatistics, thresholdFor } from '../src/detect/index.js';
import { auc, rateAbove, tprAtFpr } from '../src/eval/index.js';
import type { Classifier, ImageBatch } from '../src/model/index.js';
import { SeededRandom } from '../src/random.js';

const Z95 = 1.6448536269514722;

/**
 * Per class, the median and upper-tail spread ((95th percentile - median) / z_0.95) of `value` over the
 * calibration rows of that class: how the confidence term standardizes its statistics. Returns z(row, value).
 */
export function upperTailStandardizer<R extends { label: number }>(
  calibration: readonly R[],
  classes: number,
  value: (row: R) => number,
): (row: R, x: number) => number {
  const scale = Array.from({ length: classes }, (_, c) => {
    const s = Float64Array.from(calibration.filter((x) => x.label === c).map(value)).sort();
    const q = (p: number) => s[Math.min(s.length - 1, Math.round(p * (s.length - 1)))]!;
    return [q(0.5), Math.max((q(0.95) - q(0.5)) / Z95, 1e-9)] as const;
  });
  return (row, x) => (x - scale[row.label]![0]) / scale[row.label]![1];
}

/**
 * Prints a markdown row per rule: per-class thresholds for 5% FPR on the calibration rows, the measured FPR of
 * the held-out clean rows at them, and per attack the AUC (TPR at 5% FPR) of clean against attacked.
 */
export function printRuleTable<R extends { label: number }>(
  rules: ReadonlyArray<readonly [string, (row: R) => number]>,
  classes: number,
  sets: { calibration: readonly R[]; clean: readonly R[]; attacked: ReadonlyMap<string, readonly R[]> },
  attacks: readonly string[],
): void {
  console.log(`| rule | FPR | ${attacks.join(' | ')} |`);
  console.log(`|---|---|${attacks.map(() => '---|').join('')}`);
  for (const [rule, f] of rules) {
    const thresholds = Array.from({ length: classes }, (_, c) =>
      thresholdFor(sets.calibration.filter((x) => x.label === c).map(f), 0.05),
    );
    const above = (set: readonly R[]) => set.map((x) => f(x) - thresholds[x.label]!);
    const negatives = above(sets.clean);
    const cells = attacks.map((a) => {
      const positives = above(sets.attacked.get(a)!);
      return `${auc(negatives, positives).toFixed(4)} (${tprAtFpr(negatives, positives, 0.05).toFixed(3)})`;
    });
    console.log(`| ${rule} | ${rateAbove(negatives, 0).toFixed(3)} | ${cells.join(' | ')} |`);
  }
}

/** One feature set's clean (0) and attacked (1) Gaussians, per feature. */
export interface GaussianPair {
  mu0: Float64Array;
  sd0: Float64Array;
  mu1: Float64Array;
  sd1: Float64Array;
}

const logNormal = (x: number, mu: number, sd: number) => -Math.log(sd) - (0.5 * (x - mu) ** 2) / (sd * sd);

/**
 * The library's score on one draw, offline: `draws` distinct features of `stats` picked with `pick`, and the
 * Gaussian log-likelihood ratio (attacked vs clean) of each feature's value summed.
 */
export function drawnLlrSum(
  pick: SeededRandom,
  draws: number,
  stats: GaussianPair,
  featureValue: (feature: number) => number,
): number {
  const k = stats.mu0.length;
  const chosen = new Set<number>();
  while (chosen.size < Math.min(draws, k)) chosen.add(pick.int(k));
  let sum = 0;
  for (const f of chosen) {
    const x = featureValue(f);
    sum += logNormal(x, stats.mu1[f]!, stats.sd1[f]!) - logNormal(x, stats.mu0[f]!, stats.sd0[f]!);
  }
  return sum;
}

/**
 * The held-out sets every gap experiment judges on: `score` over the images of `held` that `classifier` gets
 * right (3 draws each), then over each attack's cached images (3 draws each), in that order (the scores' seeds
 * follow it).
 */
export async function heldOutSets<R>(
  score: (images: ImageBatch, reps: number) => Promise<R[]>,
  classifier: Classifier,
  held: { images: ImageBatch; truth: ArrayLike<number> },
  attacks: readonly string[],
  attackedImages: (attack: string) => ImageBatch,
): Promise<{ clean: R[]; attacked: Map<string, R[]> }> {
  const { labels } = await classifier.run(held.images, { activations: false });
  const correct = [...labels.keys()].filter((i) => labels[i] === held.truth[i]);
  const clean = await score(gatherImages(held.images, correct), 3);
  const attacked = new Map<string, R[]>();
  for (const a of attacks) attacked.set(a, await score(attackedImages(a), 3));
  return { clean, attacked };
}

/** An image scored on one draw: its predicted class, the library's z's and an experiment's own sums. */
export interface ScoredRow<S> {
  label: number;
  z: number[];
  sums: S;
}

/**
 * A scorer for an experiment beside the library: per image and draw, the calibrated detector's standardized
 * statistics (family z's, then the margin's) on seeded draws, and `sums(activations, row, label, pick)`, the
 * experiment's own scores drawn with a second seeded stream. Seeds count up from `firstSeed`, two per draw.
 */
export function libraryScorer<S>(
  detector: FingerprintDetector,
  firstSeed: number,
  sums: (activations: Float32Array, row: number, label: number, pick: SeededRandom) => S,
): (images: ImageBatch, reps: number) => Promise<ScoredRow<S>[]> {
  const cal = detector.bank.header.calibration!.confidence!;
  const families = detector.bank.families;
  let seed = firstSeed;
  return async (images, reps) => {
    const out = await detector.classifier.run(images);
    const scored: ScoredRow<S>[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const s = await detector.scoreActivations(out.activations, out.labels, {
        logits: out.logits,
        draws: new SeededDraws(seed++),
      });
      const pick = new SeededRandom(seed++);
      out.labels.forEach((c, i) => {
        const z = standardizedStatistics(
          cal,
          c,
          s.familySums!.subarray(i * families, (i + 1) * families),
          s.confidence![i]!,
        );
        scored.push({ label: c, z, sums: sums(out.activations, i, c, pick) });
      });
    }
    return scored;
  };
}
