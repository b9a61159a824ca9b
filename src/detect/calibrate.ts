// Thresholds for a target false-positive rate, from held-out clean images scored over many random
// draws, so the threshold includes the randomness of the draw: per class where the class has
// enough clean images, globally otherwise.

/** The smallest threshold t with at most `fpr` of `scores` above it (the (1 - fpr) empirical quantile). */
export function thresholdFor(scores: ArrayLike<number>, fpr: number): number {
  const sorted = Float64Array.from(scores).sort();
  if (sorted.length === 0) return Infinity;
  const allowed = Math.floor(fpr * sorted.length); // scores strictly above t
  const index = sorted.length - 1 - allowed;
  return index < 0 ? -Infinity : sorted[index]!;
}
