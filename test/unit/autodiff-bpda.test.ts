// The smooth ReLU backward (BPDA, reluSurrogate): each Relu's step replaced by sigmoid(x / T) in the
// backward pass only. On graphs with one layer of ReLUs this is exactly the gradient of the graph with
// every Relu replaced by T softplus(x / T) (max pools pick the same winners: softplus is increasing),
// so finite differences of that graph check it; the forward outputs stay the exact model's.
import { join } from 'node:path';

import { expect } from 'chai';

import { GradientError, GradientModel, seededGradientBytes } from '../../src/autodiff/index.js';
import type { Node } from '../../src/model/onnx-schema.js';
import { packageRoot } from '../../src/paths.js';
import { TestRandom } from '../reference/random.js';
import { checkFiniteDifferences, ints, node, tinyModel } from '../reference/tiny-graph.js';
import type { Tiny } from '../reference/tiny-graph.js';

/** t with every Relu a -> r replaced by r = T softplus(a / T). */
function softened(t: Tiny, T: number): Tiny {
  const nodes: Node[] = t.nodes.flatMap((n) => {
    if (n.opType !== 'Relu') return [n];
    const [a, r] = [n.input![0]!, n.output![0]!];
    return [
      node('Div', [a, 'nfp_T'], [`${r}_scaled`]),
      node('Softplus', [`${r}_scaled`], [`${r}_soft`]),
      node('Mul', [`${r}_soft`, 'nfp_T'], [r]),
    ];
  });
  return { ...t, nodes, constants: { ...t.constants, nfp_T: { dims: [], values: [T] } } };
}

/** The surrogate gradient of t at temperature T against finite differences of t softened at T. */
const checkSurrogate = (t: Tiny, T: number, seed = 7) =>
  checkFiniteDifferences(t, seed, { reluSurrogate: { temperature: T }, reference: softened(t, T) });

const reluMaxPool = (pool: Node['attribute'], channels: number, opset?: number): Tiny => ({
  shape: [channels, 9, 11],
  nodes: [node('Relu', ['x'], ['r']), node('MaxPool', ['r'], ['y'], pool)],
  ...(opset !== undefined ? { opset } : {}),
});
const overlapping = [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])];

describe('autodiff: smooth ReLU backward (reluSurrogate) against finite differences of T softplus(x / T)', () => {
  const mlp: Tiny = {
    shape: [6],
    constants: { w1: { dims: [6, 8] }, w2: { dims: [8, 5] } },
    nodes: [node('MatMul', ['x', 'w1'], ['h']), node('Relu', ['h'], ['r']), node('MatMul', ['r', 'w2'], ['y'])],
  };
  for (const T of [0.02, 0.1, 1]) it(`MatMul, Relu, MatMul at T = ${T}`, () => checkSurrogate(mlp, T));

  // 16 channels: the exact mask would be the blocked-layout tanh; 2x2: the exact MaxPool would mask.
  it('Relu then MaxPool 2x2 on 16 channels, windows wholly off included (winners by the pre-activation)', () =>
    checkSurrogate(reluMaxPool([ints('kernel_shape', [2, 2]), ints('strides', [2, 2])], 16), 1));

  for (const opset of [7, 8, 17])
    it(`Relu then MaxPool 3x3 stride 2 with padding (overlapping windows), opset ${opset}`, () =>
      checkSurrogate(reluMaxPool(overlapping, 3, opset), 0.5));

  it('Relu then GlobalMaxPool, channels wholly off included', () =>
    checkSurrogate(
      { shape: [8, 1, 2], nodes: [node('Relu', ['x'], ['r']), node('GlobalMaxPool', ['r'], ['y'])] },
      0.03,
    ));

  it('Relu read by a MaxPool and a GlobalAveragePool', () =>
    checkSurrogate(
      {
        shape: [4, 4, 4],
        nodes: [
          node('Relu', ['x'], ['r']),
          node('MaxPool', ['r'], ['p'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
          node('GlobalAveragePool', ['r'], ['a']),
          node('Add', ['p', 'a'], ['y']),
        ],
      },
      0.1,
    ));
});

describe('autodiff: reluSurrogate leaves the exact gradient and the forward pass alone', () => {
  it('without a temperature the gradient graph is byte for byte the exact one', async () => {
    const t = reluMaxPool(overlapping, 3);
    const bytes = tinyModel(t, new TestRandom(1));
    const args = { inputShape: t.shape, tensors: ['y'] };
    const exact = (await seededGradientBytes(bytes, args)).bytes;
    const unset = (await seededGradientBytes(bytes, { ...args, reluSurrogate: undefined })).bytes;
    const smooth = (await seededGradientBytes(bytes, { ...args, reluSurrogate: { temperature: 0.1 } })).bytes;
    expect(Buffer.from(unset).equals(Buffer.from(exact))).to.equal(true);
    expect(Buffer.from(smooth).equals(Buffer.from(exact))).to.equal(false);
  });

  it('on the CNN: logits and activations bitwise the exact ones; at a low temperature the gradient nearly the exact one', async () => {
    const path = join(packageRoot, 'models', 'fmnist-cnn.onnx');
    const exact = await GradientModel.load(path, { taps: 'auto' });
    const smooth = await GradientModel.load(path, { taps: 'auto', reluSurrogate: { temperature: 1e-3 } });
    const rough = await GradientModel.load(path, { taps: 'auto', reluSurrogate: { temperature: 1 } });
    try {
      const rnd = new TestRandom(5);
      const images = { data: rnd.floats(4 * 784, 0, 1), dims: [4, 1, 28, 28] };
      const request = { marginLabels: Int32Array.from([0, 3, 7, 9]), tapSeed: rnd.floats(4 * exact.neurons, -1, 1) };
      const [a, b, c] = await Promise.all([exact, smooth, rough].map((m) => m.gradient(images, request)));
      for (const other of [b!, c!]) {
        expect(Array.from(other.logits)).to.deep.equal(Array.from(a!.logits));
        expect(Array.from(other.activations)).to.deep.equal(Array.from(a!.activations));
        expect(Array.from(other.margin!)).to.deep.equal(Array.from(a!.margin!));
      }
      const cosine = (u: Float32Array, v: Float32Array) => {
        let uv = 0;
        let uu = 0;
        let vv = 0;
        u.forEach((x, i) => {
          uv += x * v[i]!;
          uu += x * x;
          vv += v[i]! ** 2;
        });
        return uv / Math.sqrt(uu * vv);
      };
      expect(cosine(b!.grad, a!.grad)).to.be.above(0.99);
      expect(cosine(c!.grad, a!.grad)).to.be.below(0.99);
    } finally {
      await Promise.all([exact, smooth, rough].map((m) => m.release()));
    }
  });
});

describe('autodiff: reluSurrogate refuses a bad temperature, naming it', () => {
  const t = { shape: [3], nodes: [node('Relu', ['x'], ['y'])] };
  for (const temperature of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '0.1'] as number[])
    it(`temperature ${String(temperature)}${typeof temperature === 'string' ? ' (a string)' : ''}`, async () => {
      const bytes = tinyModel(t, new TestRandom(1));
      const refused = (p: Promise<unknown>) =>
        p.then(
          () => expect.fail('expected a GradientError'),
          (error: unknown) => {
            expect(error).to.be.instanceOf(GradientError);
            expect((error as Error).message).to.match(/reluSurrogate\.temperature.*received/);
          },
        );
      await refused(seededGradientBytes(bytes, { inputShape: [3], tensors: ['y'], reluSurrogate: { temperature } }));
      await refused(GradientModel.load(bytes, { reluSurrogate: { temperature } }));
    });
});
