// The optional confidence statistic beside the fingerprints. Attacks that look for the smallest
// perturbation (CW-L2, DeepFool) stop just past the decision boundary: their logit margin (top-1
// minus top-2 logit) is tiny, while the fingerprints' log-likelihood ratios move little. Scoring
// max(z_fingerprint, z_confidence), each standardized on the predicted class's clean calibration
// images, alarms on either. Attacks that push the margin up (PGD, or CW with a confidence kappa)
// are what the fingerprints catch. The threshold is still calibrated on the combined clean scores,
// so the false-positive rate holds whatever the shape of either distribution.
import type { ConfidenceCalibration } from '../bank/index.js';

/** Below this margin the statistic saturates (-log of it): ties rather than Infinity. */
const MARGIN_FLOOR = 1e-12;
/** Standard deviations are floored so a constant statistic does not divide by zero. */
const SD_FLOOR = 1e-9;

/** Top-1 minus top-2 logit of each row of [rows x classes] logits (Infinity with one class). */
export function logitMargins(logits: Float32Array, rows: number): Float64Array {
  const classes = logits.length / rows;
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let first = -Infinity, second = -Infinity;
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

function meanSd(values: number[]): [number, number] {
  const n = values.length;
  if (n === 0) return [0, 1];
  const mean = values.reduce((a, v) => a + v, 0) / n;
  const variance = n > 1 ? values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1) : 0;
  return [mean, Math.max(Math.sqrt(variance), SD_FLOOR)];
}

/**
 * Per-class mean and sd of the clean fingerprint scores (every repeated draw) and of the confidence
 * statistic; classes with fewer than `minPerClass` images take the statistics of all classes.
 */
export function fitConfidence(labels: Int32Array, fingerprintReps: Float64Array[], confidence: Float64Array, classes: number, minPerClass: number): ConfidenceCalibration {
  const fpBy = Array.from({ length: classes }, () => [] as number[]);
  const qBy = Array.from({ length: classes }, () => [] as number[]);
  labels.forEach((c, i) => {
    if (Number.isFinite(confidence[i]!)) qBy[c]!.push(confidence[i]!);
    for (const rep of fingerprintReps) if (Number.isFinite(rep[i]!)) fpBy[c]!.push(rep[i]!);
  });
  const fpAll = meanSd(fpBy.flat()), qAll = meanSd(qBy.flat());
  const enough = (c: number) => qBy[c]!.length >= minPerClass;
  return {
    fingerprint: fpBy.map((v, c) => (enough(c) ? meanSd(v) : fpAll)),
    margin: qBy.map((v, c) => (enough(c) ? meanSd(v) : qAll)),
  };
}

/** The combined score of one input of class `label`. */
export function combineConfidence(cal: ConfidenceCalibration, label: number, fingerprint: number, confidence: number): number {
  const [mf, sf] = cal.fingerprint[label]!, [mq, sq] = cal.margin[label]!;
  return Math.max((fingerprint - mf) / sf, (confidence - mq) / sq);
}
