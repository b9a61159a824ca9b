// What detect() takes, made into one batch: tensors ({ data, dims } or ONNX Runtime tensors, [N, C,
// H, W] or [C, H, W]; [N, H, W, C] or [H, W, C] for a channels-last model), image paths and encoded
// image bytes (decoded and put in the model's layout), alone or in an array. Each row keeps a name
// for messages (input[2], or input[2] row 5 of a batch). An image that does not decode fails only its
// own row (a placeholder row of zeros, reported); a tensor of the wrong type or shape is a caller's
// bug and throws, naming the input.
import type * as ort from 'onnxruntime-node';

import { decodeImage, toLayout } from '../data/index.js';
import { toChannelsFirst } from '../model/index.js';
import type { ImageBatch, Layout } from '../model/index.js';

/** One image: an ONNX Runtime tensor or {data, dims} ([C,H,W] or [N,C,H,W], float32 in the model's input range), an
 * image file path, or encoded image bytes. */
export type DetectInput = ort.Tensor | ImageBatch | string | Uint8Array;

export interface CollectedInputs {
  batch: ImageBatch;
  /** How messages name row r (made only when a message needs it: most rows never do). */
  name: (row: number) => string;
  /** Per row: why it could not be read (its row holds zeros), else undefined. */
  failed: Array<string | undefined>;
}

/** `shape` is the model's per-image shape in its `layout`; decoded images are given that layout. */
export async function collectInputs(
  input: DetectInput | DetectInput[],
  shape: number[],
  layout: Layout = 'nchw',
): Promise<CollectedInputs> {
  const items = Array.isArray(input) ? input : [input];
  const per = shape.reduce((a, v) => a * v, 1);
  const parts: Float32Array[] = [];
  // Per row: its item, and its row within the item's batch (-1: the item is one image).
  const itemOf: number[] = [];
  const rowIn: number[] = [];
  const failed: Array<string | undefined> = [];
  const whereOf = (i: number) => (Array.isArray(input) ? `input[${i}]` : 'input');
  for (const [i, item] of items.entries()) {
    const where = whereOf(i);
    if (typeof item === 'string' || item instanceof Uint8Array) {
      itemOf.push(i);
      rowIn.push(-1);
      try {
        parts.push(await decodeForModel(item, shape, layout, where));
        failed.push(undefined);
      } catch (error) {
        parts.push(new Float32Array(per));
        failed.push(`not decoded: ${(error as Error).message}`);
      }
      continue;
    }
    const data = (item as ImageBatch).data;
    const dims = [...(item as ImageBatch).dims].map(Number);
    const full = dims.length === 3 ? [1, ...dims] : dims;
    if (
      !(data instanceof Float32Array) ||
      full.length !== 4 ||
      full.slice(1).some((d, j) => d !== shape[j]) ||
      data.length !== full.reduce((a, v) => a * v, 1)
    ) {
      const received = `${data?.constructor?.name ?? typeof data} [${dims.join(', ')}]`;
      throw new TypeError(
        `Expected a float32 tensor of shape [N, ${shape.join(', ')}] or [${shape.join(', ')}] for ${where} ` +
          `but received ${received}`,
      );
    }
    parts.push(data);
    for (let r = 0; r < full[0]!; r++) {
      itemOf.push(i);
      rowIn.push(full[0] === 1 ? -1 : r);
      failed.push(undefined);
    }
  }
  const rows = itemOf.length;
  const name = (row: number): string => {
    const i = itemOf[row]!;
    const item = items[i];
    if (typeof item === 'string') return `${whereOf(i)} (${item})`;
    return rowIn[row]! < 0 ? whereOf(i) : `${whereOf(i)} row ${rowIn[row]}`;
  };
  if (parts.length === 1) return { batch: { data: parts[0]!, dims: [rows, ...shape] }, name, failed };
  const data = new Float32Array(rows * per);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { batch: { data, dims: [rows, ...shape] }, name, failed };
}

/**
 * An encoded image resized and cropped to the model's input, as torchvision's Resize + CenterCrop + ToTensor,
 * then put in the model's layout.
 */
export async function decodeForModel(
  item: string | Uint8Array,
  shape: number[],
  layout: Layout,
  where: string,
): Promise<Float32Array> {
  const [c, h, w] = toChannelsFirst(shape, layout) as [number, number, number];
  if (c !== 1 && c !== 3)
    throw new TypeError(`Expected a model with 1 or 3 input channels to decode images for ${where} but it takes ${c}`);
  const image = await decodeImage(item, { channels: c, resize: Math.min(h, w), crop: h === w ? h : null });
  if (image.dims[2] !== h || image.dims[3] !== w)
    throw new RangeError(`the image resizes to ${image.dims[2]}x${image.dims[3]}, not the model's ${h}x${w}`);
  return toLayout(image, 'nchw', layout).data;
}
