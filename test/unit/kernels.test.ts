// subsetMeans, detectScores and scoreGradient against the TypeScript reference on random shapes,
// including the edges (one row, one neuron, k = 1, k = N, repeated rows, huge N).
import { expect } from 'chai';

import { Bank, subsetMeans, subsetMeansSync } from '../../src/index.js';
import type { Combine } from '../../src/index.js';
import * as ref from '../reference/kernels.js';
import { TestRandom, randomBank } from '../reference/random.js';

function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rel: number,
  abs: number,
  what: string,
): void {
  expect(actual.length, `${what} length`).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!,
      e = expected[i]!;
    if (Math.abs(a - e) > abs + rel * Math.abs(e)) {
      expect.fail(`${what}[${i}]: ${a} vs reference ${e}`);
    }
  }
}

const shapes: Array<{ rows: number; neurons: number; k: number; count: number }> = [
  { rows: 1, neurons: 1, k: 1, count: 1 },
  { rows: 1, neurons: 6, k: 6, count: 4 }, // k = N
  { rows: 4, neurons: 9, k: 1, count: 11 },
  { rows: 32, neurons: 650, k: 10, count: 300 },
  { rows: 3, neurons: 150_000, k: 5, count: 40 }, // huge N: indices near the top of the row
  { rows: 17, neurons: 3048, k: 50, count: 60 },
];

describe('subsetMeans', () => {
  it('matches the reference on random shapes, sync and async alike', async () => {
    const rng = new TestRandom(11);
    for (const s of shapes) {
      const acts = rng.floats(s.rows * s.neurons, -4, 4);
      const subsets = rng.subsets(s.count, s.k, s.neurons);
      const want = ref.subsetMeans(acts, s.rows, s.neurons, subsets, s.k);
      const opts = { acts, rows: s.rows, neurons: s.neurons, subsets, k: s.k };
      expectClose(await subsetMeans(opts), want, 1e-6, 1e-6, `async ${JSON.stringify(s)}`);
      expectClose(subsetMeansSync(opts), want, 1e-6, 1e-6, `sync ${JSON.stringify(s)}`);
    }
  });

  it('gives identical values for repeated rows and allows repeated indices', () => {
    const row = new TestRandom(3).floats(20);
    const acts = new Float32Array(60);
    for (let r = 0; r < 3; r++) acts.set(row, r * 20);
    const out = subsetMeansSync({ acts, rows: 3, neurons: 20, subsets: Uint32Array.from([19, 19, 0]), k: 3 });
    expect(out[0]).to.equal(out[1]).and.to.equal(out[2]);
    expect(out[0]).to.be.closeTo((2 * row[19]! + row[0]!) / 3, 1e-6);
  });

  it('handles zero rows and zero subsets', () => {
    expect(
      subsetMeansSync({ acts: new Float32Array(0), rows: 0, neurons: 5, subsets: Uint32Array.from([1, 2]), k: 2 }),
    ).to.have.length(0);
    expect(
      subsetMeansSync({ acts: new Float32Array(10), rows: 2, neurons: 5, subsets: new Uint32Array(0), k: 2 }),
    ).to.have.length(0);
  });

  it('reports NaN and Inf with the row and subset they spoil', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const acts = new Float32Array(12).fill(1);
      acts[2 * 4 + 3] = bad;
      expect(() =>
        subsetMeansSync({ acts, rows: 3, neurons: 4, subsets: Uint32Array.from([0, 1, 2, 3]), k: 2 }),
      ).to.throw(RangeError, /row 2 among the neurons of subset 1/);
    }
  });

  it('accepts a typed-array view with a byte offset into a larger buffer', () => {
    const buffer = new Float32Array(100).map((_, i) => i);
    const acts = buffer.subarray(10, 30); // rows 2 x 10, values 10..29
    expect(
      Array.from(subsetMeansSync({ acts, rows: 2, neurons: 10, subsets: Uint32Array.from([0, 9]), k: 2 })),
    ).to.deep.equal([14.5, 24.5]);
  });
});

describe('Bank.detectScores', () => {
  for (const combine of ['max', 'logsumexp'] as Combine[]) {
    it(`matches the reference with 1-3 attack families (${combine})`, async () => {
      const rng = new TestRandom(combine === 'max' ? 21 : 22);
      for (const families of [1, 2, 3]) {
        for (const s of shapes) {
          const spec = randomBank(rng, s.neurons, s.k, s.count, families);
          const bank = new Bank(spec);
          expect([bank.neurons, bank.k, bank.count, bank.families]).to.deep.equal([s.neurons, s.k, s.count, families]);
          const acts = rng.floats(s.rows * s.neurons, -1.5, 1.5);
          const m = Math.min(25, s.count);
          const draws = new Uint32Array(s.rows * m);
          for (let b = 0; b < s.rows; b++) draws.set(rng.subsets(1, m, s.count), b * m);
          const want = ref.detectScores(spec, acts, s.rows, draws, combine);
          const got = await bank.detectScores({ acts, rows: s.rows, draws, combine, means: true, terms: true });
          expectClose(got.score, want.score, 1e-5, 1e-4, 'score');
          expectClose(got.familyScores, want.familyScores, 1e-5, 1e-4, 'familyScores');
          expectClose(got.means!, want.means, 1e-6, 1e-6, 'means');
          expectClose(got.terms!, want.terms, 1e-5, 1e-4, 'terms');
          const sync = bank.detectScoresSync({ acts, rows: s.rows, draws, combine });
          expect(Array.from(sync.score)).to.deep.equal(Array.from(got.score));
          expect(sync.means).to.equal(undefined);
        }
      }
    });
  }

  it('scores zero draws as zero and one row alone as in a batch', () => {
    const rng = new TestRandom(5);
    const spec = randomBank(rng, 30, 3, 10, 2);
    const bank = new Bank(spec);
    const acts = rng.floats(4 * 30);
    expect(Array.from(bank.detectScoresSync({ acts, rows: 4, draws: new Uint32Array(0) }).score)).to.deep.equal([
      0, 0, 0, 0,
    ]);
    const draws = rng.subsets(4, 5, 10);
    const batch = bank.detectScoresSync({ acts, rows: 4, draws }).score;
    for (let b = 0; b < 4; b++) {
      const one = bank.detectScoresSync({
        acts: acts.subarray(b * 30, (b + 1) * 30),
        rows: 1,
        draws: draws.subarray(b * 5, (b + 1) * 5),
      });
      expect(one.score[0]).to.equal(batch[b]);
    }
  });

  it('is higher for activations that look attacked', () => {
    // One neuron, clean N(0, 1) vs attacked N(3, 1): the LLR at x is 3x - 4.5 per fingerprint.
    const bank = new Bank({
      neurons: 1,
      k: 1,
      families: 1,
      indices: Uint32Array.from([0]),
      mu0: Float32Array.from([0]),
      sd0: Float32Array.from([1]),
      mu1: Float32Array.from([3]),
      sd1: Float32Array.from([1]),
    });
    const r = bank.detectScoresSync({ acts: Float32Array.from([0, 3]), rows: 2, draws: Uint32Array.from([0, 0]) });
    expect(r.score[0]).to.be.closeTo(-4.5, 1e-6);
    expect(r.score[1]).to.be.closeTo(4.5, 1e-6);
  });
});

describe('Bank.scoreGradient', () => {
  it('matches the reference gradient and central finite differences', async () => {
    const rng = new TestRandom(31);
    for (const combine of ['max', 'logsumexp'] as Combine[]) {
      for (const families of [1, 3]) {
        const spec = randomBank(rng, 25, 4, 12, families);
        const bank = new Bank(spec);
        const rows = 3,
          m = 6;
        const acts = rng.floats(rows * 25);
        const draws = new Uint32Array(rows * m);
        for (let b = 0; b < rows; b++) draws.set(rng.subsets(1, m, 12), b * m);
        const got = await bank.scoreGradient({ acts, rows, draws, combine });
        expectClose(got, ref.scoreGradient(spec, acts, rows, draws, combine), 1e-4, 1e-4, 'gradient');
        const h = 1e-3;
        for (let i = 0; i < acts.length; i++) {
          const up = acts.slice(),
            down = acts.slice();
          up[i]! += h;
          down[i]! -= h;
          const fd =
            (ref.detectScores(spec, up, rows, draws, combine).score.reduce((a, v) => a + v, 0) -
              ref.detectScores(spec, down, rows, draws, combine).score.reduce((a, v) => a + v, 0)) /
            (up[i]! - down[i]!);
          expect(got[i]).to.be.closeTo(fd, 2e-2 + 2e-2 * Math.abs(fd));
        }
      }
    }
  });
});
