// Numeric arrays to and from raw bytes of a stated byte order (IDX is big-endian, .npy little-endian).
import { endianness } from 'node:os';

import { unitFromByte } from './image-batch.js';

export type NumericDtype = 'uint8' | 'int8' | 'int16' | 'int32' | 'int64' | 'float32' | 'float64';

/** The typed array that holds each dtype; int64 is a BigInt64Array because int64 does not fit a double. */
export interface TypedArrayOf {
  uint8: Uint8Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  float32: Float32Array;
  float64: Float64Array;
}

export type NumericArray = TypedArrayOf[NumericDtype];

export const itemSize: Readonly<Record<NumericDtype, number>> = {
  uint8: 1,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  float32: 4,
  float64: 8,
};

const hostIsLittleEndian = endianness() === 'LE';

/** Reverses each `size`-byte group in place. */
function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
}

/**
 * A typed array of `count` values decoded from `bytes` (exactly count * itemSize long). Always a copy:
 * the source may be a view into a larger buffer at an offset the typed array's alignment forbids.
 */
export function typedArrayFromBytes<D extends NumericDtype>(
  dtype: D,
  bytes: Uint8Array,
  littleEndian: boolean,
): TypedArrayOf[D] {
  const copy = new Uint8Array(bytes);
  if (littleEndian !== hostIsLittleEndian) swapBytes(copy, itemSize[dtype]);
  const buffer = copy.buffer;
  const arrays: { [K in NumericDtype]: () => TypedArrayOf[K] } = {
    uint8: () => copy,
    int8: () => new Int8Array(buffer),
    int16: () => new Int16Array(buffer),
    int32: () => new Int32Array(buffer),
    int64: () => new BigInt64Array(buffer),
    float32: () => new Float32Array(buffer),
    float64: () => new Float64Array(buffer),
  };
  return arrays[dtype]();
}

/** The values' bytes in the requested byte order (a copy when a swap is needed, else a view). */
export function bytesOfTypedArray(values: NumericArray, littleEndian: boolean): Uint8Array {
  const view = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (littleEndian === hostIsLittleEndian || values.BYTES_PER_ELEMENT === 1) return view;
  const copy = new Uint8Array(view);
  swapBytes(copy, values.BYTES_PER_ELEMENT);
  return copy;
}

/** The dtype a typed array holds, or undefined for kinds neither format stores (Uint16Array, ...). */
export function dtypeOf(values: ArrayBufferView): NumericDtype | undefined {
  if (values instanceof Uint8Array) return 'uint8';
  if (values instanceof Int8Array) return 'int8';
  if (values instanceof Int16Array) return 'int16';
  if (values instanceof Int32Array) return 'int32';
  if (values instanceof BigInt64Array) return 'int64';
  if (values instanceof Float32Array) return 'float32';
  if (values instanceof Float64Array) return 'float64';
  return undefined;
}

/** Product of dims, or undefined when it leaves the safe-integer range (a hostile header). */
export function elementCount(dims: readonly number[]): number | undefined {
  let count = 1;
  for (const d of dims) {
    count *= d;
    if (!Number.isSafeInteger(count)) return undefined;
  }
  return count;
}

/**
 * Values of `dtype` in `bytes` (exactly a whole number of them) written into `out` from `at` as float32:
 * float32 as it is, float64 rounded, uint8 scaled to [0, 1] (byte / 255, as ToTensor does). One pass,
 * no intermediate array: a file of any size converts in the memory of its float32 result.
 */
export function writeFloat32From(
  dtype: 'uint8' | 'float32' | 'float64',
  bytes: Uint8Array,
  littleEndian: boolean,
  out: Float32Array,
  at: number,
): void {
  const count = bytes.length / itemSize[dtype];
  if (dtype === 'uint8') {
    for (let i = 0; i < count; i++) out[at + i] = unitFromByte[bytes[i]!]!;
    return;
  }
  if (dtype === 'float32') {
    const target = new Uint8Array(out.buffer, out.byteOffset + at * 4, bytes.length);
    target.set(bytes);
    if (littleEndian !== hostIsLittleEndian) swapBytes(target, 4);
    return;
  }
  out.set(typedArrayFromBytes('float64', bytes, littleEndian), at);
}
