// NumPy .npy files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html): the CLI's tensor
// interchange format. Reads format 1.0 and 2.0, writes 1.0; C order; five little-endian dtypes.
import { readFileSync, writeFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

import { DataFormatError } from './errors.js';
import { bytesOfTypedArray, dtypeOf, elementCount, itemSize, typedArrayFromBytes } from './typed-bytes.js';
import type { TypedArrayOf } from './typed-bytes.js';

export type NpyDtype = 'float32' | 'float64' | 'uint8' | 'int32' | 'int64';

/** An .npy array: dims in C (row-major) order, values in host byte order. int64 arrives as BigInt64Array. */
export type NpyArray = { [D in NpyDtype]: { dtype: D; dims: number[]; data: TypedArrayOf[D] } }[NpyDtype];
export type NpyData = NpyArray['data'];

/** numpy's `descr` strings; numpy writes uint8 as '|u1' but '<u1' means the same, so both are read. */
const dtypeByDescr: ReadonlyMap<string, NpyDtype> = new Map([
  ['<f4', 'float32'],
  ['<f8', 'float64'],
  ['|u1', 'uint8'],
  ['<u1', 'uint8'],
  ['<i4', 'int32'],
  ['<i8', 'int64'],
]);
const descrByDtype: Readonly<Record<NpyDtype, string>> = {
  float32: '<f4',
  float64: '<f8',
  uint8: '|u1',
  int32: '<i4',
  int64: '<i8',
};

const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy itself refuses longer headers from untrusted files (max_header_size); so do we. */
const maxHeaderLength = 10_000;
/** numpy pads the header so the data starts on a 64-byte boundary (memory-mapping friendly). */
const alignment = 64;

export function isNpy(bytes: Uint8Array): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

/** An .npy header: the dtype, the shape and where the data starts. */
export interface NpyHeader {
  descr: string;
  dtype: NpyDtype;
  dims: number[];
  dataStart: number;
  /** Bytes of data the shape declares. */
  dataBytes: number;
}

/** Bytes before an .npy file's data, from its first 12 bytes (fewer when the file is shorter). */
export function npyHeaderLength(head: Uint8Array, file: string): number {
  if (!isNpy(head)) throw new DataFormatError(file, 'not a .npy file (missing the \\x93NUMPY magic)');
  if (head.length < 8) throw new DataFormatError(file, 'truncated .npy preamble');
  const major = head[6]!,
    minor = head[7]!;
  if ((major !== 1 && major !== 2) || minor !== 0) {
    throw new DataFormatError(file, `unsupported .npy format version ${major}.${minor} (supported: 1.0, 2.0)`);
  }
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (head.length < 8 + lengthBytes) throw new DataFormatError(file, 'truncated .npy preamble');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  if (headerLength > maxHeaderLength) {
    throw new DataFormatError(file, `.npy header of ${headerLength} bytes exceeds the ${maxHeaderLength}-byte limit`);
  }
  return 8 + lengthBytes + headerLength;
}

/** Decodes an .npy header from the file's first bytes (at least npyHeaderLength of them, or it says so). */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  const dataStart = npyHeaderLength(bytes, file);
  const headerStart = bytes[6] === 1 ? 10 : 12;
  if (dataStart > bytes.length) {
    throw new DataFormatError(
      file,
      `truncated: the header says ${dataStart - headerStart} bytes but the file ends first`,
    );
  }
  const header = parseHeader(
    Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, dataStart - headerStart).toString('latin1'),
    file,
  );
  return { ...header, dataStart, dataBytes: elementCount(header.dims)! * itemSize[header.dtype] };
}

/** The error for a file whose data is not the size its shape declares. */
export function npySizeError(file: string, header: NpyHeader, found: number): DataFormatError {
  return new DataFormatError(
    file,
    `expected ${header.dataBytes} bytes of data for shape (${header.dims.join(', ')}) ${header.descr} ` +
      `but found ${found}`,
  );
}

/** Decodes .npy bytes; `file` names the source in errors. */
export function parseNpy(bytes: Uint8Array, file: string): NpyArray {
  const header = parseNpyHeader(bytes, file);
  const found = bytes.length - header.dataStart;
  if (found !== header.dataBytes) throw npySizeError(file, header, found);
  const data = typedArrayFromBytes(header.dtype, bytes.subarray(header.dataStart), true);
  return { dtype: header.dtype, dims: header.dims, data } as NpyArray;
}

export function readNpy(path: string): NpyArray {
  return parseNpy(readFileSync(path), path);
}

/** .npy format 1.0 bytes, laid out exactly as numpy.save writes them. */
export function encodeNpy(array: { dims: readonly number[]; data: NpyData }): Uint8Array {
  const dtype = dtypeOf(array.data) as NpyDtype | undefined;
  if (dtype === undefined || !(dtype in descrByDtype)) {
    throw new TypeError('Expected a Float32Array, Float64Array, Uint8Array, Int32Array or BigInt64Array for data');
  }
  const { dims, data } = array;
  if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new RangeError(`Expected non-negative integer dims but received [${dims.join(', ')}]`);
  }
  if (elementCount(dims) !== data.length) {
    throw new RangeError(`Expected ${dims.join('x') || 'one'} values for dims but data holds ${data.length}`);
  }
  return Buffer.concat([npyHeaderBytes(dtype, dims), bytesOfTypedArray(data, true)]);
}

/** The preamble and padded header of a format 1.0 file, laid out exactly as numpy.save writes them. */
function npyHeaderBytes(dtype: NpyDtype, dims: readonly number[]): Uint8Array {
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  const dict = `{'descr': '${descrByDtype[dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = 10 + dict.length + 1; // preamble + dict + '\n'
  const header = `${dict + ' '.repeat((alignment - (unpadded % alignment)) % alignment)}\n`;
  if (header.length > 0xffff)
    throw new RangeError(`Expected dims that fit a format 1.0 header; ${dims.length} dims do not`);
  const preamble = new Uint8Array(10);
  preamble.set(magic);
  preamble[6] = 1;
  new DataView(preamble.buffer).setUint16(8, header.length, true);
  return Buffer.concat([preamble, Buffer.from(header, 'latin1')]);
}

export function writeNpy(path: string, array: { dims: readonly number[]; data: NpyData }): void {
  writeFileSync(path, encodeNpy(array));
}

/**
 * A float32 .npy file written a batch of rows at a time (the shape is known first): memory holds one
 * batch. The rows go to a temporary file beside `path`, renamed into place once all are written, so a
 * failure never leaves a truncated array behind.
 */
export class NpyWriter {
  private written = 0;

  private constructor(
    private readonly handle: FileHandle,
    private readonly path: string,
    private readonly temporary: string,
    private readonly expected: number,
  ) {}

  static async open(path: string, dims: readonly number[]): Promise<NpyWriter> {
    if (!dims.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new RangeError(`Expected non-negative integer dims but received [${dims.join(', ')}]`);
    const temporary = `${path}.${process.pid}.tmp`;
    const handle = await open(temporary, 'w');
    try {
      await handle.write(npyHeaderBytes('float32', dims));
    } catch (error) {
      await handle.close();
      await rm(temporary, { force: true });
      throw error;
    }
    return new NpyWriter(handle, path, temporary, elementCount(dims)!);
  }

  /** Appends rows (their values in C order). */
  async write(values: Float32Array): Promise<void> {
    if (this.written + values.length > this.expected)
      throw new RangeError(`Expected ${this.expected} values in all for the .npy file but received more`);
    await this.handle.write(bytesOfTypedArray(values, true));
    this.written += values.length;
  }

  /** Finishes the file (all rows must have been written) and moves it into place. */
  async close(): Promise<void> {
    await this.handle.close();
    if (this.written !== this.expected) {
      await rm(this.temporary, { force: true });
      throw new RangeError(`Expected ${this.expected} values for the .npy file but ${this.written} were written`);
    }
    await rename(this.temporary, this.path);
  }

  /** Gives up: the temporary file goes, `path` is untouched. */
  async abort(): Promise<void> {
    await this.handle.close().catch(() => {});
    await rm(this.temporary, { force: true });
  }
}

/**
 * Parses the header, a Python dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
 * The file is untrusted input, so this accepts exactly the literal grammar numpy writes (any key order,
 * either quote style, Python 2's 10L integers) and nothing else: never an eval.
 */
function parseHeader(text: string, file: string): { descr: string; dtype: NpyDtype; dims: number[] } {
  const fail = (problem: string): never => {
    throw new DataFormatError(file, `bad .npy header (${problem}): ${JSON.stringify(text.slice(0, 200))}`);
  };
  let pos = 0;
  const skipSpace = (): void => {
    while (pos < text.length && (text[pos] === ' ' || text[pos] === '\t')) pos++;
  };
  const expectChar = (c: string): void => {
    skipSpace();
    if (text[pos] !== c) fail(`expected '${c}' at offset ${pos}`);
    pos++;
  };
  const parseString = (): string => {
    skipSpace();
    const quote = text[pos];
    if (quote !== "'" && quote !== '"') return fail(`expected a string at offset ${pos}`);
    const end = text.indexOf(quote, pos + 1);
    if (end < 0) return fail('unterminated string');
    const value = text.slice(pos + 1, end);
    if (/[\\\n]/.test(value)) fail('escapes are not allowed in strings');
    pos = end + 1;
    return value;
  };
  const readInt = (): number => {
    skipSpace();
    const match = /^(0|[1-9][0-9]*)L?/.exec(text.slice(pos));
    if (match === null) return fail(`expected a non-negative integer at offset ${pos}`);
    pos += match[0].length;
    const value = Number(match[1]);
    if (!Number.isSafeInteger(value)) fail(`dimension ${match[1]} is too large`);
    return value;
  };
  const parseShape = (): number[] => {
    expectChar('(');
    const dims: number[] = [];
    skipSpace();
    let trailingComma = false;
    while (text[pos] !== ')') {
      dims.push(readInt());
      skipSpace();
      trailingComma = text[pos] === ',';
      if (trailingComma) pos++;
      else if (text[pos] !== ')') fail(`expected ',' or ')' in shape at offset ${pos}`);
      skipSpace();
    }
    pos++;
    // In Python (5) is the int 5, not a tuple: numpy always writes (5,).
    if (dims.length === 1 && !trailingComma) fail('a one-dimensional shape needs a trailing comma');
    return dims;
  };
  const parseBool = (): boolean => {
    skipSpace();
    for (const [word, value] of [
      ['True', true],
      ['False', false],
    ] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return value;
      }
    }
    return fail(`expected True or False at offset ${pos}`);
  };

  const seen = new Map<string, string | boolean | number[]>();
  expectChar('{');
  skipSpace();
  while (text[pos] !== '}') {
    const key = parseString();
    if (seen.has(key)) fail(`duplicate key '${key}'`);
    expectChar(':');
    skipSpace();
    if (key === 'descr') {
      if (text[pos] === '[') fail('structured dtypes are not supported');
      seen.set(key, parseString());
    } else if (key === 'fortran_order') seen.set(key, parseBool());
    else if (key === 'shape') seen.set(key, parseShape());
    else fail(`unexpected key '${key}'`);
    skipSpace();
    if (text[pos] === ',') pos++;
    else if (text[pos] !== '}') fail(`expected ',' or '}' at offset ${pos}`);
    skipSpace();
  }
  pos++;
  // numpy pads with spaces and ends the header with one newline.
  if (!/^[ \t]*\n$/.test(text.slice(pos))) fail('expected only padding and a newline after the dict');
  for (const key of ['descr', 'fortran_order', 'shape']) if (!seen.has(key)) fail(`missing key '${key}'`);

  const descr = seen.get('descr') as string;
  const dims = seen.get('shape') as number[];
  if (seen.get('fortran_order') === true) {
    throw new DataFormatError(
      file,
      'Fortran-order arrays are not supported; save a C-order array (np.ascontiguousarray)',
    );
  }
  const dtype = dtypeByDescr.get(descr);
  if (dtype === undefined) {
    const hint = descr.startsWith('>') ? '; big-endian data: save with arr.astype(arr.dtype.newbyteorder("<"))' : '';
    throw new DataFormatError(file, `unsupported dtype '${descr}' (supported: <f4, <f8, |u1, <i4, <i8)${hint}`);
  }
  if (elementCount(dims) === undefined) fail('the shape holds more elements than any file can');
  return { descr, dtype, dims };
}
