// Scoring files as `nfp detect` does: image files decoded to the model's input (by content, within the
// image limits) and tensor files read a batch at a time, so that memory depends on the batch and not
// on the file: 20,000 images of a wide-tapped model are 20,000 activation rows held at once otherwise.
// Every input is found and every tensor file's header checked before the first is scored.
import { open, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { DataFormatError, decodeImage, imageExtensions, isGzip, isNpy } from '../data/index.js';
import type { ImageBatch, TensorReader } from '../data/index.js';
import type { Detection, FingerprintDetector } from '../detect/index.js';
import type { ImageReadOptions } from './data.js';
import { imageOptionsFor, openData } from './data.js';
import { ExperimentError } from './errors.js';

export interface DetectFilesOptions {
  /** Image files, tensor files (.npy, IDX; gzipped or not) and folders (walked for image files). */
  inputs: readonly string[];
  /** Rows of a tensor file scored per detect() call (default 128). */
  batchSize?: number;
  image?: ImageReadOptions;
  explain?: boolean;
}

/** One input's result: its row in the input (0 for an image file). */
export interface FileDetection {
  input: string;
  index: number;
  detection: Detection;
}

export const defaultDetectBatch = 128;

/**
 * Scores every image of every input with `detector`, in order: one result per image as soon as its
 * batch is scored. Missing inputs and bad tensor-file headers fail before any is scored.
 */
export async function* detectFiles(
  detector: FingerprintDetector,
  options: DetectFilesOptions,
): AsyncGenerator<FileDetection> {
  const batchSize = options.batchSize ?? defaultDetectBatch;
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1))
    throw new ExperimentError(`Expected a positive integer for --batch-size but received ${batchSize}`, '--batch-size');
  const shape = detector.classifier.inputShape;
  const planned: Array<{ input: string; reader?: TensorReader }> = [];
  for (const input of await expandInputs(options.inputs)) {
    const reader = (await isTensorFile(input))
      ? (await openData(input, { inputShape: shape, name: input })).reader
      : undefined;
    planned.push({ input, ...(reader && { reader }) });
  }
  const explain = options.explain === true;
  const imageOptions = { ...imageOptionsFor(shape), ...options.image };
  for (const { input, reader } of planned) {
    const batches: AsyncIterable<ImageBatch & { from: number }> =
      reader?.batches(batchSize) ?? oneImage(input, imageOptions, shape);
    for await (const batch of batches) {
      const detections = await detector.detect({ data: batch.data, dims: batch.dims }, { explain });
      for (const [r, detection] of detections.entries()) yield { input, index: batch.from + r, detection };
    }
  }
}

async function* oneImage(
  input: string,
  options: ReturnType<typeof imageOptionsFor> & ImageReadOptions,
  shape: readonly number[],
): AsyncGenerator<ImageBatch & { from: number }> {
  const image = await decodeImage(input, options);
  if (image.dims.slice(1).some((d, i) => d !== shape[i]))
    throw new DataFormatError(
      input,
      `decodes to [${image.dims.slice(1).join(', ')}] but the model takes [${shape.join(', ')}] ` +
        '(a non-square input needs images of its aspect ratio)',
    );
  yield { ...image, from: 0 };
}

/** Tensor files say so in their first bytes (.npy magic, IDX's 00 00, gzip); anything else is an image. */
async function isTensorFile(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const head = new Uint8Array(6);
    const { bytesRead } = await handle.read(head, 0, 6, 0);
    const bytes = head.subarray(0, bytesRead);
    return isNpy(bytes) || isGzip(bytes) || (bytes.length >= 2 && bytes[0] === 0 && bytes[1] === 0);
  } finally {
    await handle.close();
  }
}

/** The inputs with folders walked (sorted, recursively) for image files; each must exist. */
async function expandInputs(inputs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const input of inputs) {
    let isDir: boolean;
    try {
      isDir = (await stat(input)).isDirectory();
    } catch (err) {
      throw new DataFormatError(input, `cannot read (${(err as Error).message})`);
    }
    if (!isDir) {
      out.push(input);
      continue;
    }
    const entries = (await readdir(input, { withFileTypes: true })).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      const path = join(input, e.name);
      if (e.isDirectory()) out.push(...(await expandInputs([path])));
      else if (imageExtensions.some((x) => e.name.toLowerCase().endsWith(x))) out.push(path);
    }
  }
  return out;
}
