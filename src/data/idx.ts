// IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/), gzipped or not.
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

import { DataFormatError } from './errors.js';
import { checkGunzipLimit, gunzipIfCompressed } from './gzip.js';
import type { Nchw, NchwBatch } from './image-batch.js';
import { toInt32Labels } from './labels.js';
import { bytesOfTypedArray, dtypeOf, elementCount, itemSize, typedArrayFromBytes } from './typed-bytes.js';
import type { TypedArrayOf } from './typed-bytes.js';

export type IdxDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** An IDX array: dims as stored (row-major), values in host byte order. */
export type IdxArray = { [D in IdxDtype]: { dtype: D; dims: number[]; data: TypedArrayOf[D] } }[IdxDtype];

/** The third byte of the magic number; IDX has no int64 and no unsigned types past uint8. */
const dtypeByCode: ReadonlyMap<number, IdxDtype> = new Map([
  [0x08, 'uint8'],
  [0x09, 'int8'],
  [0x0b, 'int16'],
  [0x0c, 'int32'],
  [0x0d, 'float32'],
  [0x0e, 'float64'],
]);
const codeByDtype: ReadonlyMap<IdxDtype, number> = new Map([...dtypeByCode].map(([code, dtype]) => [dtype, code]));

/** The format allows 255 dims; real files have 1 (labels) to 4. A bigger count means a file that is not IDX. */
const maxDims = 16;

/** An IDX header: the dtype, the dims and where the data starts. */
export interface IdxHeader {
  dtype: IdxDtype;
  dims: number[];
  dataStart: number;
  /** Bytes of data the dims declare, or undefined when they overflow any file. */
  dataBytes: number | undefined;
}

/** Bytes an IDX header takes, from its first 4 bytes (the magic); checks the magic as it goes. */
export function idxHeaderLength(head: Uint8Array, file: string): number {
  if (head.length < 4) throw new DataFormatError(file, `too short for an IDX header (${head.length} bytes)`);
  if (head[0] !== 0 || head[1] !== 0) {
    throw new DataFormatError(file, `not an IDX file: magic starts ${hex(head[0]!)} ${hex(head[1]!)}, expected 00 00`);
  }
  if (!dtypeByCode.has(head[2]!)) {
    throw new DataFormatError(file, `unknown IDX type code ${hex(head[2]!)} (expected 08, 09, 0b, 0c, 0d or 0e)`);
  }
  const ndims = head[3]!;
  if (ndims < 1 || ndims > maxDims) throw new DataFormatError(file, `implausible number of dimensions ${ndims}`);
  return 4 + 4 * ndims;
}

/** Decodes an IDX header from the file's first bytes (at least idxHeaderLength of them, or it says so). */
export function parseIdxHeader(bytes: Uint8Array, file: string): IdxHeader {
  const headerBytes = idxHeaderLength(bytes, file);
  const ndims = bytes[3]!;
  if (bytes.length < headerBytes) {
    throw new DataFormatError(
      file,
      `truncated header: ${ndims} dims need ${headerBytes} bytes but the file has ${bytes.length}`,
    );
  }
  const dtype = dtypeByCode.get(bytes[2]!)!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const count = elementCount(dims);
  return { dtype, dims, dataStart: headerBytes, dataBytes: count === undefined ? undefined : count * itemSize[dtype] };
}

/** The error for a file whose data is not the size its dims declare. */
export function idxSizeError(file: string, header: IdxHeader, found: number): DataFormatError {
  const want = header.dataBytes === undefined ? 'an impossible number of' : `${header.dataBytes}`;
  return new DataFormatError(
    file,
    `expected ${want} bytes of data for dims ${header.dims.join('x')} but found ${found}`,
  );
}

/** Decodes IDX bytes (already gunzipped); `file` names the source in errors. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const header = parseIdxHeader(bytes, file);
  const found = bytes.length - header.dataStart;
  if (header.dataBytes !== found) throw idxSizeError(file, header, found);
  const data = typedArrayFromBytes(header.dtype, bytes.subarray(header.dataStart), false);
  return { dtype: header.dtype, dims: header.dims, data } as IdxArray;
}

/** Reads an IDX file, gunzipping it when its content is gzip (up to `maxGunzipBytes`, default 1 GiB). */
export function readIdx(path: string, options: { maxGunzipBytes?: number } = {}): IdxArray {
  return parseIdx(gunzipIfCompressed(readFileSync(path), path, checkGunzipLimit(options.maxGunzipBytes)), path);
}

/** IDX bytes for an array (the inverse of parseIdx). */
export function encodeIdx(array: { dims: readonly number[]; data: IdxArray['data'] }): Uint8Array {
  const dtype = dtypeOf(array.data) as IdxDtype | undefined;
  const code = dtype === undefined ? undefined : codeByDtype.get(dtype);
  if (dtype === undefined || code === undefined) throw new TypeError('Expected a typed array IDX can hold for data');
  const { dims, data } = array;
  if (
    dims.length < 1 ||
    dims.length > maxDims ||
    !dims.every((d) => Number.isInteger(d) && d >= 0 && d <= 0xffffffff)
  ) {
    throw new RangeError(`Expected 1 to ${maxDims} uint32 dims but received [${dims.join(', ')}]`);
  }
  if (elementCount(dims) !== data.length) {
    throw new RangeError(`Expected ${dims.join('x')} values for dims but data holds ${data.length}`);
  }
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  header[2] = code;
  header[3] = dims.length;
  dims.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  return Buffer.concat([header, bytesOfTypedArray(data, false)]);
}

/** Writes an IDX file, gzipped when `gzip` is set (as MNIST ships). */
export function writeIdx(
  path: string,
  array: { dims: readonly number[]; data: IdxArray['data'] },
  options: { gzip?: boolean } = {},
): void {
  const bytes = encodeIdx(array);
  writeFileSync(path, options.gzip ? gzipSync(bytes) : bytes);
}

/** An IDX image file ([n, h, w] uint8, MNIST style) as float32 NCHW [n, 1, h, w] scaled to [0, 1]. */
export function readIdxImages(path: string): NchwBatch {
  return idxImagesToBatch(readIdx(path), path);
}

/** IDX images are uint8 [n, height, width]; anything else is refused, naming what was found. */
export function checkIdxImages(dtype: IdxDtype, dims: readonly number[], file: string): Nchw {
  if (dtype !== 'uint8' || dims.length !== 3) {
    throw new DataFormatError(file, `expected uint8 images [n, height, width] but found ${dtype} [${dims.join(', ')}]`);
  }
  const [n, h, w] = dims as [number, number, number];
  return [n, 1, h, w];
}

export function idxImagesToBatch(array: IdxArray, file: string): NchwBatch {
  const [n, , h, w] = checkIdxImages(array.dtype, array.dims, file);
  const data = new Float32Array(array.data.length);
  for (let i = 0; i < data.length; i++) data[i] = array.data[i]! / 255;
  return { data, dims: [n, 1, h, w] };
}

/** An IDX label file ([n], any integer type) as Int32Array; negative labels are rejected. */
export function readIdxLabels(path: string, options: { maxGunzipBytes?: number } = {}): Int32Array {
  const array = readIdx(path, options);
  if (array.dims.length !== 1) {
    throw new DataFormatError(path, `expected labels [n] but found dims [${array.dims.join(', ')}]`);
  }
  if (array.dtype === 'float32' || array.dtype === 'float64') {
    throw new DataFormatError(path, `expected integer labels but found ${array.dtype}`);
  }
  return toInt32Labels(array.data, path);
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}
