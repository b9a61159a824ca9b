// Class labels from whatever integer type a file stores them in, as the Int32Array the library uses.
import { DataFormatError } from './errors.js';

export type IntegerArray = Uint8Array | Int8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array;

/**
 * Copies labels into an Int32Array, checking each is a class index: 0 <= label < numClasses (or < 2^31
 * when numClasses is not given). int64 files (numpy's default) can hold values that would silently wrap.
 */
export function toInt32Labels(values: IntegerArray, file: string, numClasses?: number): Int32Array {
  const limit = numClasses ?? 2 ** 31;
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]!);
    if (!(v >= 0 && v < limit)) {
      const range = numClasses === undefined ? 'a non-negative int32' : `in [0, ${numClasses})`;
      throw new DataFormatError(file, `label ${i} is ${String(values[i])}, expected ${range}`);
    }
    out[i] = v;
  }
  return out;
}
