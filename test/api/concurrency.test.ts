// Many kernel calls in flight at once (as from a busy service) give the same results as serial
// calls, whatever the thread count; large jobs run off the main thread.
import { expect } from 'chai';

import { Bank, info, screen, setThreads, subsetMeans } from '../../src/index.js';
import { TestRandom, randomBank } from '../reference/random.js';

describe('concurrency', () => {
  afterEach(() => setThreads(0));

  it('64 concurrent detectScores and subsetMeans calls equal their serial results', async () => {
    const rng = new TestRandom(51);
    const spec = randomBank(rng, 2000, 10, 500, 2);
    const bank = new Bank(spec);
    const jobs = Array.from({ length: 64 }, (_, i) => {
      const rows = 1 + (i % 40) * 8; // some inline, some on worker threads
      const acts = rng.floats(rows * 2000);
      const draws = new Uint32Array(rows * 25);
      for (let r = 0; r < rows; r++) draws.set(rng.subsets(1, 25, 500), r * 25);
      const subsets = rng.subsets(300, 10, 2000);
      return { rows, acts, draws, subsets };
    });
    const serial = jobs.map((j) => ({
      score: bank.detectScoresSync({ acts: j.acts, rows: j.rows, draws: j.draws }).score,
      means: [] as number[],
    }));
    for (const threads of [1, 2, 4]) {
      setThreads(threads);
      const concurrent = await Promise.all(
        jobs.flatMap((j) => [
          bank.detectScores({ acts: j.acts, rows: j.rows, draws: j.draws }).then((r) => r.score),
          subsetMeans({ acts: j.acts, rows: j.rows, neurons: 2000, subsets: j.subsets, k: 10 }),
        ]),
      );
      jobs.forEach((j, i) => {
        expect(Array.from(concurrent[2 * i]!)).to.deep.equal(Array.from(serial[i]!.score));
        expect(concurrent[2 * i + 1]).to.have.length(j.rows * 300);
      });
    }
  });

  it('runs a large screen off the main thread', async () => {
    const rng = new TestRandom(52);
    const opts = {
      clean: rng.floats(300 * 1000),
      cleanRows: 300,
      attacked: rng.floats(300 * 1000),
      attackedRows: 300,
      neurons: 1000,
      candidates: rng.subsets(20000, 10, 1000),
      k: 10,
    };
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = Date.now();
    const result = await screen(opts);
    clearInterval(timer);
    expect(result.p).to.have.length(20000);
    // The event loop kept turning while the worker computed (unless it finished within a tick).
    if (Date.now() - started > 30) expect(ticks).to.be.greaterThan(2);
  });

  it('setThreads changes the worker count and 0 restores the default', () => {
    const defaults = info().defaultThreads;
    expect(setThreads(3)).to.equal(3);
    expect(info().threads).to.equal(3);
    expect(setThreads(0)).to.equal(defaults);
  });
});
