// Backend choice from JavaScript, and the CUDA backend against the CPU backend through the addon
// when a usable GPU is present (skipped, and said so, on machines without one).
import { expect } from 'chai';

import { Bank, info, screenSync, setBackend, subsetMeansSync } from '../../src/index.js';
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
    if (!(Math.abs(a - e) <= abs + rel * Math.abs(e))) expect.fail(`${what}[${i}]: cuda ${a} vs cpu ${e}`);
  }
}

// Runs fn on the CPU backend, then on CUDA, restoring the choice made at load time.
function onBoth<T>(fn: () => T): { cpu: T; cuda: T } {
  const before = info().backendRequested as 'auto' | 'cpu' | 'cuda';
  try {
    setBackend('cpu');
    const cpu = fn();
    setBackend('cuda');
    return { cpu, cuda: fn() };
  } finally {
    setBackend(before);
  }
}

describe('backend choice', () => {
  it('reports whether CUDA is compiled and usable, with a reason when it is not', () => {
    const { cuda, backend } = info();
    expect(cuda.compiled).to.be.a('boolean');
    if (!cuda.usable) {
      expect(backend).to.equal('cpu');
      expect(cuda.reason).to.be.a('string').that.is.not.empty;
      expect(() => setBackend('cuda')).to.throw(/cuda backend is unavailable/);
      expect(info().backend).to.equal('cpu'); // a refused choice changes nothing
    }
    expect(setBackend('cpu')).to.equal('cpu');
    expect(setBackend('auto')).to.equal(cuda.usable ? 'cuda' : 'cpu');
  });
});

describe('CUDA backend vs CPU backend', () => {
  before(function () {
    if (!info().cuda.usable) {
      console.log(`      (skipped: ${info().cuda.reason})`);
      this.skip();
    }
  });

  it('subsetMeans agrees', () => {
    const rng = new TestRandom(21);
    const rows = 9,
      neurons = 3048,
      k = 50,
      count = 70;
    const acts = rng.floats(rows * neurons, -3, 3);
    const subsets = rng.subsets(count, k, neurons);
    const r = onBoth(() => subsetMeansSync({ acts, rows, neurons, subsets, k }));
    expectClose(r.cuda, r.cpu, 1e-6, 1e-7, 'subsetMeans');
  });

  it('detectScores and scoreGradient agree, and errors read the same', () => {
    const rng = new TestRandom(22);
    const neurons = 650,
      rows = 16,
      m = 25;
    const bank = new Bank(randomBank(rng, neurons, 10, 300, 2));
    const acts = rng.floats(rows * neurons, -2, 2);
    const draws = Uint32Array.from({ length: rows * m }, () => rng.int(300));
    const scores = onBoth(() => bank.detectScoresSync({ acts, rows, draws, means: true, terms: true }));
    expectClose(scores.cuda.score, scores.cpu.score, 1e-5, 1e-4, 'score');
    expectClose(scores.cuda.terms!, scores.cpu.terms!, 1e-5, 1e-5, 'terms');
    const grads = onBoth(() => bank.scoreGradientSync({ acts, rows, draws, combine: 'logsumexp' }));
    expectClose(grads.cuda, grads.cpu, 1e-4, 1e-4, 'gradient');
    const bad = draws.slice();
    bad[7] = 300;
    const errors = onBoth(() => {
      try {
        bank.detectScoresSync({ acts, rows, draws: bad });
        return '';
      } catch (e) {
        return (e as Error).message;
      }
    });
    expect(errors.cuda)
      .to.equal(errors.cpu)
      .and.match(/draws\[7\]/);
  });

  it('screen agrees', () => {
    const rng = new TestRandom(23);
    const n0 = 200,
      n1 = 150,
      neurons = 1000,
      k = 20,
      count = 3000;
    const clean = rng.floats(n0 * neurons, 0, 1);
    const attacked = rng.floats(n1 * neurons, 0.02, 1.02);
    const candidates = rng.subsets(count, k, neurons);
    const r = onBoth(() => screenSync({ clean, cleanRows: n0, attacked, attackedRows: n1, neurons, candidates, k }));
    for (const key of ['mu0', 'sd0', 'mu1', 'sd1', 't', 'd'] as const)
      expectClose(r.cuda[key], r.cpu[key], 1e-8, 1e-10, key);
    expectClose(r.cuda.p, r.cpu.p, 1e-5, 1e-300, 'p');
  });
});
