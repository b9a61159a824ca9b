// Tensor files read a batch at a time, so that memory depends on the batch and not on the file: an IDX
// or .npy file by its header and then row ranges (positional reads; a gzipped file inflated as a
// stream, refused from its header past the decompression limit), an image folder by its file list.
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { existsSync } from 'node:fs';

import { DataFormatError } from './errors.js';
import { checkGunzipLimit, gunzipLimitError, isGzip } from './gzip.js';
import { checkIdxImages, idxHeaderLength, idxSizeError, parseIdxHeader, readIdxLabels } from './idx.js';
import type { Nchw, NchwBatch } from './image-batch.js';
import { imageBatchShape, listImageFolder, loadImageFiles } from './images.js';
import type { ImageFolderOptions } from './images.js';
import { InflatedBytes } from './inflate.js';
import { formatBytes } from './limits.js';
import { isNpy, npyHeaderLength, npySizeError, parseNpyHeader } from './npy.js';
import { writeFloat32From } from './typed-bytes.js';

export interface TensorReadOptions extends ImageFolderOptions {
  /** Bytes a gzipped IDX or .npy file may inflate to (default 1 GiB); checked against its header first. */
  maxGunzipBytes?: number;
}

/** Rows of a tensor file: float32 NCHW in [0, 1] (uint8 data scaled) and where they start in the file. */
export interface TensorBatch extends NchwBatch {
  from: number;
}

/** An open tensor file: its shape and labels now, its rows as they are asked for. */
export interface TensorReader {
  readonly file: string;
  readonly format: 'npy' | 'idx' | 'image-folder';
  /** Of all rows in the file. */
  readonly dims: Nchw;
  /** Present for image folders, and for IDX images whose MNIST-named label file sits beside them. */
  readonly labels?: Int32Array;
  /** Class names, for image folders. */
  readonly classes?: string[];
  /** Rows [from, to) in order (default all), at most `size` at a time. */
  batches(size: number, range?: { from?: number; to?: number }): AsyncGenerator<TensorBatch>;
}

/**
 * Opens a tensor file by its content, as loadTensorFile reads it, without reading its rows: a
 * directory (an image folder), a .npy file or an IDX file, either gzipped or not. Sizes are checked
 * against the header before any row is read: an uncompressed file must be exactly as long as its
 * header says, a gzipped one must declare at most `maxGunzipBytes` and is checked as it inflates.
 */
export async function openTensorFile(path: string, options: TensorReadOptions = {}): Promise<TensorReader> {
  const maxGunzipBytes = checkGunzipLimit(options.maxGunzipBytes);
  let isDir: boolean;
  let size: number;
  try {
    const info = await stat(path);
    isDir = info.isDirectory();
    size = info.size;
  } catch (err) {
    throw new DataFormatError(path, `cannot read (${(err as Error).message})`);
  }
  if (isDir) return openImageFolder(path, options);
  const layout = await readLayout(path, size, maxGunzipBytes);
  const labels = layout.format === 'idx' ? companionLabels(path, layout.dims[0]) : undefined;
  return {
    file: path,
    format: layout.format,
    dims: layout.dims,
    ...(labels && { labels }),
    batches: (batchSize, range = {}) => {
      const [from, to] = checkRange(batchSize, range, layout.dims[0]);
      return layout.gzip
        ? inflatedRows(path, layout, batchSize, from, to)
        : fileRows(path, layout, batchSize, from, to);
    },
  };
}

/** Where the rows are and how to turn their bytes into float32. */
interface Layout {
  format: 'npy' | 'idx';
  gzip: boolean;
  dims: Nchw;
  dtype: 'uint8' | 'float32' | 'float64';
  littleEndian: boolean;
  dataStart: number;
  rowBytes: number;
}

async function readLayout(path: string, size: number, maxGunzipBytes: number): Promise<Layout> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new DataFormatError(path, `cannot read (${(err as Error).message})`);
  }
  try {
    const magic = await readAt(handle, 0, 2, path);
    if (!isGzip(magic)) {
      let offset = 0;
      const { layout, dataBytes, sizeError } = await readHeader(async (n) => {
        const part = await readAt(handle, offset, Math.min(n, size - offset), path);
        offset += part.length;
        return part;
      }, path);
      if (dataBytes !== size - layout.dataStart) throw sizeError(size - layout.dataStart);
      return layout;
    }
  } finally {
    await handle.close();
  }
  const bytes = new InflatedBytes(path, path);
  try {
    const { layout, dataBytes } = await readHeader((n) => bytes.read(n), path);
    const declared = dataBytes === undefined ? undefined : layout.dataStart + dataBytes;
    if (declared === undefined || declared > maxGunzipBytes) {
      const what = declared === undefined ? 'more bytes than any file holds' : formatBytes(declared);
      throw gunzipLimitError(path, `declares ${what} (${describe(layout)})`, maxGunzipBytes);
    }
    return { ...layout, gzip: true };
  } finally {
    bytes.close();
  }
}

/**
 * Reads and checks a header through `read` (the next n bytes, fewer at the end of the file): the
 * format from the magic, then exactly the bytes the header takes, and the images it describes.
 */
async function readHeader(
  read: (n: number) => Promise<Uint8Array>,
  file: string,
): Promise<{ layout: Layout; dataBytes: number | undefined; sizeError: (found: number) => DataFormatError }> {
  const head = await read(12);
  const upTo = async (total: number) => (total > head.length ? concat(head, await read(total - head.length)) : head);
  if (isNpy(head)) {
    const length = npyHeaderLength(head, file);
    const header = parseNpyHeader((await upTo(length)).subarray(0, length), file);
    const dims = header.dims;
    if (dims.length !== 3 && dims.length !== 4) {
      throw new DataFormatError(file, `expected images [n, c, h, w] or [n, h, w] but found shape (${dims.join(', ')})`);
    }
    if (header.dtype !== 'float32' && header.dtype !== 'float64' && header.dtype !== 'uint8')
      throw new DataFormatError(file, `expected float32, float64 or uint8 images but found ${header.dtype}`);
    const nchw = (dims.length === 4 ? dims : [dims[0], 1, dims[1], dims[2]]) as Nchw;
    return {
      layout: rowsLayout('npy', nchw, header.dtype, true, header.dataStart),
      dataBytes: header.dataBytes,
      sizeError: (found) => npySizeError(file, header, found),
    };
  }
  if (head.length >= 2 && head[0] === 0 && head[1] === 0) {
    const length = idxHeaderLength(head, file);
    const header = parseIdxHeader((await upTo(length)).subarray(0, length), file);
    const dims = checkIdxImages(header.dtype, header.dims, file);
    return {
      layout: rowsLayout('idx', dims, 'uint8', false, header.dataStart),
      dataBytes: header.dataBytes,
      sizeError: (found) => idxSizeError(file, header, found),
    };
  }
  throw new DataFormatError(file, 'not a .npy file, an IDX file or a directory of images');
}

function rowsLayout(
  format: 'npy' | 'idx',
  dims: Nchw,
  dtype: Layout['dtype'],
  littleEndian: boolean,
  dataStart: number,
): Layout {
  const itemBytes = dtype === 'uint8' ? 1 : dtype === 'float32' ? 4 : 8;
  const rowBytes = dims[1] * dims[2] * dims[3] * itemBytes;
  return { format, gzip: false, dims, dtype, littleEndian, dataStart, rowBytes };
}

function describe(layout: Layout): string {
  return `${layout.dims.join('x')} ${layout.dtype}`;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

async function readAt(handle: FileHandle, position: number, length: number, file: string): Promise<Uint8Array> {
  const out = new Uint8Array(Math.max(0, length));
  let got = 0;
  try {
    while (got < out.length) {
      const { bytesRead } = await handle.read(out, got, out.length - got, position + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
  } catch (err) {
    throw new DataFormatError(file, `cannot read (${(err as Error).message})`);
  }
  return got === out.length ? out : out.subarray(0, got);
}

function checkRange(size: number, range: { from?: number; to?: number }, rows: number): [number, number] {
  if (!(Number.isSafeInteger(size) && size >= 1))
    throw new RangeError(`Expected a positive integer for size but received ${String(size)}`);
  const from = range.from ?? 0;
  const to = range.to ?? rows;
  if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from >= 0 && from <= to && to <= rows))
    throw new RangeError(`Expected rows 0 <= from <= to <= ${rows} for range but received [${from}, ${to})`);
  return [from, to];
}

/** Rows of an uncompressed file, by positional reads. */
async function* fileRows(path: string, layout: Layout, size: number, from: number, to: number) {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new DataFormatError(path, `cannot read (${(err as Error).message})`);
  }
  try {
    for (let start = from; start < to; start += size) {
      const n = Math.min(size, to - start);
      const bytes = await readAt(handle, layout.dataStart + start * layout.rowBytes, n * layout.rowBytes, path);
      if (bytes.length !== n * layout.rowBytes)
        throw new DataFormatError(path, `ends inside row ${start + Math.floor(bytes.length / layout.rowBytes)}`);
      yield toBatch(layout, bytes, start, n);
    }
  } finally {
    await handle.close();
  }
}

/** Rows of a gzipped file, inflated from its start; the stream must end exactly where the header says. */
async function* inflatedRows(path: string, layout: Layout, size: number, from: number, to: number) {
  const bytes = new InflatedBytes(path, path);
  const total = layout.dims[0];
  try {
    const skip = layout.dataStart + from * layout.rowBytes;
    if ((await bytes.skip(skip)) !== skip) throw truncated(path, layout, bytes.consumed);
    for (let start = from; start < to; start += size) {
      const n = Math.min(size, to - start);
      const part = await bytes.read(n * layout.rowBytes);
      if (part.length !== n * layout.rowBytes) throw truncated(path, layout, bytes.consumed);
      yield toBatch(layout, part, start, n);
    }
    if (to === total && !(await bytes.atEnd())) {
      throw new DataFormatError(
        path,
        `gzip data inflates past the ${layout.dataStart + total * layout.rowBytes} bytes its header declares ` +
          `(${describe(layout)}): a decompression bomb or a corrupt file`,
      );
    }
  } finally {
    bytes.close();
  }
}

function truncated(path: string, layout: Layout, got: number): DataFormatError {
  const declared = layout.dataStart + layout.dims[0] * layout.rowBytes;
  return new DataFormatError(
    path,
    `gzip data ends after ${got} of the ${declared} bytes its header declares (${describe(layout)})`,
  );
}

function toBatch(layout: Layout, bytes: Uint8Array, from: number, n: number): TensorBatch {
  const [, c, h, w] = layout.dims;
  const data = new Float32Array(n * c * h * w);
  writeFloat32From(layout.dtype, bytes, layout.littleEndian, data, 0);
  return { data, dims: [n, c, h, w], from };
}

/** An image folder: files and labels listed now, images decoded a batch at a time. */
async function openImageFolder(root: string, options: ImageFolderOptions): Promise<TensorReader> {
  const { classes, files, labels } = listImageFolder(root);
  const shape = await imageBatchShape(files, options);
  return {
    file: root,
    format: 'image-folder',
    dims: [files.length, ...shape],
    labels,
    classes,
    async *batches(size, range = {}) {
      const [from, to] = checkRange(size, range, files.length);
      for (let start = from; start < to; start += size) {
        const n = Math.min(size, to - start);
        const batch = await loadImageFiles(files.slice(start, start + n), options, shape);
        yield { data: batch.data, dims: [n, ...shape], from: start };
      }
    },
  };
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
