// measureReadoutCost (nfp layers --cost): the timing itself depends on the machine, so these tests check
// what it measures (the readout detect() would build, the neurons it reads, the plain model it is
// compared with) and how it refuses bad requests; docs/results.md has the figures.
import { expect } from 'chai';
import { join } from 'node:path';

import { Classifier, evenlySpaced, measureReadoutCost } from '../../src/model/index.js';
import { packageRoot } from '../../src/paths.js';

import { TestRandom } from '../reference/random.js';

const cnn = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const fixturesDir = join(packageRoot, 'test', 'testdata', 'gradients');
const pool3 = '/features/pool3/MaxPool_output_0';
const quick = { batch: 4, rounds: 1, blockSeconds: 0.01 };

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('readout cost', () => {
  it('spreads the neurons it reads evenly over a layer, distinct and in range, all of a small layer', () => {
    expect([...evenlySpaced(10, 3)]).to.deep.equal([0, 3, 6]);
    expect([...evenlySpaced(1, 1)]).to.deep.equal([0]);
    expect([...evenlySpaced(5, 100)]).to.deep.equal([0, 1, 2, 3, 4]);
    expect([...evenlySpaced(4_000_000_000, 2)]).to.deep.equal([0, 2_000_000_000]);
    const rnd = new TestRandom(3);
    for (let t = 0; t < 200; t++) {
      const size = 1 + rnd.int(5000);
      const count = 1 + rnd.int(200);
      const ids = evenlySpaced(size, count);
      expect(ids.length).to.equal(Math.min(size, count));
      for (let i = 1; i < ids.length; i++) expect(ids[i]!).to.be.greaterThan(ids[i - 1]!);
      expect(ids[ids.length - 1]!).to.be.lessThan(size);
    }
  });

  it('times a readout of each layer against the plain model: the readout detect() builds, or the whole small layer', async () => {
    const dense = '/classifier/relu/Relu_output_0';
    const { layers: rows, together } = await measureReadoutCost(cnn, { ...quick, layers: [pool3, dense], neurons: 40 });
    expect(rows.map((r) => r.layers)).to.deep.equal([[pool3], [dense]]);
    // 40 of pool3's 1,152 neurons are gathered in the graph; 40 of the 128 of the dense ReLU are more than a
    // quarter of it, so (as detect() would) the layer is fetched whole. Together, 80 of 1,280 are gathered.
    expect(rows.map((r) => [r.layerNeurons, r.neurons, r.fetched, r.batch])).to.deep.equal([
      [1152, 40, 40, 4],
      [128, 40, 128, 4],
    ]);
    expect(together).to.not.equal(undefined);
    expect(together!.layers).to.deep.equal([pool3, dense]);
    expect([together!.layerNeurons, together!.neurons, together!.fetched]).to.deep.equal([1280, 80, 80]);
    for (const r of [...rows, together!]) {
      expect(r.plainMs).to.be.greaterThan(0);
      expect(r.readoutMs).to.be.greaterThan(0);
      expect(r.cost).to.be.closeTo(r.readoutMs / r.plainMs - 1, 1e-12);
    }
    const alone = await measureReadoutCost(cnn, { ...quick, layers: [pool3, dense], together: false });
    expect(alone.together).to.equal(undefined);
    expect((await measureReadoutCost(cnn, { ...quick, layers: [pool3] })).together).to.equal(undefined);
  });

  it('measures a channels-last model with a fixed batch and softmax output at its own batch', async () => {
    const zooLast = join(fixturesDir, 'mini-zoo-nhwc-b1.op13.onnx'); // [1, 31, 31, 3], probabilities
    const wide = await Classifier.load(zooLast, { taps: 'wide', tapSeed: 1 });
    const layers = wide.taps.map((t) => t.tensor).slice(0, 2);
    await wide.release();
    const { layers: rows, together } = await measureReadoutCost(zooLast, { ...quick, layers, neurons: 5 });
    expect(rows.map((r) => [r.batch, r.neurons])).to.deep.equal([
      [1, 5],
      [1, 5],
    ]);
    for (const r of [...rows, together!]) expect(Number.isFinite(r.cost)).to.equal(true);
  });

  it('reads what it says: the gathered neurons of the readout are the layer values at those positions', async () => {
    const ids = evenlySpaced(1152, 20);
    const readout = await Classifier.load(cnn, { taps: [pool3], readout: ids });
    const whole = await Classifier.load(cnn, { taps: [pool3] });
    try {
      const rnd = new TestRandom(5);
      const images = { data: rnd.floats(3 * 784, 0, 1), dims: [3, 1, 28, 28] };
      const full = await whole.run(images);
      let nonzero = 0;
      for await (const run of readout.runTaps(images)) {
        const m = run.taps.matrix();
        for (let r = 0; r < run.rows; r++)
          for (const n of ids) {
            expect(m[r * 1152 + n]).to.equal(full.activations[(run.start + r) * 1152 + n]);
            if (m[r * 1152 + n] !== 0) nonzero++;
          }
      }
      expect(nonzero).to.be.greaterThan(10);
    } finally {
      await Promise.all([readout.release(), whole.release()]);
    }
  });

  it('refuses an unknown layer, a bad count, an empty list and a repeated layer, naming them', async () => {
    expect((await rejection(measureReadoutCost(cnn, { ...quick, layers: ['/no/such/layer'] }))).message).to.include(
      '/no/such/layer',
    );
    expect((await rejection(measureReadoutCost(cnn, { ...quick, layers: [pool3], neurons: 0 }))).message).to.match(
      /neurons.*0/,
    );
    expect((await rejection(measureReadoutCost(cnn, { ...quick, layers: [pool3], batch: 1.5 }))).message).to.match(
      /batch/,
    );
    expect((await rejection(measureReadoutCost(cnn, { ...quick, layers: [] }))).message).to.match(/at least one layer/);
    // A batch too large to hold is refused before it is allocated (342,392 images of 784 values = 1 GiB).
    expect((await rejection(measureReadoutCost(cnn, { ...quick, layers: [pool3], batch: 400_000 }))).message).to.match(
      /at most 342392 images of 784 values .* received 400000/,
    );
    expect((await rejection(measureReadoutCost(cnn, { ...quick, layers: [pool3, pool3] }))).message).to.match(
      /distinct layers/,
    );
  });
});
