// Transparent gunzip for data files: compression is detected from the content, never the file name,
// and what a gzip stream may inflate to is capped (a 4 MB file can claim 4 GB).
import { gunzipSync } from 'node:zlib';

import { DataFormatError } from './errors.js';
import { defaultLimits, formatBytes } from './limits.js';

/** gzip streams start with 1f 8b (RFC 1952); no uncompressed IDX or .npy file can (they start 00 or 93). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Checks a `maxGunzipBytes` option: a positive integer of bytes. */
export function checkGunzipLimit(value: number | undefined): number {
  const limit = value ?? defaultLimits.gunzipBytes;
  if (!(Number.isSafeInteger(limit) && limit > 0))
    throw new RangeError(`Expected a positive integer for maxGunzipBytes but received ${String(value)}`);
  return limit;
}

/** The error for gzip data past the cap; `what` says how that was found (declared, or inflated so far). */
export function gunzipLimitError(file: string, what: string, limit: number): DataFormatError {
  return new DataFormatError(
    file,
    `gzip data ${what}, past the ${formatBytes(limit)} decompression limit (maxGunzipBytes): a decompression bomb, ` +
      'or a file to gunzip before reading (uncompressed files are read in row ranges, without this limit)',
  );
}

/**
 * The bytes themselves, or their decompression when they are gzip, refused past `maxBytes` of output
 * (default 1 GiB) without inflating further; `file` names the source in errors.
 */
export function gunzipIfCompressed(
  bytes: Uint8Array,
  file: string,
  maxBytes: number = defaultLimits.gunzipBytes,
): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes, { maxOutputLength: maxBytes });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
      throw gunzipLimitError(file, 'inflates further', maxBytes);
    throw new DataFormatError(file, `corrupt gzip data (${(err as Error).message})`);
  }
}
