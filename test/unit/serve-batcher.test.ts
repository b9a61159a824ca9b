// The service's micro-batcher with a stand-in model: who shares a call, in what order, and what fails.
import { expect } from 'chai';

import type { Detection } from '../../src/detect/index.js';
import type { ImageBatch } from '../../src/model/index.js';
import { Batcher, QueueFullError, bearerCheck } from '../../src/serve/index.js';

/** A model that labels each row with its first value, after `ms` milliseconds. */
function fakeModel(ms: number, calls: number[][]) {
  return async (batch: ImageBatch): Promise<Detection[]> => {
    const rows = batch.dims[0]!;
    const per = batch.data.length / rows;
    calls.push(Array.from({ length: rows }, (_, r) => batch.data[r * per]!));
    await new Promise((r) => setTimeout(r, ms));
    return Array.from({ length: rows }, (_, r) => ({
      label: batch.data[r * per]!,
      score: 0,
      attacked: false,
      threshold: 1,
    }));
  };
}

const rows = (...firsts: number[]) => Float32Array.from(firsts.flatMap((v) => [v, 0]));

describe('serve: Batcher', () => {
  it('gives each request its own rows back, in order, from one shared call', async () => {
    const calls: number[][] = [];
    const b = new Batcher(fakeModel(5, calls), { shape: [1, 1, 2], maxRows: 8, windowMs: 10, queueRows: 100 });
    const [a, c, d] = await Promise.all([b.submit(rows(1), 1), b.submit(rows(2, 3), 2), b.submit(rows(4), 1)]);
    expect(a.map((x) => x.label)).to.deep.equal([1]);
    expect(c.map((x) => x.label)).to.deep.equal([2, 3]);
    expect(d.map((x) => x.label)).to.deep.equal([4]);
    expect(calls).to.deep.equal([[1, 2, 3, 4]]);
  });

  it('without a window, goes at once when idle and batches what arrives while the model is busy', async () => {
    const calls: number[][] = [];
    const b = new Batcher(fakeModel(20, calls), { shape: [1, 1, 2], maxRows: 3, windowMs: 0, queueRows: 100 });
    await Promise.all([1, 2, 3, 4, 5, 6].map((v) => b.submit(rows(v), 1)));
    // 1 alone (the model was idle), then at most 3 rows a call.
    expect(calls).to.deep.equal([[1], [2, 3, 4], [5, 6]]);
  });

  it('fails every request of a failed call, refuses past the queue limit, and keeps working', async () => {
    let fail = true;
    const b = new Batcher(
      async (batch) => {
        if (fail) throw new Error('model broke');
        return fakeModel(0, [])(batch);
      },
      { shape: [1, 1, 2], maxRows: 8, windowMs: 5, queueRows: 3 },
    );
    const results = await Promise.allSettled([b.submit(rows(1), 1), b.submit(rows(2), 1), b.submit(rows(3, 4), 2)]);
    expect(results.map((r) => r.status)).to.deep.equal(['rejected', 'rejected', 'rejected']);
    expect((results[2] as PromiseRejectedResult).reason).to.be.instanceOf(QueueFullError);
    expect((results[0] as PromiseRejectedResult).reason.message).to.equal('model broke');
    fail = false;
    expect((await b.submit(rows(7), 1))[0]!.label).to.equal(7);
  });
});

describe('serve: bearerCheck', () => {
  it('accepts exactly "Bearer <token>"', () => {
    const ok = bearerCheck('s3cret');
    expect(ok('Bearer s3cret')).to.equal(true);
    for (const h of [undefined, '', 's3cret', 'Bearer s3cre', 'Bearer s3cret ', 'bearer s3cret', 'Basic s3cret'])
      expect(ok(h), String(h)).to.equal(false);
    expect(bearerCheck(undefined)(undefined)).to.equal(true);
    expect(() => bearerCheck('')).to.throw(RangeError);
  });
});
