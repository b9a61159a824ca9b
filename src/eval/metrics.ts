// Detection metrics from scores (higher = more likely attacked): ROC AUC (the Mann-Whitney
// statistic, ties counted half), TPR at a false-positive rate, and rates at a threshold.

/** P(score of a positive > score of a negative) + 0.5 P(equal). NaN scores are rejected. */
export function auc(negatives: ArrayLike<number>, positives: ArrayLike<number>): number {
  const neg = Float64Array.from(negatives);
  const pos = Float64Array.from(positives);
  if (neg.length === 0 || pos.length === 0)
    throw new RangeError('Expected negatives and positives for auc but one is empty');
  if ([...neg, ...pos].some(Number.isNaN)) throw new RangeError('Expected no NaN scores for auc');
  const all = [...Array.from(neg, (v) => [v, 0] as const), ...Array.from(pos, (v) => [v, 1] as const)].sort(
    (a, b) => a[0] - b[0],
  );
  // Rank sum of the positives with average ranks over ties.
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]![0] === all[i]![0]) j++;
    const rank = (i + 1 + j) / 2;
    for (let t = i; t < j; t++) if (all[t]![1] === 1) rankSum += rank;
    i = j;
  }
  return (rankSum - (pos.length * (pos.length + 1)) / 2) / (pos.length * neg.length);
}

/** Share of values strictly above the threshold. */
export function rateAbove(values: ArrayLike<number>, threshold: number): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (values[i]! > threshold) n++;
  return values.length === 0 ? 0 : n / values.length;
}

/** TPR at the threshold that lets at most `fpr` of the negatives through (the empirical (1 - fpr) quantile). */
export function tprAtFpr(negatives: ArrayLike<number>, positives: ArrayLike<number>, fpr: number): number {
  const sorted = Float64Array.from(negatives).sort();
  const index = sorted.length - 1 - Math.floor(fpr * sorted.length);
  const threshold = index < 0 ? -Infinity : sorted[index]!;
  return rateAbove(positives, threshold);
}

/** ROC curve points (fpr, tpr) at every distinct threshold, thinned to at most `points`. */
export function rocCurve(
  negatives: ArrayLike<number>,
  positives: ArrayLike<number>,
  points = 200,
): { fpr: number[]; tpr: number[] } {
  const thresholds = Float64Array.from([...Array.from(negatives), ...Array.from(positives)])
    .sort()
    .reverse();
  const neg = Float64Array.from(negatives).sort();
  const pos = Float64Array.from(positives).sort();
  const above = (sorted: Float64Array, t: number) => {
    let lo = 0,
      hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]! > t) hi = mid;
      else lo = mid + 1;
    }
    return (sorted.length - lo) / Math.max(1, sorted.length);
  };
  const fpr = [0];
  const tpr = [0];
  const step = Math.max(1, Math.floor(thresholds.length / points));
  for (let i = 0; i < thresholds.length; i += step) {
    fpr.push(above(neg, thresholds[i]! - 1e-12 * Math.abs(thresholds[i]!)));
    tpr.push(above(pos, thresholds[i]! - 1e-12 * Math.abs(thresholds[i]!)));
  }
  fpr.push(1);
  tpr.push(1);
  return { fpr, tpr };
}

export interface Summary {
  mean: number;
  std: number;
  min: number;
  max: number;
}

export function summarize(values: number[]): Summary {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / Math.max(1, n);
  const std = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(1, n - 1));
  return { mean, std, min: Math.min(...values), max: Math.max(...values) };
}
