// Seeded random inputs for tests (never for the detector's draws, which use node:crypto).
import type { BankSpec } from '../../src/index.js';

export class TestRandom {
  #state: bigint;
  constructor(seed: number) {
    this.#state = BigInt(seed) ^ 0x9e3779b97f4a7c15n;
  }
  /** splitmix64, uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = this.#state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    z ^= z >> 31n;
    return Number(z >> 11n) / 2 ** 53;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }
  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
  }
  floats(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
  /** `count` subsets of k distinct indices in [0, n). */
  subsets(count: number, k: number, n: number): Uint32Array {
    const out = new Uint32Array(count * k);
    for (let c = 0; c < count; c++) {
      const chosen = new Set<number>();
      while (chosen.size < k) chosen.add(this.int(n));
      out.set([...chosen], c * k);
    }
    return out;
  }
}

/** A bank of random fingerprints with plausible (positive) stds. */
export function randomBank(rng: TestRandom, neurons: number, k: number, count: number, families: number): BankSpec {
  const sd = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(0.05, 1));
  return {
    neurons,
    k,
    families,
    indices: rng.subsets(count, k, neurons),
    mu0: rng.floats(count),
    sd0: sd(count),
    mu1: rng.floats(count * families),
    sd1: sd(count * families),
  };
}
