// Random fingerprint draws: for each input, m distinct fingerprints of its class, fresh every time.
// The default source is node:crypto, so an attacker who knows the bank cannot predict the draw a
// query will get; a seeded source exists for tests and reproducible evaluation only.
import { randomFillSync } from 'node:crypto';

import { SeededRandom, mixSeed } from '../random.js';

export { mixSeed };

export interface DrawSource {
  /** Uniform integer in [0, n), n <= 2^32. */
  below(n: number): number;
  /**
   * The source for the row at `row` of a call, when draws must follow the input's position rather
   * than the order of calls (seeded sources: concurrent calls then reproduce a serial run).
   */
  forRow?(row: number): DrawSource;
}

/** node:crypto, read in blocks; unbiased by rejection of the top partial range. */
export class CryptoDraws implements DrawSource {
  // One randomFillSync call per 16,384 words: the call, not the bytes, is what costs.
  private readonly pool = new Uint32Array(16384);
  private at = this.pool.length;
  private seen = new Uint8Array(0);

  private next(): number {
    if (this.at === this.pool.length) {
      randomFillSync(this.pool);
      this.at = 0;
    }
    return this.pool[this.at++]!;
  }

  below(n: number): number {
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const v = this.next();
      if (v < limit) return v % n;
    }
  }

  /**
   * drawDistinct's redraw-on-repeat loop for this source, m distinct values of start + [0, count) with
   * count <= 2^21: detect() runs it for every input, so it avoids a floating-point modulo per value
   * (a word above 2^31 is a double in V8). Lemire's multiply-and-reject: the high 32 bits of word x
   * count are uniform on [0, count) once products whose low 32 bits fall below 2^32 mod count are
   * rejected; x count < 2^53 keeps the product exact.
   */
  fillDistinct(start: number, count: number, m: number, out: Uint32Array, offset: number): void {
    const reject = 4294967296 % count;
    const pool = this.pool;
    // Repeats are found by marks on the class's values, cleared again below: a scan of the values
    // drawn so far cost twice the drawing.
    if (this.seen.length < count) this.seen = new Uint8Array(count);
    const seen = this.seen;
    let at = this.at;
    for (let i = 0; i < m; i++) {
      for (;;) {
        if (at === pool.length) {
          randomFillSync(pool);
          at = 0;
        }
        const product = pool[at++]! * count;
        const high = Math.floor(product * 2.3283064365386963e-10);
        if (product - high * 4294967296 < reject || seen[high] === 1) continue;
        seen[high] = 1;
        out[offset + i] = start + high;
        break;
      }
    }
    this.at = at;
    for (let i = 0; i < m; i++) seen[out[offset + i]! - start] = 0;
  }
}

export class SeededDraws implements DrawSource {
  private readonly rng: SeededRandom;

  constructor(private readonly seed: number) {
    this.rng = new SeededRandom(seed);
  }

  forRow(row: number): DrawSource {
    return new SeededDraws(mixSeed(this.seed, 0x726f77, row));
  }

  below(n: number): number {
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const v = this.rng.nextUint32();
      if (v < limit) return v % n;
    }
  }
}

/**
 * Writes m distinct values of start + [0, count) into out[offset ..], uniformly over ordered
 * samples. Small draws from large classes (the usual 25 of hundreds) redraw on a repeat, checked by
 * a scan of the few values drawn so far; larger ones run a partial Fisher-Yates shuffle over a
 * sparse map, so no draw costs O(count).
 */
export function drawDistinct(
  source: DrawSource,
  start: number,
  count: number,
  m: number,
  out: Uint32Array,
  offset: number,
): void {
  if (m * 4 <= count && m <= 64) {
    if (source instanceof CryptoDraws && count <= 2 ** 21) {
      source.fillDistinct(start, count, m, out, offset);
      return;
    }
    for (let i = 0; i < m; i++) {
      let v: number;
      let repeated: boolean;
      do {
        v = start + source.below(count);
        repeated = false;
        for (let j = offset; j < offset + i; j++)
          if (out[j] === v) {
            repeated = true;
            break;
          }
      } while (repeated);
      out[offset + i] = v;
    }
    return;
  }
  const swapped = new Map<number, number>();
  for (let i = 0; i < m; i++) {
    const j = i + source.below(count - i);
    const vj = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out[offset + i] = start + vj;
  }
}
