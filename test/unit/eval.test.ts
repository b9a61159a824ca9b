// Evaluation metrics against brute force: AUC (ties counted half), TPR at a false-positive rate, the
// ROC curve (monotone, from (0, 0) to (1, 1), its area equal to the AUC), summaries.
import { expect } from 'chai';

import { auc, rateAbove, rocCurve, summarize, tprAtFpr } from '../../src/eval/index.js';
import { TestRandom } from '../reference/random.js';

function bruteAuc(neg: number[], pos: number[]): number {
  let s = 0;
  for (const p of pos) for (const n of neg) s += p > n ? 1 : p === n ? 0.5 : 0;
  return s / (pos.length * neg.length);
}

describe('evaluation metrics', () => {
  const rnd = new TestRandom(12);
  // Rounded values so that ties occur.
  const sample = (n: number, shift: number) =>
    Array.from({ length: n }, () => Math.round((rnd.normal() + shift) * 4) / 4);

  it('AUC equals the pairwise count, ties counted half', () => {
    for (let t = 0; t < 20; t++) {
      const neg = sample(1 + rnd.int(60), 0),
        pos = sample(1 + rnd.int(60), rnd.uniform(-1, 2));
      expect(auc(neg, pos)).to.be.closeTo(bruteAuc(neg, pos), 1e-12);
    }
    expect(() => auc([], [1])).to.throw(RangeError);
    expect(() => auc([NaN], [1])).to.throw(RangeError, /NaN/);
  });

  it('TPR at a false-positive rate uses the threshold that lets at most that share of negatives through', () => {
    const neg = sample(200, 0),
      pos = sample(100, 1.5);
    for (const fpr of [0, 0.01, 0.05, 0.2]) {
      const sorted = [...neg].sort((a, b) => a - b);
      const t = sorted[sorted.length - 1 - Math.floor(fpr * sorted.length)]!;
      expect(rateAbove(neg, t)).to.be.at.most(fpr + 1e-12);
      expect(tprAtFpr(neg, pos, fpr)).to.equal(pos.filter((v) => v > t).length / pos.length);
    }
  });

  it('the ROC curve runs from (0, 0) to (1, 1), never decreases, and encloses the AUC', () => {
    const neg = Array.from({ length: 300 }, () => rnd.normal()),
      pos = Array.from({ length: 200 }, () => rnd.normal() + 1);
    const { fpr, tpr } = rocCurve(neg, pos, 1000);
    expect([fpr[0], tpr[0]]).to.deep.equal([0, 0]);
    expect([fpr.at(-1), tpr.at(-1)]).to.deep.equal([1, 1]);
    let area = 0;
    for (let i = 1; i < fpr.length; i++) {
      expect(fpr[i]).to.be.at.least(fpr[i - 1]!);
      expect(tpr[i]).to.be.at.least(tpr[i - 1]!);
      area += ((fpr[i]! - fpr[i - 1]!) * (tpr[i]! + tpr[i - 1]!)) / 2;
    }
    expect(area).to.be.closeTo(auc(neg, pos), 1e-3);
    expect(rocCurve(neg, pos, 50).fpr.length).to.be.at.most(53);
  });

  it('summarizes with the sample standard deviation', () => {
    const s = summarize([1, 2, 3, 4]);
    expect(s.mean).to.equal(2.5);
    expect(s.std).to.be.closeTo(Math.sqrt(5 / 3), 1e-12);
    expect([s.min, s.max]).to.deep.equal([1, 4]);
  });
});
