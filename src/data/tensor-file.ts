// The CLI's --data argument: one path that may be a .npy file, an IDX file (gzipped or not) or an image
// folder, recognised by content (and, for folders, by being a directory) rather than by extension alone.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import { DataFormatError } from './errors.js';
import { gunzipIfCompressed } from './gzip.js';
import { idxImagesToBatch, parseIdx, readIdxLabels } from './idx.js';
import type { ImageBatch, Nchw } from './image-batch.js';
import { unitFromByte } from './image-batch.js';
import { loadImageFolder } from './images.js';
import { toLayout } from './layout.js';
import type { ImageFolderOptions } from './images.js';
import { toInt32Labels } from './labels.js';
import { isNpy, parseNpy } from './npy.js';
import type { NpyArray } from './npy.js';

export interface TensorFile extends ImageBatch {
  /** Present for image folders, and for IDX images whose MNIST-named label file sits beside them. */
  labels?: Int32Array;
  /** Class names, for image folders. */
  classes?: string[];
  /** What was read: 'npy', 'idx' or 'image-folder'. */
  format: 'npy' | 'idx' | 'image-folder';
}

/**
 * Loads a batch of images as float32 NCHW (NHWC with `layout: 'nhwc'`; a .npy already channels-last stays so) from:
 *  - a directory: an ImageNet-style image folder (options apply: resize, crop, channels);
 *  - a .npy file (optionally gzipped): float32/float64 values as they are, uint8 scaled to [0, 1];
 *    [n, c, h, w] or [n, h, w] (read as one channel);
 *  - an IDX file (optionally gzipped): uint8 [n, h, w] images scaled to [0, 1]; labels come from the
 *    file named as MNIST names it (*-images-idx3-ubyte -> *-labels-idx1-ubyte) when it exists.
 */
export async function loadTensorFile(path: string, options: ImageFolderOptions = {}): Promise<TensorFile> {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new DataFormatError(path, `cannot read (${(err as Error).message})`);
  }
  if (isDir) {
    const { data, dims, labels, classes } = await loadImageFolder(path, options);
    return { data, dims, labels, classes, format: 'image-folder' };
  }
  const bytes = gunzipIfCompressed(readFileSync(path), path);
  const layout = options.layout ?? 'nchw';
  if (isNpy(bytes)) {
    // A .npy already channels-last ([n, h, w, 1|3|4] with h not 1, 3 or 4) stays as it is for a channels-last model.
    const batch = npyToBatch(parseNpy(bytes, path), path);
    const [, a, , c] = batch.dims;
    const channelsLast = [1, 3, 4].includes(c) && ![1, 3, 4].includes(a);
    return { ...(layout === 'nhwc' && channelsLast ? batch : toLayout(batch, 'nchw', layout)), format: 'npy' };
  }
  if (bytes.length >= 2 && bytes[0] === 0 && bytes[1] === 0) {
    const batch = toLayout(idxImagesToBatch(parseIdx(bytes, path), path), 'nchw', layout);
    const labels = companionLabels(path, batch.dims[0]);
    return { ...batch, ...(labels && { labels }), format: 'idx' };
  }
  throw new DataFormatError(path, 'not a .npy file, an IDX file or a directory of images');
}

function npyToBatch(array: NpyArray, file: string): ImageBatch {
  const { dims } = array;
  if (dims.length !== 3 && dims.length !== 4) {
    throw new DataFormatError(file, `expected images [n, c, h, w] or [n, h, w] but found shape (${dims.join(', ')})`);
  }
  const nchw = (dims.length === 4 ? dims : [dims[0], 1, dims[1], dims[2]]) as Nchw;
  switch (array.dtype) {
    case 'float32':
      return { data: array.data, dims: nchw };
    case 'float64':
      return { data: Float32Array.from(array.data), dims: nchw };
    case 'uint8':
      return { data: Float32Array.from(array.data, (v) => unitFromByte[v]!), dims: nchw };
    default:
      throw new DataFormatError(file, `expected float32, float64 or uint8 images but found ${array.dtype}`);
  }
}

/** The MNIST-named label file beside an image file, read and checked against the image count. */
function companionLabels(imagesPath: string, count: number): Int32Array | undefined {
  const name = basename(imagesPath);
  if (!name.includes('images-idx3-ubyte')) return undefined;
  const labelsPath = join(dirname(imagesPath), name.replace('images-idx3-ubyte', 'labels-idx1-ubyte'));
  if (!existsSync(labelsPath)) return undefined;
  const labels = readIdxLabels(labelsPath);
  if (labels.length !== count) throw new DataFormatError(labelsPath, `has ${labels.length} labels for ${count} images`);
  return labels;
}

/** Labels for the CLI's `--labels`: a .npy of integers (gzipped or not) or an IDX label file. */
export function loadLabelFile(path: string): Int32Array {
  const bytes = gunzipIfCompressed(new Uint8Array(readFileSync(path)), path);
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
  return readIdxLabels(path);
}

/** SHA-256 of a float32 tensor's bytes: recognises the same data set later (e.g. to hold out a bank's fit images). */
export function tensorDigest(data: Float32Array): string {
  return createHash('sha256')
    .update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    .digest('hex');
}
