// Image batches in either layout: channels-first [N, C, H, W], which every loader produces (as
// torchvision's ToTensor does), or channels-last [N, H, W, C], which many published models take.
import type { ImageBatch, Nchw } from './image-batch.js';

/** Where the channels sit in an image tensor: [N, C, H, W] or [N, H, W, C]. */
export type Layout = 'nchw' | 'nhwc';

export const layouts: readonly Layout[] = ['nchw', 'nhwc'];

/** The batch transposed from layout `from` to layout `to` (the same object when they agree). */
export function toLayout(batch: ImageBatch, from: Layout, to: Layout): ImageBatch {
  if (from === to) return batch;
  const { data, dims } = batch;
  const [n, a, b, c] = dims;
  const out = new Float32Array(data.length);
  if (from === 'nchw') {
    // [n, C=a, H=b, W=c] -> [n, H, W, C]
    const plane = b * c;
    for (let i = 0; i < n; i++) {
      const base = i * a * plane;
      for (let ch = 0; ch < a; ch++) {
        const src = base + ch * plane;
        for (let p = 0; p < plane; p++) out[base + p * a + ch] = data[src + p]!;
      }
    }
    return { data: out, dims: [n, b, c, a] as Nchw };
  }
  // [n, H=a, W=b, C=c] -> [n, C, H, W]
  const plane = a * b;
  for (let i = 0; i < n; i++) {
    const base = i * plane * c;
    for (let p = 0; p < plane; p++) {
      const src = base + p * c;
      for (let ch = 0; ch < c; ch++) out[base + ch * plane + p] = data[src + ch]!;
    }
  }
  return { data: out, dims: [n, c, a, b] as Nchw };
}

/**
 * Images as a model with per-image `shape` in `layout` takes them: as they are when their shape is
 * the model's, transposed when they are the channels-first form of a channels-last model's images
 * (what the loaders give); anything else is refused, naming both shapes.
 */
export function imagesForModel(
  batch: ImageBatch,
  shape: readonly number[],
  layout: Layout,
  what = 'images',
): ImageBatch {
  const per = batch.dims.slice(1);
  const same = (s: readonly number[]) => s.length === shape.length && s.every((d, i) => d === shape[i]);
  if (same(per)) return batch;
  if (layout === 'nhwc' && per.length === 3 && same([per[1]!, per[2]!, per[0]!]))
    return toLayout(batch, 'nchw', 'nhwc');
  throw new RangeError(
    `Expected ${what} of shape [N, ${shape.join(', ')}] (the model's ${layout.toUpperCase()} layout)` +
      `${layout === 'nhwc' ? ` or [N, ${shape[2]}, ${shape[0]}, ${shape[1]}]` : ''} but received ` +
      `[${batch.dims.join(', ')}]`,
  );
}
