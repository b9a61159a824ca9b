// The CLI's --data argument: one path that may be a .npy file, an IDX file (gzipped or not) or an image
// folder, recognised by content (and, for folders, by being a directory) rather than by extension alone.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { DataFormatError } from './errors.js';
import { checkGunzipLimit, gunzipIfCompressed } from './gzip.js';
import { readIdxLabels } from './idx.js';
import type { NchwBatch } from './image-batch.js';
import { toInt32Labels } from './labels.js';
import { isNpy, parseNpy } from './npy.js';
import { openTensorFile } from './tensor-reader.js';
import type { TensorReadOptions } from './tensor-reader.js';

export interface TensorFile extends NchwBatch {
  /** Present for image folders, and for IDX images whose MNIST-named label file sits beside them. */
  labels?: Int32Array;
  /** Class names, for image folders. */
  classes?: string[];
  /** What was read: 'npy', 'idx' or 'image-folder'. */
  format: 'npy' | 'idx' | 'image-folder';
}

/** Rows read at a time when a whole file is loaded (the result is one array; this bounds the rest). */
const loadBatch = 4096;

/**
 * Loads a batch of images as float32 NCHW from:
 *  - a directory: an ImageNet-style image folder (options apply: resize, crop, channels, formats, limits);
 *  - a .npy file (optionally gzipped): float32/float64 values as they are, uint8 scaled to [0, 1];
 *    [n, c, h, w] or [n, h, w] (read as one channel);
 *  - an IDX file (optionally gzipped): uint8 [n, h, w] images scaled to [0, 1]; labels come from the
 *    file named as MNIST names it (*-images-idx3-ubyte -> *-labels-idx1-ubyte) when it exists.
 * The whole file becomes one array, in the memory of its float32 values and no more; to hold less, read
 * it in batches with openTensorFile.
 */
export async function loadTensorFile(path: string, options: TensorReadOptions = {}): Promise<TensorFile> {
  const reader = await openTensorFile(path, options);
  const [n, c, h, w] = reader.dims;
  let data: Float32Array;
  try {
    data = new Float32Array(n * c * h * w);
  } catch {
    throw new DataFormatError(
      path,
      `${reader.dims.join('x')} float32 images (${n * c * h * w * 4} bytes) do not fit in memory: read it in batches`,
    );
  }
  for await (const batch of reader.batches(loadBatch)) data.set(batch.data, batch.from * c * h * w);
  return {
    data,
    dims: reader.dims,
    ...(reader.labels && { labels: reader.labels }),
    ...(reader.classes && { classes: reader.classes }),
    format: reader.format,
  };
}

/** Labels for the CLI's `--labels`: a .npy of integers (gzipped or not) or an IDX label file. */
export function loadLabelFile(path: string, options: { maxGunzipBytes?: number } = {}): Int32Array {
  const bytes = gunzipIfCompressed(new Uint8Array(readFileSync(path)), path, checkGunzipLimit(options.maxGunzipBytes));
  if (isNpy(bytes)) {
    const array = parseNpy(bytes, path);
    if (array.dims.length !== 1 || array.dtype === 'float32' || array.dtype === 'float64') {
      throw new DataFormatError(
        path,
        `expected integer labels [n] but found ${array.dtype} [${array.dims.join(', ')}]`,
      );
    }
    return toInt32Labels(array.data, path);
  }
  return readIdxLabels(path, options);
}

/** SHA-256 of a float32 tensor's bytes: recognises the same data set later (e.g. to hold out a bank's fit images). */
export function tensorDigest(data: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .digest('hex');
}
