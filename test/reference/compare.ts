// Comparing two arrays of the same length: the largest absolute difference between them and the
// largest magnitude of the reference, the scale a relative tolerance is taken against.
export function largestDifference(
  actual: ArrayLike<number>,
  reference: ArrayLike<number>,
): { difference: number; scale: number } {
  let difference = 0;
  let scale = 0;
  for (let i = 0; i < reference.length; i++) {
    difference = Math.max(difference, Math.abs(actual[i]! - reference[i]!));
    scale = Math.max(scale, Math.abs(reference[i]!));
  }
  return { difference, scale };
}
