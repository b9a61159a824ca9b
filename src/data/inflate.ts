// A gzip file inflated as a stream, read by exact byte counts: the reader holds one zlib chunk and what
// the caller asked for, never the whole inflated file, and a file that inflates past what its header
// declares is stopped at the first chunk too many.
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';

import { DataFormatError } from './errors.js';

const chunkSize = 64 * 1024;

export class InflatedBytes {
  private readonly source;
  private readonly gunzip;
  private readonly chunks: AsyncIterator<Buffer>;
  private pending: Uint8Array = new Uint8Array(0);
  /** Inflated bytes handed out or skipped so far. */
  consumed = 0;

  constructor(
    path: string,
    private readonly file: string,
  ) {
    this.gunzip = createGunzip({ chunkSize });
    this.source = createReadStream(path, { highWaterMark: chunkSize });
    // pipe() does not forward a read error (the file vanished, EIO) to the gunzip stream: do it here.
    this.source.on('error', (err) => this.gunzip.destroy(err));
    this.source.pipe(this.gunzip);
    this.chunks = this.gunzip[Symbol.asyncIterator]();
  }

  /** The next `n` bytes, or fewer when the stream ends first. */
  async read(n: number): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    const got = await this.take(n, (part, at) => out.set(part, at));
    return got === n ? out : out.subarray(0, got);
  }

  /** Skips `n` bytes; returns how many there were. */
  skip(n: number): Promise<number> {
    return this.take(n, () => {});
  }

  /** Whether the stream holds nothing more. */
  async atEnd(): Promise<boolean> {
    if (this.pending.length > 0) return false;
    const next = await this.next();
    if (next === undefined) return true;
    this.pending = next;
    return next.length === 0 ? this.atEnd() : false;
  }

  close(): void {
    this.source.destroy();
    this.gunzip.destroy();
  }

  private async take(n: number, use: (part: Uint8Array, at: number) => void): Promise<number> {
    let got = 0;
    while (got < n) {
      if (this.pending.length === 0) {
        const next = await this.next();
        if (next === undefined) break;
        this.pending = next;
        continue;
      }
      const k = Math.min(n - got, this.pending.length);
      use(this.pending.subarray(0, k), got);
      this.pending = this.pending.subarray(k);
      got += k;
    }
    this.consumed += got;
    return got;
  }

  private async next(): Promise<Uint8Array | undefined> {
    try {
      const { done, value } = await this.chunks.next();
      return done ? undefined : value;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // zlib's errors carry codes such as Z_DATA_ERROR; file errors carry errno codes.
      const what = e.code?.startsWith('Z_') ? 'corrupt gzip data' : 'cannot read';
      throw new DataFormatError(this.file, `${what} (${e.message})`);
    }
  }
}
