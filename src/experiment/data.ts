// Labelled images for an experiment: a file or folder the CLI names (IDX, .npy, image folder) with
// its labels, opened by its header and read in batches (so that memory depends on the batch, not on
// the file), or loaded whole when an experiment needs every image at once; cut to a limit, and split
// into row ranges by position.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';

import { loadLabelFile, openTensorFile, sliceImages } from '../data/index.js';
import type { ImageBatch, ImageFormat, TensorReader } from '../data/index.js';
import { Classifier } from '../model/index.js';
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

/** What the CLI's --image-formats and --first-frame ask of images in a folder. */
export interface ImageReadOptions {
  formats?: readonly ImageFormat[];
  firstFrame?: boolean;
}

export interface OpenDataOptions {
  /** A label file for the data (else the folder's, or the MNIST-named file beside an IDX file). */
  labels?: string;
  /** Only the first `limit` images. */
  limit?: number;
  /** Fail unless labels are known (attacks and fits need them). */
  requireLabels?: boolean;
  /** The model's input [C, H, W]: folders are decoded to it, tensor files must have it. */
  inputShape?: readonly number[];
  image?: ImageReadOptions;
  /** What messages call the data (default '--data', the option that names it). */
  name?: string;
}

/** An experiment's data, opened: its reader, its labels if known, and how many rows are used. */
export interface OpenData {
  reader: TensorReader;
  labels?: Int32Array;
  /** Rows used: all, or the first `limit`. */
  rows: number;
  source: string;
}

/** Rows read at a time where an experiment reads a file whole. */
const readBatch = 4096;

/**
 * Opens `path` by its header (nothing else is read yet) with its labels, and checks before any work
 * that they agree: the label count, and the images' shape against the model's input.
 */
export async function openData(path: string, options: OpenDataOptions = {}): Promise<OpenData> {
  const shape = options.inputShape;
  const reader = await openTensorFile(path, {
    ...(shape !== undefined ? imageOptionsFor(shape) : {}),
    ...options.image,
  });
  const total = reader.dims[0];
  const name = options.name ?? '--data';
  if (shape !== undefined && reader.dims.slice(1).some((d, i) => d !== shape[i]))
    throw new ExperimentError(
      `${name} holds images [${reader.dims.slice(1).join(', ')}] but the model takes [${shape.join(', ')}]`,
      name,
    );
  const labels = options.labels !== undefined ? loadLabelFile(options.labels) : reader.labels;
  if (labels === undefined && options.requireLabels === true)
    throw new ExperimentError(`${path} carries no labels: pass --labels`, '--labels');
  if (labels !== undefined && labels.length !== total)
    throw new ExperimentError(`--labels has ${labels.length} labels but --data has ${total} images`, '--labels');
  const rows = options.limit === undefined ? total : Math.min(options.limit, total);
  return { reader, ...(labels && { labels: labels.subarray(0, rows) }), rows, source: basename(path) };
}

/**
 * Image options that decode a folder to a model's input [C, H, W], as detect() decodes image files:
 * C channels (1 or 3), the shorter side resized to min(H, W), centre-cropped when H = W.
 */
export function imageOptionsFor(inputShape: readonly number[]): {
  channels?: 1 | 3;
  resize: number;
  crop: number | null;
} {
  const [c, h, w] = inputShape as [number, number, number];
  return {
    ...(c === 1 || c === 3 ? { channels: c } : {}),
    resize: Math.min(h, w),
    crop: h === w ? h : null,
  };
}

/**
 * Loads `path` with its labels (beside it, or `labels`), the first `limit` images only when given:
 * the experiments that need every image at once (fit, evaluate). The rest of the file is read through
 * the digest in batches, never held.
 */
export async function loadLabelled(
  path: string,
  options: { labels?: string; limit?: number; image?: ImageReadOptions; inputShape?: readonly number[] } = {},
): Promise<LabelledData> {
  const data = await openData(path, { ...options, requireLabels: true });
  const [total, c, h, w] = data.reader.dims;
  const per = c * h * w;
  const images = new Float32Array(data.rows * per);
  const hash = createHash('sha256');
  for await (const batch of data.reader.batches(readBatch)) {
    hash.update(new Uint8Array(batch.data.buffer, batch.data.byteOffset, batch.data.byteLength));
    const keep = Math.min(batch.dims[0], data.rows - batch.from);
    if (keep > 0) images.set(batch.data.subarray(0, keep * per), batch.from * per);
  }
  return {
    images: { data: images, dims: [data.rows, c, h, w] },
    labels: data.labels!,
    source: data.source,
    digest: hash.digest('hex'),
    total,
  };
}

/**
 * As loadLabelled, for `model`: a folder of images is decoded to the model's input [C, H, W] (so the
 * model's header is read first); a tensor file keeps its own shape, which the model then takes.
 */
export async function loadLabelledFor(
  model: string,
  path: string,
  options: { labels?: string; limit?: number; image?: ImageReadOptions } = {},
): Promise<LabelledData> {
  if (!(await isFolder(path))) return loadLabelled(path, options);
  const classifier = await Classifier.load(model, { taps: [] });
  const inputShape = [...classifier.inputShape];
  await classifier.release();
  return loadLabelled(path, { ...options, inputShape });
}

export function isFolder(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** Every used row of opened data as one batch (for the steps that take a whole batch). */
export async function readRows(data: OpenData): Promise<ImageBatch> {
  const [, c, h, w] = data.reader.dims;
  const images = new Float32Array(data.rows * c * h * w);
  for await (const batch of data.reader.batches(readBatch, { to: data.rows }))
    images.set(batch.data, batch.from * c * h * w);
  return { data: images, dims: [data.rows, c, h, w] };
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
