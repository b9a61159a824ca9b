// Models as zoos publish them: channels-last inputs (detected or declared), a fixed batch size, a
// probability or log-probability output (the logits taken before it), float16 and integer inputs
// refused by name; and images in either layout through the loaders, the classifier and the attacks.
import { join } from 'node:path';

import { expect } from 'chai';

import { GradientModel } from '../../src/autodiff/index.js';
import { PGD, Square } from '../../src/attacks/index.js';
import { imagesForModel, loadFashionMnist, readNpy, toLayout } from '../../src/data/index.js';
import type { ImageBatch } from '../../src/data/index.js';
import { Classifier, detectLayout } from '../../src/model/index.js';
import { ModelProtoType } from '../../src/model/onnx-schema.js';
import { packageRoot } from '../../src/paths.js';

const fixturesDir = join(packageRoot, 'test', 'testdata', 'gradients');
const zoo = join(fixturesDir, 'mini-zoo.op13.onnx'); // [N, 3, 31, 31], logits
const zooLast = join(fixturesDir, 'mini-zoo-nhwc-b1.op13.onnx'); // [1, 31, 31, 3], probabilities

function images(): ImageBatch {
  const a = readNpy(join(fixturesDir, 'mini-zoo.op13.input.npy'));
  return { data: a.data as Float32Array, dims: a.dims as ImageBatch['dims'] };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).to.equal(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** x [N, 1, 2, 2] -> Flatten -> Gemm (3 classes) -> `head`, with the input's element type `elemType`. */
function tinyClassifier(head: 'Softmax' | 'LogSoftmax' | 'none', elemType = 1, outputType = 1): Uint8Array {
  const image = {
    tensorType: {
      elemType,
      shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }, { dimValue: 2 }, { dimValue: 2 }] },
    },
  };
  const nodes = [
    { name: 'flat', opType: 'Flatten', input: ['x'], output: ['f'] },
    { name: 'fc', opType: 'Gemm', input: ['f', 'w'], output: [head === 'none' ? 'y' : 'z'], attribute: [] },
    ...(head === 'none' ? [] : [{ name: 'head', opType: head, input: ['z'], output: ['y'] }]),
  ];
  return ModelProtoType.encode(
    ModelProtoType.fromObject({
      irVersion: 8,
      opsetImport: [{ version: 13 }],
      graph: {
        name: 'tiny',
        node: nodes,
        initializer: [{ name: 'w', dims: [4, 3], dataType: 1, floatData: [1, -2, 3, 0.5, 1, -1, 2, 0, 1, -1, 1, 2] }],
        input: [{ name: 'x', type: image }],
        output: [{ name: 'y', type: { tensorType: { elemType: outputType } } }],
      },
    }),
  ).finish();
}

describe('model signatures: layout, batch, output kind, element types', () => {
  it('detects the layout from the declared shape', () => {
    expect(detectLayout([3, 224, 224])).to.equal('nchw');
    expect(detectLayout([224, 224, 3])).to.equal('nhwc');
    expect(detectLayout([28, 28, 1])).to.equal('nhwc');
    expect(detectLayout([1, 28, 28])).to.equal('nchw');
    expect(detectLayout(['h', 'w', 3])).to.equal('nhwc');
    expect(detectLayout([3, 3, 3])).to.equal('nchw'); // ambiguous: channels first unless told
    expect(detectLayout(['c', 'h', 'w'])).to.equal('nchw');
  });

  it('a channels-last model with a fixed batch of 1 and softmax output gives the same logits as the plain one', async () => {
    const plain = await Classifier.load(zoo, { taps: [] });
    const last = await Classifier.load(zooLast, { taps: [], batchSize: 3 });
    try {
      expect(last.layout).to.equal('nhwc');
      expect(last.inputShape).to.deep.equal([31, 31, 3]);
      expect(last.fixedBatch).to.equal(1);
      expect(last.batchSize).to.equal(1); // the model's own batch size wins over the asked 3
      expect(last.outputKind).to.equal('probabilities');
      expect(plain.outputKind).to.equal('logits');
      const x = images();
      const a = await plain.run(x);
      const b = await last.run(toLayout(x, 'nchw', 'nhwc'));
      expect(maxAbsDiff(a.logits, b.logits)).to.be.below(1e-5);
      expect([...b.labels]).to.deep.equal([...a.labels]);
      // NCHW images for a channels-last model: refused with both shapes named, accepted through imagesForModel.
      await last.run(x).then(
        () => expect.fail('no error'),
        (e: Error) => expect(e.message).to.match(/Expected input of shape \[N, 31, 31, 3\] \(NHWC\).*\[4, 3, 31, 31\]/),
      );
      const converted = imagesForModel(x, last.inputShape, last.layout);
      expect(maxAbsDiff((await last.run(converted)).logits, a.logits)).to.be.below(1e-5);
      expect(() => imagesForModel({ data: new Float32Array(4 * 31 * 31), dims: [4, 1, 31, 31] }, [31, 31, 3], 'nhwc'))
        .to.throw(RangeError)
        .with.property('message')
        .that.matches(/\[N, 31, 31, 3\].*\[N, 3, 31, 31\].*\[4, 1, 31, 31\]/);
      // An empty batch and a batch that is not a multiple of the fixed size.
      expect((await last.run({ data: new Float32Array(0), dims: [0, 31, 31, 3] })).rows).to.equal(0);
    } finally {
      await plain.release();
      await last.release();
    }
  });

  it('a readout of a few neurons on a channels-last, fixed-batch, softmax model: runTaps holds exactly those', async () => {
    // The logits are not a graph output here (a Softmax follows), the batch is padded to the model's 1, and
    // the tapped layers are channels-last: what a readout must get right beyond the CNN.
    const whole = await Classifier.load(zooLast, { taps: 'wide', tapSeed: 1 });
    const wanted = Uint32Array.from(new Set([0, 7, Math.floor(whole.neurons / 2), whole.neurons - 1]));
    const read = await Classifier.load(zooLast, { taps: 'wide', tapSeed: 1, readout: wanted });
    try {
      expect(read.fetchedPerImage).to.be.at.most(wanted.length + whole.classes);
      const x = toLayout(images(), 'nchw', 'nhwc');
      const all = await whole.run(x);
      const rows: number[] = [];
      for await (const run of read.runTaps(x)) {
        expect(Array.from(run.labels)).to.deep.equal(Array.from(all.labels.subarray(run.start, run.start + run.rows)));
        const m = run.taps.matrix();
        for (let r = 0; r < run.rows; r++)
          for (const n of wanted)
            expect(m[r * read.neurons + n]).to.equal(all.activations[(run.start + r) * whole.neurons + n]);
        rows.push(run.rows);
      }
      expect(rows.reduce((a, b) => a + b, 0)).to.equal(x.dims[0]);
      // run() on the readout classifier still returns every neuron (its full session made on demand).
      expect(Buffer.from((await read.run(x)).activations.buffer).equals(Buffer.from(all.activations.buffer))).to.equal(
        true,
      );
    } finally {
      await Promise.all([whole.release(), read.release()]);
    }
  });

  it('the layout can be declared: the channels-first model read as channels-last is refused by shape', async () => {
    const forced = await Classifier.load(zooLast, { taps: [], layout: 'nhwc' });
    expect(forced.layout).to.equal('nhwc');
    await forced.release();
  });

  it('a trailing Softmax or LogSoftmax: the logits are its input', async () => {
    const x = { data: Float32Array.from([0.5, -1, 2, 0.25, 1, 1, -1, 0]), dims: [2, 1, 2, 2] };
    // logits = x W (W [4, 3]): row 0 = [0.5*1 - 1*0.5 + 2*2 + 0.25*(-1), ...]
    const w = [1, -2, 3, 0.5, 1, -1, 2, 0, 1, -1, 1, 2];
    const want = new Float32Array(6);
    for (let r = 0; r < 2; r++)
      for (let c = 0; c < 3; c++) for (let k = 0; k < 4; k++) want[r * 3 + c]! += x.data[r * 4 + k]! * w[k * 3 + c]!;
    for (const [head, kind] of [
      ['Softmax', 'probabilities'],
      ['LogSoftmax', 'log-probabilities'],
      ['none', 'logits'],
    ] as const) {
      const model = await Classifier.load(tinyClassifier(head), { taps: [head === 'none' ? 'y' : 'z'] });
      try {
        expect(model.outputKind).to.equal(kind);
        const out = await model.run(x);
        expect(maxAbsDiff(out.logits, want)).to.be.below(1e-5);
        expect(maxAbsDiff(out.activations, want)).to.be.below(1e-5); // the 'logits' tap too
      } finally {
        await model.release();
      }
    }
  });

  it('float16 and integer inputs, and float16 outputs, are refused naming the input or output', async () => {
    await Classifier.load(tinyClassifier('none', 10)).then(
      () => expect.fail('no error'),
      (e: Error) => expect(e.message).to.match(/input 'x' is float16; nfp runs float32 models only/),
    );
    await Classifier.load(tinyClassifier('none', 2)).then(
      () => expect.fail('no error'),
      (e: Error) => expect(e.message).to.match(/input 'x' takes uint8 values; nfp feeds float32 images/),
    );
    await Classifier.load(tinyClassifier('none', 1, 10)).then(
      () => expect.fail('no error'),
      (e: Error) => expect(e.message).to.match(/output 'y' is float16/),
    );
  });

  it("the loaders' channels-first images go to a channels-last model transposed", () => {
    const nchw = loadFashionMnist({ split: 'test' });
    const nhwc = imagesForModel(nchw, [28, 28, 1], 'nhwc');
    expect(nhwc.dims).to.deep.equal([10000, 28, 28, 1]);
    expect(imagesForModel(nhwc, [28, 28, 1], 'nhwc')).to.equal(nhwc); // already the model's: as it is
    expect(() => imagesForModel(nchw, [28, 28, 3], 'nhwc')).to.throw(/\[N, 28, 28, 3\].*received \[10000, 1, 28, 28\]/);
    expect(maxAbsDiff(nhwc.data, nchw.data)).to.equal(0); // one channel: the same bytes
    const x = images();
    const back = toLayout(toLayout(x, 'nchw', 'nhwc'), 'nhwc', 'nchw');
    expect(back.dims).to.deep.equal(x.dims);
    expect(maxAbsDiff(back.data, x.data)).to.equal(0);
    const last = toLayout(x, 'nchw', 'nhwc');
    // pixel (image 1, channel 2, row 5, column 7)
    expect(last.data[((1 * 31 + 5) * 31 + 7) * 3 + 2]).to.equal(x.data[((1 * 3 + 2) * 31 + 5) * 31 + 7]);
  });
});

describe('gradients and attacks on a channels-last model with a fixed batch', () => {
  it("the gradient is the channels-first model's, transposed", async () => {
    const first = await GradientModel.load(zoo, { taps: [] });
    const last = await GradientModel.load(zooLast, { taps: [] });
    try {
      const x = images();
      const labels = Int32Array.from([0, 1, 2, 3]);
      const a = await first.gradient(x, { labels });
      const b = await last.gradient(toLayout(x, 'nchw', 'nhwc'), { labels });
      const back = toLayout({ data: b.grad, dims: [4, 31, 31, 3] }, 'nhwc', 'nchw');
      const scale = a.grad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(maxAbsDiff(back.data, a.grad) / scale).to.be.below(1e-4);
      expect(maxAbsDiff(b.loss!, a.loss!)).to.be.below(1e-5);
    } finally {
      await first.release();
      await last.release();
    }
  });

  for (const [name, make] of [
    ['PGD (no random start)', () => new PGD({ eps: 0.05, steps: 5, randomStart: false })],
    ['Square', () => new Square({ eps: 0.05, queries: 30 })],
  ] as const) {
    it(`${name}: the channels-first model's adversarial images, in the model's layout`, async () => {
      const first = await GradientModel.load(zoo, { taps: [] });
      const last = await GradientModel.load(zooLast, { taps: [] });
      try {
        const x = images();
        const labels = Int32Array.from([0, 1, 2, 3]);
        const a = await make().run(first, x, { labels, seed: 5 });
        const b = await make().run(last, toLayout(x, 'nchw', 'nhwc'), { labels, seed: 5 });
        expect(b.dims).to.deep.equal([4, 31, 31, 3]);
        const back = toLayout({ data: b.adv, dims: b.dims as ImageBatch['dims'] }, 'nhwc', 'nchw');
        // Signs of gradients within rounding of zero may differ between the two graphs: nearly every pixel agrees.
        let same = 0;
        for (let i = 0; i < a.adv.length; i++) if (Math.abs(back.data[i]! - a.adv[i]!) < 1e-6) same++;
        expect(same / a.adv.length).to.be.above(0.99);
        expect([...b.success]).to.deep.equal([...a.success]);
      } finally {
        await first.release();
        await last.release();
      }
    });
  }
});
