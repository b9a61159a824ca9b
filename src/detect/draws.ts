// Random fingerprint draws: for each input, m distinct fingerprints of its class, fresh every time.
// The default source is node:crypto, so an attacker who knows the bank cannot predict the draw a
// query will get; a seeded source exists for tests and reproducible evaluation only.
import { randomFillSync } from 'node:crypto';

import { AttackRandom } from '../attacks/index.js';

export interface DrawSource {
  /** Uniform integer in [0, n), n <= 2^32. */
  below(n: number): number;
}

/** node:crypto, read in blocks; unbiased by rejection of the top partial range. */
export class CryptoDraws implements DrawSource {
  private readonly pool = new Uint32Array(1024);
  private at = this.pool.length;

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
}

export class SeededDraws implements DrawSource {
  private readonly rng: AttackRandom;

  constructor(seed: number) {
    this.rng = new AttackRandom(seed);
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
 * Writes m distinct values of start + [0, count) into out[offset ..], by a partial Fisher-Yates
 * shuffle over a sparse map (no O(count) work per draw, whatever the bank's size).
 */
export function drawDistinct(source: DrawSource, start: number, count: number, m: number, out: Uint32Array, offset: number): void {
  const swapped = new Map<number, number>();
  for (let i = 0; i < m; i++) {
    const j = i + source.below(count - i);
    const vj = swapped.get(j) ?? j;
    swapped.set(j, swapped.get(i) ?? i);
    out[offset + i] = start + vj;
  }
}
