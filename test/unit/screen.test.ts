// screen against the TypeScript reference on random shapes, and against scipy's t-tests
// (native/tests/data, written by scripts/gen_ttest_fixtures.py).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { screen, screenSync } from '../../src/index.js';
import type { ScreenResult, TTest } from '../../src/index.js';
import { packageRoot } from '../../src/paths.js';
import * as ref from '../reference/kernels.js';
import { TestRandom } from '../reference/random.js';

const dataDir = join(packageRoot, 'native', 'tests', 'data');
const keys = ['mu0', 'sd0', 'mu1', 'sd1', 't', 'p', 'd'] as const;

function expectStatsClose(got: ScreenResult, want: ScreenResult, rel: number, what: string): void {
  for (const key of keys) {
    expect(got[key].length).to.equal(want[key].length);
    for (let i = 0; i < want[key].length; i++) {
      const a = got[key][i]!,
        e = want[key][i]!;
      if (!(a === e || Math.abs(a - e) <= rel * Math.abs(e) + 1e-12)) expect.fail(`${what} ${key}[${i}]: ${a} vs ${e}`);
    }
  }
}

describe('screen', () => {
  it('matches the reference on random shapes (Welch and Student)', async () => {
    const rng = new TestRandom(41);
    const cases = [
      { n0: 2, n1: 2, neurons: 1, k: 1, count: 1 },
      { n0: 3, n1: 7, neurons: 5, k: 5, count: 6 },
      { n0: 120, n1: 80, neurons: 650, k: 10, count: 200 },
      { n0: 40, n1: 33, neurons: 120_000, k: 7, count: 30 },
    ];
    for (const c of cases) {
      const clean = rng.floats(c.n0 * c.neurons, 0, 1);
      const attacked = rng.floats(c.n1 * c.neurons, 0.1, 1.1);
      const candidates = rng.subsets(c.count, c.k, c.neurons);
      for (const test of ['welch', 'student'] as TTest[]) {
        const opts = {
          clean,
          cleanRows: c.n0,
          attacked,
          attackedRows: c.n1,
          neurons: c.neurons,
          candidates,
          k: c.k,
          test,
        };
        const want = ref.screen(clean, c.n0, attacked, c.n1, c.neurons, candidates, c.k, test);
        expectStatsClose(await screen(opts), want, 1e-7, `${test} ${JSON.stringify(c)}`);
        expectStatsClose(screenSync(opts), want, 1e-7, `sync ${test}`);
      }
    }
  });

  it("matches scipy's ttest_ind and Cohen's d on the committed fixture", () => {
    const lines = readFileSync(join(dataDir, 'screen_small.txt'), 'utf8').trim().split('\n');
    const [n0, n1, neurons, k, count] = lines[0]!.split(' ').map(Number) as [number, number, number, number, number];
    const rowsOf = (from: number, n: number) => lines.slice(from, from + n).flatMap((l) => l.split(' ').map(Number));
    const clean = Float32Array.from(rowsOf(1, n0));
    const attacked = Float32Array.from(rowsOf(1 + n0, n1));
    const candidates = Uint32Array.from(rowsOf(1 + n0 + n1, count));
    const expected = lines.slice(1 + n0 + n1 + count).map((l) => l.split(' ').map(Number));
    expect(expected).to.have.length(count);
    for (const test of ['welch', 'student'] as TTest[]) {
      const r = screenSync({ clean, cleanRows: n0, attacked, attackedRows: n1, neurons, candidates, k, test });
      expected.forEach((e, c) => {
        const [mu0, sd0, mu1, sd1, tw, pw, ts, ps, d] = e as number[] as [
          number,
          number,
          number,
          number,
          number,
          number,
          number,
          number,
          number,
        ];
        expect(r.mu0[c]).to.be.closeTo(mu0, 1e-9);
        expect(r.sd0[c]).to.be.closeTo(sd0, 1e-9);
        expect(r.mu1[c]).to.be.closeTo(mu1, 1e-9);
        expect(r.sd1[c]).to.be.closeTo(sd1, 1e-9);
        expect(r.t[c]).to.be.closeTo(test === 'welch' ? tw : ts, 1e-8 * Math.abs(tw) + 1e-10);
        const p = test === 'welch' ? pw : ps;
        expect(Math.abs(r.p[c]! - p)).to.be.at.most(1e-7 * p + 1e-300, `p of candidate ${c}`);
        expect(r.d[c]).to.be.closeTo(d, 1e-8 * Math.abs(d) + 1e-10);
      });
      // The planted separation (neurons 0..5 shifted by 1.5) must show up as tiny p-values.
      expect(Math.min(...r.p)).to.be.below(1e-6);
    }
  });

  it("the reference t tail agrees with scipy's t.sf", () => {
    const rows = readFileSync(join(dataDir, 't_dist.tsv'), 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'));
    for (const line of rows) {
      const [t, df, p] = line.split(' ').map(Number) as [number, number, number];
      if (p > 1e-300) expect(Math.abs(ref.tTwoSidedP(t, df) - p)).to.be.at.most(1e-8 * p, `t=${t} df=${df}`);
    }
  });

  it('treats constant groups as degenerate, not as errors', () => {
    const ones = new Float32Array(12).fill(1);
    const twos = new Float32Array(12).fill(2);
    const candidates = Uint32Array.from([0, 1]);
    const same = screenSync({
      clean: ones,
      cleanRows: 4,
      attacked: ones,
      attackedRows: 4,
      neurons: 3,
      candidates,
      k: 2,
    });
    expect([same.t[0], same.p[0], same.d[0]]).to.deep.equal([0, 1, 0]);
    const apart = screenSync({
      clean: ones,
      cleanRows: 4,
      attacked: twos,
      attackedRows: 4,
      neurons: 3,
      candidates,
      k: 2,
    });
    expect([apart.t[0], apart.p[0], apart.d[0]]).to.deep.equal([Infinity, 0, Infinity]);
  });

  it('names the group and row of a NaN that reaches a candidate, and ignores unused neurons', () => {
    const rng = new TestRandom(7);
    const clean = rng.floats(5 * 4),
      attacked = rng.floats(6 * 4);
    attacked[4 * 4 + 3] = NaN;
    const opts = { clean, cleanRows: 5, attacked, attackedRows: 6, neurons: 4, k: 2 };
    expect(() => screenSync({ ...opts, candidates: Uint32Array.from([0, 1, 2, 3]) })).to.throw(
      RangeError,
      /attacked.*row 4.*candidate 1/,
    );
    expect(() => screenSync({ ...opts, candidates: Uint32Array.from([0, 1, 1, 2]) })).not.to.throw();
  });
});
