// Picking rows out of row-major matrices: images of a batch [N x perImage], activations
// [N x neurons], logits [N x classes]. One helper for every "keep these rows" in the library.
/** Rows `rows` of `src` (each `width` values long), in that order, as a new compact array. */
export function gatherRows(src: Float32Array, rows: ArrayLike<number>, width: number): Float32Array {
  const out = new Float32Array(rows.length * width);
  for (let i = 0; i < rows.length; i++) out.set(src.subarray(rows[i]! * width, (rows[i]! + 1) * width), i * width);
  return out;
}

/** Images `rows` of a batch [N, ...], as a new batch. */
export function gatherImages(
  images: { data: Float32Array; dims: readonly number[] },
  rows: ArrayLike<number>,
): { data: Float32Array; dims: number[] } {
  const width = images.dims[0] === 0 ? 0 : images.data.length / images.dims[0]!;
  return { data: gatherRows(images.data, rows, width), dims: [rows.length, ...images.dims.slice(1)] };
}

/** Images [from, to) of a batch, without copying. */
export function sliceImages(
  images: { data: Float32Array; dims: readonly number[] },
  from: number,
  to: number,
): { data: Float32Array; dims: number[] } {
  const per = images.dims[0] === 0 ? 0 : images.data.length / images.dims[0]!;
  return { data: images.data.subarray(from * per, to * per), dims: [to - from, ...images.dims.slice(1)] };
}
