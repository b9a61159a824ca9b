// Transparent gunzip for data files: compression is detected from the content, never the file name.
import { gunzipSync } from 'node:zlib';

import { DataFormatError } from './errors.js';

/** gzip streams start with 1f 8b (RFC 1952); no uncompressed IDX or .npy file can (they start 00 or 93). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The bytes themselves, or their decompression when they are gzip; `file` names the source in errors. */
export function gunzipIfCompressed(bytes: Uint8Array, file: string): Uint8Array {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (err) {
    throw new DataFormatError(file, `corrupt gzip data (${(err as Error).message})`);
  }
}
