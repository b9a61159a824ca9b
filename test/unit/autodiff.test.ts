// Input gradients from the reverse-mode ONNX transform: against PyTorch autograd on the committed
// models (fixtures from scripts/gen_gradient_fixtures.py), against central finite differences
// for each vector-Jacobian rule on tiny one-op graphs, and clear errors for what is unsupported.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';
import * as ort from 'onnxruntime-node';

import { GradientModel, seededGradientBytes, GradientOutputs } from '../../src/autodiff/index.js';
import { GraphBuilder } from '../../src/autodiff/builder.js';
import { readNpy } from '../../src/data/index.js';
import { ModelProtoType } from '../../src/model/onnx-schema.js';
import { packageRoot } from '../../src/paths.js';
import { TestRandom } from '../reference/random.js';
import { BATCH, checkFiniteDifferences, float, int, ints, node, str, tinyModel } from '../reference/tiny-graph.js';

const fixturesDir = join(packageRoot, 'test', 'testdata', 'gradients');
const fixtureModels: Array<[string, string]> = [
  ['fmnist-cnn', join(packageRoot, 'models', 'fmnist-cnn.onnx')],
  ['fmnist-resnet', join(packageRoot, 'models', 'fmnist-resnet.onnx')],
  ['mini-resnet', join(fixturesDir, 'mini-resnet.onnx')],
  ['mini-mobilenet', join(fixturesDir, 'mini-mobilenet.onnx')],
  ['mini-vit', join(fixturesDir, 'mini-vit.onnx')],
  // Exported as model zoos publish them (scripts/gen_export_fixtures.py): opsets 11 and 13, an overlapping
  // max pool, hard-swish as HardSigmoid * x, LRN; the -nhwc-b1 ones channels-last, batch fixed at 1, softmax out.
  ...['mini-zoo.op11', 'mini-zoo.op13', 'mini-zoo-nhwc-b1.op11', 'mini-zoo-nhwc-b1.op13'].map(
    (name) => [name, join(fixturesDir, `${name}.onnx`)] as [string, string],
  ),
  // The trained ViT arrives separately; its fixtures are generated once both files exist.
  ...(existsSync(join(packageRoot, 'models', 'fmnist-vit.onnx')) &&
  existsSync(join(fixturesDir, 'fmnist-vit.grad_logit.npy'))
    ? [['fmnist-vit', join(packageRoot, 'models', 'fmnist-vit.onnx')] as [string, string]]
    : []),
];

function fixture(model: string, key: string): { data: Float32Array; dims: number[] } {
  const a = readNpy(join(fixturesDir, `${model}.${key}.npy`));
  if (a.dtype !== 'float32') throw new Error(`${model}.${key}: expected float32`);
  return { data: a.data, dims: a.dims };
}

/** Cosine similarity and max |a - b| / max |b|, in float64. */
function compare(got: Float32Array, want: Float32Array): { cosine: number; relative: number } {
  expect(got.length).to.equal(want.length);
  let dot = 0,
    gg = 0,
    ww = 0,
    worst = 0,
    scale = 0;
  for (let i = 0; i < want.length; i++) {
    dot += got[i]! * want[i]!;
    gg += got[i]! ** 2;
    ww += want[i]! ** 2;
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return { cosine: dot / Math.sqrt(gg * ww), relative: worst / scale };
}

function expectClose(got: Float32Array, want: Float32Array, what: string): void {
  const { cosine, relative } = compare(got, want);
  console.log(`      ${what}: cosine ${cosine.toFixed(9)}, max relative error ${relative.toExponential(2)}`);
  expect(cosine, `${what} cosine`).to.be.at.least(0.99999);
  expect(relative, `${what} max relative error`).to.be.at.most(1e-3);
}

describe('autodiff: input gradients vs PyTorch autograd', () => {
  for (const [name, path] of fixtureModels) {
    describe(name, () => {
      let model: GradientModel;
      before(async () => {
        model = await GradientModel.load(path, { taps: 'auto', batchSize: 3 }); // 4 images: two chunks
      });
      after(async () => model.release());

      it('logit seed: gradient equals autograd; logits and activations equal a plain forward run', async () => {
        const x = fixture(name, 'input');
        const out = await model.gradient(x, { logitSeed: fixture(name, 'logit_seed').data });
        expectClose(out.grad, fixture(name, 'grad_logit').data, `${name} logit seed`);
        const plain = await model.classifier.run(x);
        expect(compare(out.logits, plain.logits).relative).to.be.below(1e-5);
        expect(compare(out.activations, plain.activations).relative).to.be.below(1e-5);
        expect(out.loss).to.equal(undefined);
      });

      it('cross-entropy: gradient and per-image loss equal autograd', async () => {
        const labels = readNpy(join(fixturesDir, `${name}.labels.npy`));
        if (labels.dtype !== 'int32') throw new Error('labels: expected int32');
        const out = await model.gradient(fixture(name, 'input'), { labels: labels.data });
        expectClose(out.grad, fixture(name, 'grad_ce').data, `${name} cross-entropy`);
        expect(compare(out.loss!, fixture(name, 'ce_loss').data).relative).to.be.below(1e-5);
      });

      if (name.startsWith('mini-zoo'))
        it('logits (before a trailing softmax) equal PyTorch; layout, batch and output kind as exported', async () => {
          const x = fixture(name, 'input');
          const plain = await model.classifier.run(x);
          expect(compare(plain.logits, fixture(name, 'logits').data).relative).to.be.below(1e-5);
          const zoo = name.startsWith('mini-zoo-nhwc-b1');
          expect(model.layout).to.equal(zoo ? 'nhwc' : 'nchw');
          expect(model.inputShape).to.deep.equal(zoo ? [31, 31, 3] : [3, 31, 31]);
          expect(model.classifier.fixedBatch).to.equal(zoo ? 1 : undefined);
          expect(model.batchSize).to.equal(zoo ? 1 : 3);
          expect(model.outputKind).to.equal(zoo ? 'probabilities' : 'logits');
        });

      it('tap seed (penultimate features and logits): gradient equals autograd', async () => {
        const out = await model.gradient(fixture(name, 'input'), { tapSeed: fixture(name, 'tap_seed').data });
        expectClose(out.grad, fixture(name, 'grad_tap').data, `${name} tap seed`);
      });
    });
  }

  it('sums the seeds: logit seed + CE + tap seed equals the sum of the separate gradients', async () => {
    const [name, path] = fixtureModels[0]!;
    const model = await GradientModel.load(path, { taps: 'auto' });
    try {
      const x = fixture(name, 'input');
      const labels = readNpy(join(fixturesDir, `${name}.labels.npy`)).data as Int32Array;
      const both = await model.gradient(x, {
        logitSeed: fixture(name, 'logit_seed').data,
        labels,
        tapSeed: fixture(name, 'tap_seed').data,
      });
      const want = fixture(name, 'grad_logit').data.map(
        (v, i) => v + fixture(name, 'grad_ce').data[i]! + fixture(name, 'grad_tap').data[i]!,
      );
      expectClose(both.grad, want, 'all seeds');
    } finally {
      await model.release();
    }
  });

  it(
    'Carlini-Wagner margin: in-graph runner-up equals a logit seed e_label - e_runnerUp; margin values ' + 'match',
    async () => {
      const [name, path] = fixtureModels[1]!;
      const model = await GradientModel.load(path, { taps: 'auto' });
      try {
        const x = fixture(name, 'input');
        const labels = readNpy(join(fixturesDir, `${name}.labels.npy`)).data as Int32Array;
        const cw = await model.gradient(x, { marginLabels: labels });
        const k = cw.classes;
        const seed = new Float32Array(cw.rows * k);
        for (let r = 0; r < cw.rows; r++) {
          let best = -1;
          for (let c = 0; c < k; c++)
            if (c !== labels[r] && (best < 0 || cw.logits[r * k + c]! > cw.logits[r * k + best]!)) best = c;
          seed[r * k + labels[r]!] = 1;
          seed[r * k + best] = -1;
          expect(cw.margin![r]).to.be.closeTo(cw.logits[r * k + labels[r]!]! - cw.logits[r * k + best]!, 1e-4);
        }
        const viaSeed = await model.gradient(x, { logitSeed: seed });
        expectClose(cw.grad, viaSeed.grad, 'CW margin vs logit seed');
      } finally {
        await model.release();
      }
    },
  );

  it('leaves the activations out on request, with the same gradient, and builds the tap-seeded graph only when asked', async () => {
    const [name, path] = fixtureModels[0]!;
    const model = await GradientModel.load(path, { taps: 'auto' });
    try {
      const x = fixture(name, 'input');
      const labels = readNpy(join(fixturesDir, `${name}.labels.npy`)).data as Int32Array;
      const full = await model.gradient(x, { labels });
      const lean = await model.gradient(x, { labels, activations: false });
      expect(full.activations.length).to.equal(x.dims[0]! * model.neurons);
      expect(lean.activations.length).to.equal(0);
      expect([...lean.grad]).to.deep.equal([...full.grad]);
      expect([...lean.logits]).to.deep.equal([...full.logits]);
      expect([...(await model.logits(x))]).to.deep.equal([...(await model.classifier.run(x)).logits]);
      expect((await model.classifier.run(x, { activations: false })).activations.length).to.equal(0);
      // A zero tap seed (the tap-seeded graph) changes nothing.
      const zeroTaps = await model.gradient(x, { labels, tapSeed: new Float32Array(x.dims[0]! * model.neurons) });
      expectClose(zeroTaps.grad, full.grad, 'zero tap seed');
    } finally {
      await model.release();
    }
  });

  it('rejects seeds and labels of the wrong size', async () => {
    const [name, path] = fixtureModels[0]!;
    const model = await GradientModel.load(path, { taps: 'auto' });
    try {
      const x = fixture(name, 'input');
      await model.gradient(x, { logitSeed: new Float32Array(3) }).then(
        () => expect.fail('no error'),
        (e: Error) => expect(e.message).to.match(/40 values for logitSeed/),
      );
      await model.gradient(x, { labels: Int32Array.from([0, 1, 2, 10]) }).then(
        () => expect.fail('no error'),
        (e: Error) => expect(e.message).to.match(/labels in \[0, 10\).*10 at row 3/),
      );
    } finally {
      await model.release();
    }
  });
});

// Finite differences on tiny graphs (test/reference/tiny-graph.ts).

describe('autodiff: each rule against finite differences', () => {
  it('Sub and Div by broadcast constants', () =>
    checkFiniteDifferences({
      shape: [3, 5, 7],
      constants: { m: { dims: [3, 1, 1] }, s: { dims: [7], values: [0.5, -2, 3, 1.5, 0.25, 4, -1] } },
      nodes: [node('Sub', ['x', 'm'], ['a']), node('Div', ['a', 's'], ['y'])],
    }));

  it('Sub and Add with the data operand second; Mul by a broadcast constant', () =>
    checkFiniteDifferences({
      shape: [2, 3, 5],
      constants: { c: { dims: [1, 3, 1] }, k: { dims: [5] } },
      nodes: [node('Sub', ['c', 'x'], ['a']), node('Mul', ['a', 'k'], ['b']), node('Add', ['c', 'b'], ['y'])],
    }));

  it('Add of two data tensors with broadcasting (GlobalAveragePool + x), summed over consumers', () =>
    checkFiniteDifferences({
      shape: [3, 5, 7],
      nodes: [node('GlobalAveragePool', ['x'], ['p']), node('Add', ['p', 'x'], ['y'])],
    }));

  it('Mul and Div of data tensors: x / (x * x + 1)', () =>
    checkFiniteDifferences({
      shape: [4, 3],
      constants: { one: { dims: [], values: [1] } },
      nodes: [node('Mul', ['x', 'x'], ['sq']), node('Add', ['sq', 'one'], ['d']), node('Div', ['x', 'd'], ['y'])],
    }));

  it('Conv with groups, uneven strides, pads and dilations', () =>
    checkFiniteDifferences({
      shape: [4, 9, 11],
      constants: { w: { dims: [6, 2, 3, 2] }, bias: { dims: [6] } },
      nodes: [
        node(
          'Conv',
          ['x', 'w', 'bias'],
          ['y'],
          [ints('strides', [2, 3]), ints('pads', [1, 0, 2, 1]), ints('dilations', [2, 1]), int('group', 2)],
        ),
      ],
    }));

  it('depthwise Conv with stride 2 that drops a row (output_padding 1)', () =>
    checkFiniteDifferences({
      shape: [3, 10, 12],
      constants: { w: { dims: [3, 1, 3, 3] } },
      nodes: [
        node(
          'Conv',
          ['x', 'w'],
          ['y'],
          [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1]), int('group', 3)],
        ),
      ],
    }));

  it('stride-1 Conv (the flipped-weights Conv path) with groups, dilations and asymmetric pads', () =>
    checkFiniteDifferences({
      shape: [4, 7, 8],
      constants: { w: { dims: [6, 2, 3, 2] }, bias: { dims: [6] } },
      nodes: [
        node(
          'Conv',
          ['x', 'w', 'bias'],
          ['y'],
          [ints('pads', [2, 0, 1, 1]), ints('dilations', [1, 2]), int('group', 2)],
        ),
      ],
    }));

  it('Conv with auto_pad SAME_UPPER', () =>
    checkFiniteDifferences({
      shape: [2, 7, 6],
      constants: { w: { dims: [3, 2, 2, 3] } },
      nodes: [node('Conv', ['x', 'w'], ['y'], [str('auto_pad', 'SAME_UPPER'), ints('strides', [2, 2])])],
    }));

  it('Relu', () => checkFiniteDifferences({ shape: [3, 4, 5], nodes: [node('Relu', ['x'], ['y'])] }));

  it('Relu on 16 channels (the mask as tanh in a BatchNormalization, for the blocked layout)', () =>
    checkFiniteDifferences({
      shape: [16, 3, 4],
      nodes: [node('Relu', ['x'], ['y'])],
    }));

  it('stride-2 Conv with 16 input channels (ConvTranspose, then an identity AveragePool)', () =>
    checkFiniteDifferences({
      shape: [16, 7, 6],
      constants: { w: { dims: [8, 16, 3, 3] } },
      nodes: [node('Conv', ['x', 'w'], ['y'], [ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])])],
    }));

  it('Relu then MaxPool 2x2 (the mask applied on the pooled values), negative windows included', () =>
    checkFiniteDifferences({
      shape: [16, 6, 8],
      nodes: [
        node('Relu', ['x'], ['r']),
        node('MaxPool', ['r'], ['y'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
      ],
    }));

  it('Relu then MaxPool 3x3 stride 2 with padding (ResNet stem: the masked gradient routed to overlapping winners)', () =>
    checkFiniteDifferences({
      shape: [3, 9, 11],
      nodes: [
        node('Relu', ['x'], ['r']),
        node(
          'MaxPool',
          ['r'],
          ['y'],
          [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])],
        ),
      ],
    }));

  it('Relu read by a MaxPool and an Add (the Relu keeps its own mask)', () =>
    checkFiniteDifferences({
      shape: [2, 4, 4],
      nodes: [
        node('Relu', ['x'], ['r']),
        node('MaxPool', ['r'], ['p'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
        node('GlobalAveragePool', ['r'], ['a']),
        node('Add', ['p', 'a'], ['y']),
      ],
    }));

  it('MaxPool 3x3 stride 2 with overlapping windows and padding (ResNet stem)', () =>
    checkFiniteDifferences({
      shape: [3, 9, 11],
      nodes: [
        node(
          'MaxPool',
          ['x'],
          ['y'],
          [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])],
        ),
      ],
    }));

  it('MaxPool 2x2 stride 2 on odd sizes (non-overlapping windows: the MaxUnpool path)', () =>
    checkFiniteDifferences({
      shape: [3, 7, 9],
      nodes: [node('MaxPool', ['x'], ['y'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])])],
    }));

  it('MaxPool 2x3 stride 3 with padding (non-overlapping, MaxUnpool)', () =>
    checkFiniteDifferences({
      shape: [2, 8, 7],
      nodes: [
        node(
          'MaxPool',
          ['x'],
          ['y'],
          [ints('kernel_shape', [2, 3]), ints('strides', [3, 3]), ints('pads', [1, 0, 0, 1])],
        ),
      ],
    }));

  it('MaxPool 2x2 stride 2 with ceil_mode on odd sizes', () =>
    checkFiniteDifferences({
      shape: [2, 7, 5],
      nodes: [
        node('MaxPool', ['x'], ['y'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2]), int('ceil_mode', 1)]),
      ],
    }));

  it('Flatten, Gemm (transB, alpha) and Identity', () =>
    checkFiniteDifferences({
      shape: [2, 3, 4],
      constants: { w: { dims: [5, 24] }, bias: { dims: [5] } },
      nodes: [
        node('Flatten', ['x'], ['f'], [int('axis', 1)]),
        node('Gemm', ['f', 'w', 'bias'], ['g'], [float('alpha', 0.5), int('transB', 1)]),
        node('Identity', ['g'], ['y']),
      ],
    }));

  it('Flatten at axis 2 (batch and channels merged: back through the runtime shape)', () =>
    checkFiniteDifferences({
      shape: [2, 3, 4],
      constants: { w: { dims: [12, 5] }, to: { dims: [2], ints: [-1, 10] } },
      nodes: [
        node('Flatten', ['x'], ['f'], [int('axis', 2)]),
        node('MatMul', ['f', 'w'], ['m']),
        node('Reshape', ['m', 'to'], ['y']),
      ],
    }));

  it('Transpose and Gemm with transA (batch in the second axis)', () =>
    checkFiniteDifferences({
      shape: [6],
      constants: { w: { dims: [6, 4] } },
      nodes: [
        node('Transpose', ['x'], ['t'], [ints('perm', [1, 0])]),
        node('Gemm', ['t', 'w'], ['y'], [int('transA', 1), float('alpha', 2)]),
      ],
    }));

  it('Reshape (0 and -1) and MatMul by a constant matrix', () =>
    checkFiniteDifferences({
      shape: [3, 4, 5],
      constants: { to: { dims: [3], ints: [0, 4, -1] }, w: { dims: [15, 2] } },
      nodes: [node('Reshape', ['x', 'to'], ['r']), node('MatMul', ['r', 'w'], ['y'])],
    }));

  it('a small residual block: Conv, Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm', () =>
    checkFiniteDifferences({
      shape: [2, 8, 8],
      constants: {
        w1: { dims: [3, 2, 3, 3] },
        w2: { dims: [3, 3, 3, 3] },
        ws: { dims: [3, 2, 1, 1] },
        fc: { dims: [4, 3] },
      },
      nodes: [
        node(
          'MaxPool',
          ['x'],
          ['p'],
          [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])],
        ),
        node('Conv', ['p', 'w1'], ['c1'], [ints('pads', [1, 1, 1, 1])]),
        node('Conv', ['c1', 'w2'], ['c2'], [ints('pads', [1, 1, 1, 1])]),
        node('Conv', ['p', 'ws'], ['s']),
        node('Add', ['c2', 's'], ['a']),
        node('GlobalAveragePool', ['a'], ['g']),
        node('Flatten', ['g'], ['f']),
        node('Gemm', ['f', 'fc'], ['y'], [int('transB', 1)]),
      ],
    }));
});

describe('autodiff: attention, normalization and selection rules against finite differences', () => {
  it('MatMul of two data tensors (attention scores and values) with Softmax over the last axis', () =>
    checkFiniteDifferences({
      shape: [2, 3, 5], // [heads, tokens, head dim]
      constants: { c: { dims: [5], values: [3, -2, 4, 1, -5] } },
      nodes: [
        node('Mul', ['x', 'c'], ['q']),
        node('Transpose', ['x'], ['kt'], [ints('perm', [0, 1, 3, 2])]),
        node('MatMul', ['q', 'kt'], ['s']),
        node('Softmax', ['s'], ['a'], [int('axis', -1)]),
        node('MatMul', ['a', 'x'], ['y']),
      ],
    }));

  it('MatMul with a broadcast data operand, a constant stacked operand and a constant vector', () =>
    checkFiniteDifferences({
      shape: [2, 3, 4],
      constants: { w: { dims: [2, 4, 3] }, v: { dims: [3] } },
      nodes: [
        node('ReduceMean', ['x'], ['m'], [ints('axes', [1])]), // [N, 1, 3, 4]
        node('Transpose', ['x'], ['t'], [ints('perm', [0, 1, 3, 2])]), // [N, 2, 4, 3]
        node('MatMul', ['t', 'm'], ['p']), // [N, 2, 4, 4], m broadcast over axis 1
        node('MatMul', ['p', 'w'], ['r']), // [N, 2, 4, 3]
        node('MatMul', ['r', 'v'], ['y']), // [N, 2, 4]
      ],
    }));

  it('Softmax with opset 11 semantics (flattened tail from axis 1) and LogSoftmax', () =>
    checkFiniteDifferences({
      opset: 11,
      shape: [3, 4],
      constants: { c: { dims: [], values: [30] } },
      nodes: [
        node('Mul', ['x', 'c'], ['s']),
        node('Softmax', ['s'], ['a'], [int('axis', 1)]),
        node('LogSoftmax', ['s'], ['l'], [int('axis', 1)]),
        node('Add', ['a', 'l'], ['y']),
      ],
    }));

  it('LayerNormalization over the last axis and over the last two axes, with scale and bias', () =>
    checkFiniteDifferences({
      shape: [3, 7],
      constants: { sc: { dims: [7] }, bi: { dims: [7] }, sc2: { dims: [3, 7] }, bi2: { dims: [3, 7] } },
      nodes: [
        node('LayerNormalization', ['x', 'sc', 'bi'], ['n'], [float('epsilon', 1e-5)]),
        node('LayerNormalization', ['n', 'sc2', 'bi2'], ['y'], [int('axis', 1), float('epsilon', 1e-3)]),
      ],
    }));

  it('exact GELU as PyTorch exports it: x * 0.5 * (1 + erf(x / sqrt(2)))', () =>
    checkFiniteDifferences({
      shape: [5, 3],
      constants: {
        k: { dims: [], values: [40] },
        r2: { dims: [], values: [Math.SQRT2] },
        one: { dims: [], values: [1] },
        half: { dims: [], values: [0.5] },
      },
      nodes: [
        node('Mul', ['x', 'k'], ['s']),
        node('Div', ['s', 'r2'], ['d']),
        node('Erf', ['d'], ['e']),
        node('Add', ['e', 'one'], ['p']),
        node('Mul', ['s', 'p'], ['m']),
        node('Mul', ['m', 'half'], ['y']),
      ],
    }));

  it('Sqrt, Pow (2, 1.5 and a broadcast exponent tensor), Sigmoid, Tanh, Exp, Neg', () =>
    checkFiniteDifferences({
      shape: [2, 5],
      constants: {
        one: { dims: [], values: [1] },
        two: { dims: [], values: [2] },
        p: { dims: [], values: [1.5] },
        k: { dims: [], values: [10] },
        pv: { dims: [2, 1], values: [2, 3] },
      },
      nodes: [
        node('Pow', ['x', 'two'], ['sq']),
        node('Add', ['sq', 'one'], ['q']),
        node('Sqrt', ['q'], ['r']),
        node('Pow', ['q', 'p'], ['r2']),
        node('Mul', ['x', 'k'], ['xs']),
        node('Sigmoid', ['xs'], ['sg']),
        node('Tanh', ['xs'], ['th']),
        node('Exp', ['x'], ['ex']),
        node('Neg', ['ex'], ['ne']),
        node('Sum', ['r', 'r2', 'sg', 'th'], ['u']),
        node('Mul', ['u', 'ne'], ['v']),
        node('Pow', ['v', 'pv'], ['y']),
      ],
    }));

  it('Clip with min and max inputs, and with max only', () =>
    checkFiniteDifferences({
      shape: [4, 5],
      constants: { lo: { dims: [], values: [-0.1] }, hi: { dims: [], values: [0.12] } },
      nodes: [
        node('Clip', ['x', 'lo', 'hi'], ['c']),
        node('Clip', ['x', '', 'hi'], ['d']),
        node('Mul', ['c', 'd'], ['y']),
      ],
    }));

  // Finite differences cannot see the bounds themselves: PyTorch's clamp backward passes the
  // gradient at x == min and x == max and not for NaN ((x >= min) & (x <= max)).
  for (const opset of [11, 17]) {
    it(`Clip at its bounds${opset >= 12 ? ' and for NaN' : ''} (opset ${opset}): gradient as PyTorch's clamp backward`, async () => {
      const x = Float32Array.from([-1, -0.5, 0, 0.5, 1, opset >= 12 ? NaN : 0.25]);
      const bytes = tinyModel(
        {
          shape: [3],
          opset,
          constants: { lo: { dims: [], values: [-0.5] }, hi: { dims: [], values: [0.5] } },
          nodes: [node('Clip', ['x', 'lo', 'hi'], ['y'])],
        },
        new TestRandom(1),
      );
      const { bytes: gradBytes, seedInputs } = await seededGradientBytes(bytes, { inputShape: [3], tensors: ['y'] });
      const session = await ort.InferenceSession.create(gradBytes);
      const result = await session.run({
        x: new ort.Tensor('float32', x, [BATCH, 3]),
        [seedInputs[0]!]: new ort.Tensor('float32', new Float32Array(6).fill(1), [BATCH, 3]),
      });
      await session.release();
      expect(Array.from(result[GradientOutputs.grad]!.data as Float32Array)).to.deep.equal([
        0,
        1,
        1,
        1,
        0,
        opset >= 12 ? 0 : 1,
      ]);
    });
  }

  it('Concat of data tensors (one used twice), and Split with sizes and an unused part', () =>
    checkFiniteDifferences({
      shape: [3, 5],
      constants: { sizes: { dims: [3], ints: [3, 4, 8] } },
      nodes: [
        node('Mul', ['x', 'x'], ['sq']),
        node('Concat', ['x', 'sq', 'x'], ['cat'], [int('axis', -1)]), // [N, 3, 15]
        node('Split', ['cat', 'sizes'], ['p0', 'p1', 'p2'], [int('axis', 2)]),
        node('Concat', ['p0', 'p2'], ['y'], [int('axis', 2)]),
      ],
    }));

  it('Slice with unit, stride-2, negative-step and clamped bounds on odd sizes', () =>
    checkFiniteDifferences({
      shape: [5, 7, 3],
      constants: {
        st: { dims: [3], ints: [1, -1, 0] },
        en: { dims: [3], ints: [4, -100, 1000] },
        ax: { dims: [3], ints: [1, 2, 3] },
        sp: { dims: [3], ints: [2, -3, 1] },
        st2: { dims: [1], ints: [1] },
        en2: { dims: [1], ints: [3] },
        ax2: { dims: [1], ints: [2] },
      },
      nodes: [
        node('Slice', ['x', 'st', 'en', 'ax', 'sp'], ['s']),
        node('Slice', ['s', 'st2', 'en2', 'ax2'], ['s2']),
        node('Mul', ['s2', 's2'], ['y']),
      ],
    }));

  it('Gather of a class token (scalar index) and of repeated, negative indices', () =>
    checkFiniteDifferences({
      shape: [5, 4],
      constants: { cls: { dims: [], ints: [0] }, idx: { dims: [2, 2], ints: [3, -1, 3, 0] } },
      nodes: [
        node('Gather', ['x', 'cls'], ['t'], [int('axis', 1)]),
        node('Gather', ['x', 'idx'], ['g'], [int('axis', 2)]),
        node('Mul', ['g', 'g'], ['gg']),
        node('ReduceSum', ['gg'], ['s'], [ints('axes', [1])]),
        node('Flatten', ['s'], ['f']),
        node('Mul', ['f', 't'], ['y']),
      ],
      opset: 11,
    }));

  it('ReduceMean (axes attribute) and ReduceSum (axes input), opset 17', () =>
    checkFiniteDifferences({
      shape: [3, 4, 5],
      constants: { ax: { dims: [2], ints: [1, -1] }, ax2: { dims: [1], ints: [3] } },
      nodes: [
        node('ReduceMean', ['x'], ['m'], [ints('axes', [1])]),
        node('Mul', ['m', 'm'], ['mm']),
        node('ReduceSum', ['mm', 'ax2'], ['r']),
        node('ReduceSum', ['x', 'ax'], ['s']),
        node('Mul', ['s', 'r'], ['y']),
      ],
    }));

  it('ReduceMean and ReduceSum with keepdims 0 (an INT attribute of value 0)', () =>
    checkFiniteDifferences({
      shape: [3, 4, 5],
      nodes: [
        node('ReduceMean', ['x'], ['m'], [ints('axes', [1]), int('keepdims', 0)]),
        node('Mul', ['m', 'm'], ['mm']),
        node('ReduceSum', ['mm'], ['y'], [ints('axes', [-1]), int('keepdims', 0)]),
      ],
      opset: 12,
    }));

  it('ReduceMean with axes as an input (opset 18)', () =>
    checkFiniteDifferences({
      opset: 18,
      shape: [3, 4],
      constants: { ax: { dims: [1], ints: [-1] } },
      nodes: [node('ReduceMean', ['x', 'ax'], ['m'], [int('keepdims', 1)]), node('Mul', ['m', 'x'], ['y'])],
    }));

  it('BatchNormalization (inference) and AveragePool with pads, count_include_pad 0 and 1, ceil_mode', () =>
    checkFiniteDifferences({
      shape: [3, 7, 6],
      constants: { sc: { dims: [3] }, bi: { dims: [3] }, mu: { dims: [3] }, va: { dims: [3], values: [0.5, 1.5, 2] } },
      nodes: [
        node('BatchNormalization', ['x', 'sc', 'bi', 'mu', 'va'], ['b'], [float('epsilon', 1e-3)]),
        node(
          'AveragePool',
          ['b'],
          ['p'],
          [ints('kernel_shape', [3, 2]), ints('strides', [2, 2]), ints('pads', [1, 0, 1, 1]), int('ceil_mode', 1)],
        ), // count_include_pad 0: the default
        node(
          'AveragePool',
          ['b'],
          ['q'],
          [
            ints('kernel_shape', [3, 3]),
            ints('strides', [2, 1]),
            ints('pads', [1, 1, 0, 1]),
            int('count_include_pad', 1),
          ],
        ),
        node('AveragePool', ['b'], ['r'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2]), int('ceil_mode', 1)]),
        node('ReduceSum', ['p'], ['ps'], [ints('axes', [2, 3])]),
        node('ReduceSum', ['q'], ['qs'], [ints('axes', [2, 3])]),
        node('ReduceSum', ['r'], ['rs'], [ints('axes', [2, 3])]),
        node('Mul', ['ps', 'qs'], ['pq']),
        node('Mul', ['pq', 'rs'], ['y']),
      ],
      opset: 12,
    }));

  it('AveragePool 3x3 stride 2 with count_include_pad 1 and ceil_mode (window past the padded edge)', () =>
    checkFiniteDifferences({
      shape: [2, 8, 7],
      nodes: [
        node(
          'AveragePool',
          ['x'],
          ['y'],
          [
            ints('kernel_shape', [3, 3]),
            ints('strides', [2, 2]),
            ints('pads', [1, 1, 1, 1]),
            int('count_include_pad', 1),
            int('ceil_mode', 1),
          ],
        ),
      ],
    }));

  it('Expand, Where with a constant condition, Cast float -> float and constant-mode Pad', () =>
    checkFiniteDifferences({
      shape: [3, 1, 4],
      constants: {
        to: { dims: [3], ints: [3, 5, 4] },
        pads: { dims: [8], ints: [0, 1, 0, 2, 0, 0, 3, 1] },
        cv: { dims: [], values: [0.5] },
      },
      nodes: [
        node('Expand', ['x', 'to'], ['e']), // [N, 3, 5, 4]
        node('Mul', ['e', 'e'], ['ee']),
        {
          name: 't/cond',
          opType: 'Constant',
          input: [],
          output: ['cond'],
          attribute: [
            { name: 'value', type: 4, t: { name: 'cond', dims: [5, 1], dataType: 9, int32Data: [1, 0, 1, 1, 0] } },
          ],
        },
        node('Where', ['cond', 'ee', 'x'], ['w']),
        node('Cast', ['w'], ['f'], [int('to', 1)]),
        node('Pad', ['f', 'pads', 'cv'], ['p']),
        node('Mul', ['p', 'p'], ['y']),
      ],
    }));
});

describe('autodiff: batch axis not first and shape arithmetic (torchvision attention exports)', () => {
  // x [N, 4, 6] -> tokens first [4, N, 6] -> [4, 2N, 3] (a batch-dependent target computed from
  // Shape) -> Slice of the last axis with bounds computed from Shape(x) (batch-independent) ->
  // Softmax -> back to [4, N, 4] -> [N, 4, 4]. The probe must record shapes whose leading axis is not
  // the batch, and the Slice must see its computed bounds as the constants they are.
  it('differentiates through it, as finite differences say', () =>
    checkFiniteDifferences({
      shape: [4, 6],
      constants: {
        one: { dims: [1], ints: [1] },
        two: { dims: [1], ints: [2] },
        four: { dims: [1], ints: [4] },
        three: { dims: [1], ints: [3] },
        lastAxis: { dims: [1], ints: [2] },
      },
      nodes: [
        node('Transpose', ['x'], ['t'], [ints('perm', [1, 0, 2])]),
        node('Shape', ['t'], ['st']),
        node('Gather', ['st', 'one'], ['n']),
        node('Mul', ['n', 'two'], ['n2']),
        node('Concat', ['four', 'n2', 'three'], ['target'], [int('axis', 0)]),
        node('Reshape', ['t', 'target'], ['r']),
        node('Shape', ['x'], ['sx']),
        node('Gather', ['sx', 'lastAxis'], ['d']),
        node('Div', ['d', 'two'], ['half']),
        node('Sub', ['half', 'two'], ['start']),
        node('Slice', ['r', 'start', 'half', 'lastAxis'], ['sl']),
        node('Softmax', ['sl'], ['sm'], [int('axis', -1)]),
        node('Concat', ['four', 'n', 'four'], ['back'], [int('axis', 0)]),
        node('Reshape', ['sm', 'back'], ['rb']),
        node('Transpose', ['rb'], ['y'], [ints('perm', [1, 0, 2])]),
      ],
    }));
});

describe('autodiff: the ReLU mask at its edges', () => {
  // 3 channels: Greater and Where; 16: tanh(2^127 y) in a BatchNormalization (the blocked-layout form).
  for (const channels of [3, 16]) {
    it(`passes the gradient for every positive activation and none at zero (${channels} channels)`, async () => {
      const values = [0, -0, 1e-36, 1e-30, 1e-10, 3, 3e38, Infinity, -1e-30, -5, -Infinity];
      const rows = Math.ceil(values.length / channels);
      const x = new Float32Array(rows * channels).fill(-1);
      x.set(values);
      const bytes = tinyModel({ shape: [channels, 1, 1], nodes: [node('Relu', ['x'], ['y'])] }, new TestRandom(1));
      const { bytes: gradBytes, seedInputs } = await seededGradientBytes(bytes, {
        inputShape: [channels, 1, 1],
        tensors: ['y'],
      });
      const session = await ort.InferenceSession.create(gradBytes);
      const dims = [rows, channels, 1, 1];
      const result = await session.run({
        x: new ort.Tensor('float32', x, dims),
        [seedInputs[0]!]: new ort.Tensor('float32', new Float32Array(x.length).fill(2), dims),
      });
      await session.release();
      const grad = Array.from(result[GradientOutputs.grad]!.data as Float32Array);
      expect(grad).to.deep.equal(Array.from(x, (v) => (v > 0 ? 2 : 0)));
    });
  }
});

describe('autodiff: a Relu before a MaxPool, with its output seeded too', () => {
  it("keeps the Relu's own mask for the seed at its output", async () => {
    // x [N, 1, 2, 4] -> r = relu(x) -> y = maxpool 2x2 -> [N, 1, 1, 2]; seeds at r and y.
    const rnd = new TestRandom(3);
    const bytes = tinyModel(
      {
        shape: [1, 2, 4],
        nodes: [
          node('Relu', ['x'], ['r']),
          node('MaxPool', ['r'], ['y'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
        ],
      },
      rnd,
    );
    const { bytes: gradBytes, seedInputs } = await seededGradientBytes(bytes, {
      inputShape: [1, 2, 4],
      tensors: ['y', 'r'],
    });
    const session = await ort.InferenceSession.create(gradBytes);
    const x = Float32Array.from([
      0.5, -1, 2, -0.25, -3, 0.75, -2, 1.5, /* image 2: one window all negative */ -1, -2, 0.5, 4, -3, -4, 1, -0.5,
    ]);
    const seedY = Float32Array.from([10, 20, 30, 40]);
    const seedR = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const result = await session.run({
      x: new ort.Tensor('float32', x, [2, 1, 2, 4]),
      [seedInputs[0]!]: new ort.Tensor('float32', seedY, [2, 1, 1, 2]),
      [seedInputs[1]!]: new ort.Tensor('float32', seedR, [2, 1, 2, 4]),
    });
    await session.release();
    // Windows (row-major 2x4 image, 2x2 windows): image 1 winners 0.75 (index 5) and 2 (index 2);
    // image 2: left window all negative (winner -1 at index 8, masked), right winner 4 (index 11).
    const want = Array.from(x, (v, i) => (v > 0 ? seedR[i]! : 0));
    want[5]! += 10;
    want[2]! += 20;
    want[11]! += 40;
    expect(Array.from(result[GradientOutputs.grad]!.data as Float32Array)).to.deep.equal(want);
  });
});

describe('autodiff: graph builder', () => {
  const empty = { node: [{ name: 'f', opType: 'Relu', input: ['x'], output: ['a'] }] };

  it('places hoisted nodes (forward tensors only) before the backward nodes', () => {
    const b = new GraphBuilder(empty, 17);
    const late = b.op('Neg', ['a']);
    const early = b.hoist(() => b.op('Greater', ['a', b.float([0], [])]));
    b.op('Where', [early, late, b.float([0], [])]);
    const graph = ModelProtoType.decode(b.encode()).toJSON() as { graph: { node: Array<{ opType: string }> } };
    expect(graph.graph.node.map((n) => n.opType)).to.deep.equal(['Greater', 'Neg', 'Where']);
  });

  it('refuses to hoist a node that reads a backward tensor', () => {
    const b = new GraphBuilder(empty, 17);
    const late = b.op('Neg', ['a']);
    expect(() => b.hoist(() => b.op('Relu', [late]))).to.throw(/hoisted Relu reads .*a backward tensor/);
    b.op('Abs', [late]); // the builder leaves hoisting mode after the throw
    const graph = ModelProtoType.decode(b.encode()).toJSON() as { graph: { node: Array<{ opType: string }> } };
    expect(graph.graph.node.map((n) => n.opType)).to.deep.equal(['Neg', 'Abs']);
  });
});

describe('autodiff: errors', () => {
  it('an op without a rule names the op and the node', async () => {
    const bytes = tinyModel(
      {
        shape: [3],
        nodes: [node('Relu', ['x'], ['r']), { name: 'my/hardmax', opType: 'Hardmax', input: ['r'], output: ['y'] }],
      },
      new TestRandom(1),
    );
    await seededGradientBytes(bytes, { inputShape: [3], tensors: ['y'] }).then(
      () => expect.fail('no error'),
      (e: Error) => {
        expect(e.name).to.equal('GradientError');
        expect(e.message).to.include('Hardmax').and.to.include("'my/hardmax'");
      },
    );
  });

  it('an op without a rule off the path to the seeded output is fine', async () => {
    const bytes = tinyModel(
      { shape: [3], nodes: [node('Hardmax', ['x'], ['unused']), node('Relu', ['x'], ['y'])] },
      new TestRandom(1),
    );
    const { bytes: grad } = await seededGradientBytes(bytes, { inputShape: [3], tensors: ['y'] });
    expect(grad.length).to.be.above(bytes.length);
  });

  it('a model below opset 7 (older than ONNX Runtime runs) is refused, its opset named', async () => {
    const bytes = tinyModel({ opset: 6, shape: [3], nodes: [node('Relu', ['x'], ['y'])] }, new TestRandom(1));
    await seededGradientBytes(bytes, { inputShape: [3], tensors: ['y'] }).then(
      () => expect.fail('no error'),
      (e: Error) => expect(e.message).to.match(/opset >= 7.*imports opset 6/),
    );
  });

  it('Conv whose weights depend on the input is refused with the node named', async () => {
    const bytes = tinyModel({ shape: [1, 3, 3], nodes: [node('Conv', ['x', 'x'], ['y'])] }, new TestRandom(1));
    await seededGradientBytes(bytes, { inputShape: [1, 3, 3], tensors: ['y'] }).then(
      () => expect.fail('no error'),
      (e: Error) => expect(e.message).to.match(/Conv node 't\/Conv_y': input 1 \('x'\) depends on the model input/),
    );
  });
});
