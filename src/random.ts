// Seeded random numbers (sfc32) for the attacks, bank fitting (image order, candidates, tap samples)
// and reproducible evaluations; seeded from node:crypto when no seed is given. The detector's own
// per-input draws never use this: they come from node:crypto directly (detect/draws.ts).
// Attack randomness only needs to be varied, not secret.
import { randomBytes } from 'node:crypto';

export class SeededRandom {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | undefined;

  /** A seed (any safe integer) reproduces a run; without one the state comes from node:crypto. */
  constructor(seed?: number) {
    const words = new Uint32Array(4);
    if (seed === undefined) {
      words.set(new Uint32Array(randomBytes(16).buffer.slice(0, 16)));
    } else {
      if (!Number.isSafeInteger(seed)) throw new RangeError(`Expected a safe integer for seed but received ${seed}`);
      // splitmix32 spreads neighbouring seeds over the whole state.
      let s = (seed ^ Math.floor(seed / 2 ** 32)) >>> 0;
      for (let i = 0; i < 4; i++) {
        s = (s + 0x9e3779b9) >>> 0;
        let z = s;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
        words[i] = (z ^ (z >>> 16)) >>> 0;
      }
    }
    [this.a, this.b, this.c, this.d] = [words[0]!, words[1]!, words[2]!, words[3]! | 1];
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    return (this.nextUint32() * 2 ** 21 + (this.nextUint32() >>> 11)) / 2 ** 53;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** -1 or +1 with equal probability. */
  sign(): number {
    return this.nextUint32() & 1 ? 1 : -1;
  }

  /** Standard normal (Box-Muller, both values used). */
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(1 - this.next()));
    const theta = 2 * Math.PI * this.next();
    this.spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  }
}
