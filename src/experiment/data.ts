// Labelled images for an experiment: a file or folder the CLI names (IDX, .npy, image folder) with
// its labels, or images already in memory, cut to a limit, and split into row ranges by position.
import { basename } from 'node:path';

import { loadLabelFile, loadTensorFile, sliceImages, tensorDigest } from '../data/index.js';
import type { ImageBatch } from '../data/index.js';
import { ExperimentError } from './errors.js';

export interface LabelledData {
  images: ImageBatch;
  labels: Int32Array;
  /** A name for people (the file's), recorded in banks and reports. */
  source: string;
  /** SHA-256 of the whole file's float32 images, so that a bank recognises the data it was fitted on. */
  digest: string;
  /** Images in the whole file (the batch may hold only the first of them). */
  total: number;
}

/** Loads `path` with its labels (beside it, or `labels`), the first `limit` images only when given. */
export async function loadLabelled(
  path: string,
  options: { labels?: string; limit?: number } = {},
): Promise<LabelledData> {
  const tensor = await loadTensorFile(path);
  const labels = options.labels !== undefined ? loadLabelFile(options.labels) : tensor.labels;
  if (labels === undefined) throw new ExperimentError(`${path} carries no labels: pass --labels`, '--labels');
  if (labels.length !== tensor.dims[0])
    throw new ExperimentError(
      `--labels has ${labels.length} labels but --data has ${tensor.dims[0]} images`,
      '--labels',
    );
  const digest = tensorDigest(tensor.data);
  return limitRows({ images: tensor, labels, source: basename(path), digest, total: tensor.dims[0]! }, options.limit);
}

/** The first `limit` rows (the digest stays the whole data's, so banks still recognise it). */
export function limitRows(data: LabelledData, limit: number | undefined): LabelledData {
  const rows = data.images.dims[0]!;
  if (limit === undefined || limit >= rows) return data;
  return { ...data, images: rowsOf(data.images, 0, limit), labels: data.labels.subarray(0, limit) };
}

/** Rows [from, to) of a batch, without copying. */
export function rowsOf(images: ImageBatch, from: number, to: number): ImageBatch {
  return sliceImages(images, from, to);
}
