// The optional confidence statistic beside the fingerprints. Attacks that look for the smallest
// perturbation (CW-L2, DeepFool) stop just past the decision boundary: their logit margin (top-1
// minus top-2 logit) is tiny, while the fingerprints' log-likelihood ratios move little. Scoring
// max(z_fingerprint, z_confidence), each standardized on the predicted class's clean calibration
// images, alarms on either. The standardization looks at the upper tail, where thresholds live:
// z = (x - median) / ((q95 - median) / 1.645). Mean and sd would not do: the clean log-likelihood
// ratio sums have a long negative tail (a clean image far from the attacked mean gets a very negative
// term) that inflates the sd and would hide the fingerprints behind the margin. Attacks that push the margin up (PGD,
// or CW with a confidence kappa)
// are what the fingerprints catch. The threshold is still calibrated on the combined clean scores,
// so the false-positive rate holds whatever the shape of either distribution.
import type { ConfidenceCalibration } from '../bank/index.js';

/** Below this margin the statistic saturates (-log of it): ties rather than Infinity. */
const MARGIN_FLOOR = 1e-12;
/** Scales are floored so a constant statistic does not divide by zero. */
const SCALE_FLOOR = 1e-9;
/** The standard normal's 95% quantile: a Gaussian's (q95 - median) / this is its sd. */
const Z95 = 1.6448536269514722;

/** Top-1 minus top-2 logit of each row of [rows x classes] logits (Infinity with one class). */
export function logitMargins(logits: Float32Array, rows: number): Float64Array {
  const classes = logits.length / rows;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let first = -Infinity,
      second = -Infinity;
    for (let c = 0; c < classes; c++) {
      const v = logits[r * classes + c]!;
      if (v > first) {
        second = first;
        first = v;
      } else if (v > second) second = v;
    }
    out[r] = first - second;
  }
  return out;
}

/** The confidence statistic: large when the margin is small. */
export function confidenceStatistic(logits: Float32Array, rows: number): Float64Array {
  return logitMargins(logits, rows).map((m) => -Math.log(Math.max(m, MARGIN_FLOOR)));
}

function quantile(sorted: Float64Array, p: number): number {
  const at = p * (sorted.length - 1);
  const lo = Math.floor(at),
    hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (at - lo) * (sorted[hi]! - sorted[lo]!);
}

/** [median, upper-tail scale] of the values. */
function centerScale(values: number[]): [number, number] {
  if (values.length === 0) return [0, 1];
  const sorted = Float64Array.from(values).sort();
  const median = quantile(sorted, 0.5);
  return [median, Math.max((quantile(sorted, 0.95) - median) / Z95, SCALE_FLOOR)];
}

/**
 * Per class: the center and scale of each attack family's clean log-likelihood ratio sum (over
 * every repeated draw; `familyReps` are [rows x families] each) and of the confidence statistic.
 * Classes with fewer than `minPerClass` images take those of all classes.
 */
export function fitConfidence(
  labels: Int32Array,
  familyReps: Float64Array[],
  families: number,
  confidence: Float64Array,
  classes: number,
  minPerClass: number,
): ConfidenceCalibration {
  const fpBy = Array.from({ length: classes }, () => Array.from({ length: families }, () => [] as number[]));
  const qBy = Array.from({ length: classes }, () => [] as number[]);
  labels.forEach((c, i) => {
    if (Number.isFinite(confidence[i]!)) qBy[c]!.push(confidence[i]!);
    for (const rep of familyReps) {
      for (let a = 0; a < families; a++) {
        const v = rep[i * families + a]!;
        if (Number.isFinite(v)) fpBy[c]![a]!.push(v);
      }
    }
  });
  const fpAll = Array.from({ length: families }, (_, a) => centerScale(fpBy.flatMap((byFamily) => byFamily[a]!)));
  const qAll = centerScale(qBy.flat());
  const enough = (c: number) => qBy[c]!.length >= minPerClass;
  return {
    fingerprint: fpBy.map((byFamily, c) => (enough(c) ? byFamily.map(centerScale) : fpAll)),
    margin: qBy.map((v, c) => (enough(c) ? centerScale(v) : qAll)),
  };
}

/**
 * One input's statistics standardized on its class `label`'s clean images: one z per attack family
 * (`familySums`, one sum per family), then the confidence statistic's z.
 */
export function standardizedStatistics(
  cal: ConfidenceCalibration,
  label: number,
  familySums: ArrayLike<number>,
  confidence: number,
): number[] {
  const z = cal.fingerprint[label]!.map(([m, s], a) => (familySums[a]! - m) / s);
  const [mq, sq] = cal.margin[label]!;
  z.push((confidence - mq) / sq);
  return z;
}

/**
 * The combined score of one input of class `label`: the largest of its standardized statistics
 * (standardizedStatistics). Standardizing each family apart keeps one with large ratios (PGD) from
 * setting the threshold for the others (CW).
 */
export function combineConfidence(
  cal: ConfidenceCalibration,
  label: number,
  familySums: ArrayLike<number>,
  confidence: number,
): number {
  return Math.max(...standardizedStatistics(cal, label, familySums, confidence));
}
