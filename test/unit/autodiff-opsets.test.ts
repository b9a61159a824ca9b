// Gradient rules at every opset ONNX Runtime runs (7 to 21) and the ops added for published image
// classifiers, against central finite differences on tiny graphs (test/reference/tiny-graph.ts): the
// attribute and the input forms of ops whose signature changed (Clip, Pad, Slice, Split, Squeeze,
// Unsqueeze, Reduce*, Resize/Upsample, Softmax, Dropout), MaxPool's backward without
// ScatterElements, and the activations, normalizations and selections of item 2 of issue 19.
import { expect } from 'chai';
import * as ort from 'onnxruntime-node';

import { GradientModel, GradientOutputs, seededGradientBytes } from '../../src/autodiff/index.js';
import { TestRandom } from '../reference/random.js';
import { checkFiniteDifferences, float, floats, int, ints, node, str, tinyModel } from '../reference/tiny-graph.js';
import type { Tiny } from '../reference/tiny-graph.js';

/** x times a constant, so that the distinct inputs (0.01 apart) spread over an activation's kinks. */
const spread = (k: number) => ({ constants: { k: { dims: [], values: [k] } }, scale: node('Mul', ['x', 'k'], ['xs']) });

describe('autodiff at every opset: MaxPool without ScatterElements', () => {
  const stem = [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])];
  for (const opset of [7, 8, 9, 10, 11, 13, 15, 17]) {
    it(`opset ${opset}: overlapping 3x3 stride 2 with padding, after a Relu and alone`, async () => {
      await checkFiniteDifferences({ opset, shape: [3, 9, 11], nodes: [node('MaxPool', ['x'], ['y'], stem)] });
      await checkFiniteDifferences({
        opset,
        shape: [2, 7, 8],
        nodes: [node('Relu', ['x'], ['r']), node('MaxPool', ['r'], ['y'], stem)],
      });
    });
    it(`opset ${opset}: 2x2 stride 2 on odd sizes and 2x3 stride 1 (overlapping along one axis)`, async () => {
      await checkFiniteDifferences({
        opset,
        shape: [3, 7, 9],
        nodes: [node('MaxPool', ['x'], ['y'], [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])])],
      });
      await checkFiniteDifferences({
        opset,
        shape: [2, 5, 6],
        nodes: [node('MaxPool', ['x'], ['y'], [ints('kernel_shape', [2, 3]), ints('strides', [2, 1])])],
      });
    });
    it(`opset ${opset}: GlobalMaxPool`, () =>
      checkFiniteDifferences({ opset, shape: [3, 4, 5], nodes: [node('GlobalMaxPool', ['x'], ['y'])] }));
  }
  for (const opset of [10, 12, 17]) {
    it(`opset ${opset}: ceil_mode with overlapping windows, dilations, and a 1-D pool`, async () => {
      await checkFiniteDifferences({
        opset,
        shape: [2, 8, 7],
        nodes: [
          node('MaxPool', ['x'], ['y'], [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), int('ceil_mode', 1)]),
        ],
      });
      await checkFiniteDifferences({
        opset,
        shape: [2, 9, 8],
        nodes: [
          node(
            'MaxPool',
            ['x'],
            ['y'],
            [
              ints('kernel_shape', [2, 2]),
              ints('dilations', [2, 2]),
              ints('strides', [1, 2]),
              ints('pads', [1, 0, 1, 1]),
            ],
          ),
        ],
      });
      await checkFiniteDifferences({
        opset,
        shape: [3, 11],
        nodes: [
          node(
            'MaxPool',
            ['x'],
            ['y'],
            [ints('kernel_shape', [3]), ints('strides', [2]), str('auto_pad', 'SAME_UPPER')],
          ),
        ],
      });
    });
  }

  // Finite differences cannot see ties; ONNX Runtime and PyTorch both give each window's gradient
  // to its first maximum in row-major order.
  for (const opset of [7, 9, 13, 17]) {
    it(`opset ${opset}: a tie goes to the window's first maximum, overlapping windows adding up`, async () => {
      const bytes = tinyModel(
        {
          opset,
          shape: [1, 3, 3],
          nodes: [node('MaxPool', ['x'], ['y'], [ints('kernel_shape', [2, 2]), ints('strides', [1, 1])])],
        },
        new TestRandom(1),
      );
      const { bytes: gradBytes, seedInputs } = await seededGradientBytes(bytes, {
        inputShape: [1, 3, 3],
        tensors: ['y'],
      });
      const session = await ort.InferenceSession.create(gradBytes);
      // 2x2 windows at (0,0), (0,1), (1,0), (1,1); every window's maximum is 5, tied in several places.
      const x = Float32Array.from([1, 5, 5, 5, 0, 5, 2, 5, 3]);
      const result = await session.run({
        x: new ort.Tensor('float32', x, [1, 1, 3, 3]),
        [seedInputs[0]!]: new ort.Tensor('float32', Float32Array.from([1, 10, 100, 1000]), [1, 1, 2, 2]),
      });
      await session.release();
      // Firsts: window (0,0) -> index 1; (0,1) -> index 1; (1,0) -> index 3; (1,1) -> index 5.
      expect(Array.from(result[GradientOutputs.grad]!.data as Float32Array)).to.deep.equal([
        0, 11, 0, 100, 0, 1000, 0, 0, 0,
      ]);
    });
  }
});

describe('autodiff at every opset: ops whose signature changed', () => {
  for (const opset of [7, 9, 10]) {
    it(`Clip with min/max attributes (opset ${opset}) and with one bound`, async () => {
      const { constants, scale } = spread(30);
      await checkFiniteDifferences({
        opset,
        shape: [3, 5],
        constants,
        nodes: [
          scale,
          node('Clip', ['xs'], ['c'], [float('min', -0.9), float('max', 2.1)]),
          node('Clip', ['xs'], ['d'], [float('max', 0.6)]),
          node('Mul', ['c', 'd'], ['y']),
        ],
      });
    });
  }
  for (const opset of [11, 13]) {
    it(`Clip with min/max inputs, one of them absent (opset ${opset})`, async () => {
      const { constants, scale } = spread(30);
      await checkFiniteDifferences({
        opset,
        shape: [3, 5],
        constants: { ...constants, lo: { dims: [], values: [-0.9] }, hi: { dims: [], values: [0.6] } },
        nodes: [
          scale,
          node('Clip', ['xs', 'lo', 'hi'], ['c']),
          node('Clip', ['xs', '', 'hi'], ['d']),
          node('Mul', ['c', 'd'], ['y']),
        ],
      });
    });
  }

  for (const opset of [7, 10]) {
    it(`Pad with attributes (opset ${opset}): constant, reflect and edge, negative pads cropping`, () =>
      checkFiniteDifferences({
        opset,
        shape: [2, 4, 5],
        nodes: [
          node('Pad', ['x'], ['p'], [ints('pads', [0, 0, 1, 2, 0, 0, 2, 0]), float('value', 0.5)]),
          node('Pad', ['p'], ['q'], [ints('pads', [0, 0, 2, 1, 0, 0, 1, 3]), str('mode', 'reflect')]),
          node('Pad', ['q'], ['r'], [ints('pads', [0, 0, 3, 0, 0, 0, 0, 2]), str('mode', 'edge')]),
          node('Pad', ['r'], ['s'], [ints('pads', [0, 0, -1, 2, 0, 0, 1, -2])]),
          node('Mul', ['s', 's'], ['y']),
        ],
      }));
  }
  for (const opset of [11, 13, 18]) {
    it(`Pad with inputs (opset ${opset}): constant, reflect and edge${opset >= 18 ? ', with axes' : ''}`, () =>
      checkFiniteDifferences({
        opset,
        shape: [2, 4, 5],
        constants: {
          p1: { dims: [8], ints: [0, 0, 1, 2, 0, 0, 2, 0] },
          p2: { dims: [8], ints: [0, 0, 2, 1, 0, 0, 1, 3] },
          p3: opset >= 18 ? { dims: [2], ints: [3, 2] } : { dims: [8], ints: [0, 0, 3, 0, 0, 0, 2, 0] },
          ax: { dims: [1], ints: [-2] },
          v: { dims: [], values: [0.5] },
        },
        nodes: [
          node('Pad', ['x', 'p1', 'v'], ['p']),
          node('Pad', ['p', 'p2'], ['q'], [str('mode', 'reflect')]),
          node('Pad', opset >= 18 ? ['q', 'p3', '', 'ax'] : ['q', 'p3'], ['r'], [str('mode', 'edge')]),
          node('Mul', ['r', 'r'], ['y']),
        ],
      }));
  }

  for (const opset of [7, 9]) {
    it(`Slice with attributes (opset ${opset}), clamped and negative bounds`, () =>
      checkFiniteDifferences({
        opset,
        shape: [5, 7, 3],
        nodes: [
          node('Slice', ['x'], ['s'], [ints('starts', [1, -5]), ints('ends', [4, 1000]), ints('axes', [1, 2])]),
          node('Slice', ['s'], ['t'], [ints('starts', [0, 1]), ints('ends', [2, 3]), ints('axes', [3, 1])]),
          node('Mul', ['t', 't'], ['y']),
        ],
      }));
  }
  for (const opset of [10, 13]) {
    it(`Slice with inputs and steps (opset ${opset})`, () =>
      checkFiniteDifferences({
        opset,
        shape: [5, 7, 3],
        constants: {
          st: { dims: [2], ints: [1, -1] },
          en: { dims: [2], ints: [5, -100] },
          ax: { dims: [2], ints: [1, 2] },
          sp: { dims: [2], ints: [2, -3] },
        },
        nodes: [node('Slice', ['x', 'st', 'en', 'ax', 'sp'], ['s']), node('Mul', ['s', 's'], ['y'])],
      }));
  }

  for (const opset of [7, 11, 13, 18]) {
    it(`Split (${opset < 13 ? 'split attribute' : opset < 18 ? 'split input' : 'num_outputs'}, opset ${opset}) with an unused part, Squeeze and Unsqueeze`, () => {
      const splitNode =
        opset < 13
          ? node('Split', ['x'], ['p0', 'p1', 'p2'], [int('axis', 2), ints('split', [1, 3, 2])])
          : opset < 18
            ? node('Split', ['x', 'sizes'], ['p0', 'p1', 'p2'], [int('axis', 2)])
            : node('Split', ['x'], ['p0', 'p1', 'p2'], [int('axis', 2), int('num_outputs', 3)]);
      const squeeze =
        opset < 13 ? node('Squeeze', ['p0'], ['q'], [ints('axes', [2])]) : node('Squeeze', ['p0', 'axis2'], ['q']);
      const unsqueeze =
        opset < 13 ? node('Unsqueeze', ['q'], ['u'], [ints('axes', [2])]) : node('Unsqueeze', ['q', 'axis2'], ['u']);
      const t: Tiny = {
        opset,
        shape: [3, 6],
        constants: { sizes: { dims: [3], ints: [1, 3, 2] }, axis2: { dims: [1], ints: [2] } },
        nodes: [splitNode, squeeze, unsqueeze, node('Mul', ['u', 'p2'], ['y'])],
      };
      if (opset >= 18) t.shape = [3, 3]; // num_outputs splits evenly
      return checkFiniteDifferences(t);
    });
  }

  for (const opset of [7, 11, 13, 18]) {
    it(`Reduce* over axes (opset ${opset}: axes ${opset >= 18 ? 'inputs' : opset >= 13 ? 'an input for ReduceSum only' : 'attributes'}), keepdims 0 and 1`, () => {
      const axes = (name: string, values: number[]) =>
        opset >= 18 || (opset >= 13 && name === 'ReduceSum')
          ? { inputs: [`ax${values.join('_')}`], attrs: [] }
          : { inputs: [], attrs: [ints('axes', values)] };
      const reduce = (op: string, input: string, output: string, values: number[], keep = 1) => {
        const a = axes(op, values);
        return node(op, [input, ...a.inputs], [output], [...a.attrs, int('keepdims', keep)]);
      };
      const { constants, scale } = spread(3);
      return checkFiniteDifferences({
        opset,
        shape: [3, 4, 5],
        constants: {
          ...constants,
          ax1: { dims: [1], ints: [1] },
          ax2_3: { dims: [2], ints: [2, 3] },
          'ax-1': { dims: [1], ints: [-1] },
        },
        nodes: [
          scale,
          reduce('ReduceMax', 'xs', 'a', [2, 3]),
          reduce('ReduceMin', 'xs', 'b', [-1], 0),
          reduce('ReduceL2', 'xs', 'c', [1]),
          reduce('ReduceL1', 'xs', 'd', [2, 3], 0),
          reduce('ReduceSumSquare', 'xs', 'e', [1]),
          reduce('ReduceLogSumExp', 'xs', 'f', [-1]),
          reduce('ReduceSum', 'xs', 'g', [1], 0),
          reduce('ReduceMean', 'xs', 'h', [2, 3]),
          ...['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((t) => node('Flatten', [t], [`${t}f`])),
          node('Concat', ['af', 'bf', 'cf', 'df', 'ef', 'ff', 'gf', 'hf'], ['y'], [int('axis', 1)]),
        ],
      });
    });
  }

  for (const opset of [7, 12, 13]) {
    it(`Softmax and LogSoftmax over axis 1 of a rank-3 tensor (opset ${opset}: ${opset >= 13 ? 'that axis' : 'the flattened tail'}), and Dropout`, () => {
      const { constants, scale } = spread(20);
      const dropout =
        opset < 12
          ? node('Dropout', ['l'], ['dl'], [float('ratio', 0.3)])
          : node('Dropout', ['l', 'ratio', 'training'], ['dl']);
      return checkFiniteDifferences({
        opset,
        shape: [3, 4],
        constants: { ...constants, ratio: { dims: [], values: [0.3] } },
        nodes: [
          scale,
          {
            name: 't/training',
            opType: 'Constant',
            input: [],
            output: ['training'],
            attribute: [{ name: 'value', type: 4, t: { name: 'training', dims: [], dataType: 9, int32Data: [0] } }],
          },
          node('Softmax', ['xs'], ['a'], [int('axis', 1)]),
          node('LogSoftmax', ['xs'], ['l'], [int('axis', 1)]),
          dropout,
          node('Add', ['a', 'dl'], ['y']),
        ],
      });
    });
  }

  for (const opset of [7, 9, 10, 11]) {
    it(`Gemm without a C input where it is required (opset ${opset}), with transA and transB`, () =>
      checkFiniteDifferences({
        opset,
        shape: [6],
        constants: { w: { dims: [4, 6] }, c: { dims: [4] }, w2: { dims: [4, 3] }, z: { dims: [3], values: [0, 0, 0] } },
        nodes: [
          node('Gemm', ['x', 'w', 'c'], ['g'], [int('transB', 1), float('alpha', 0.5)]),
          node('Gemm', ['g', 'w2', 'z'], ['y'], [float('beta', 1)]),
        ],
      }));
  }

  for (const opset of [7, 9]) {
    it(`stride-1 Conv (flipped weights by Gather before opset 10) and a stride-2 Conv (opset ${opset})`, () =>
      checkFiniteDifferences({
        opset,
        shape: [3, 6, 7],
        constants: { w: { dims: [4, 3, 3, 2] }, w2: { dims: [2, 4, 3, 3] } },
        nodes: [
          node('Conv', ['x', 'w'], ['c'], [ints('pads', [1, 0, 1, 1])]),
          node('Conv', ['c', 'w2'], ['y'], [ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])]),
        ],
      }));
  }

  for (const opset of [7, 9, 11]) {
    it(`BatchNormalization, GlobalAveragePool, ReduceMean with keepdims 0 and Expand/Tile (opset ${opset})`, () =>
      checkFiniteDifferences({
        opset,
        shape: [3, 4, 5],
        constants: {
          sc: { dims: [3] },
          bi: { dims: [3] },
          mu: { dims: [3] },
          va: { dims: [3], values: [0.5, 1.5, 2] },
          rep: { dims: [4], ints: [1, 1, 4, 5] },
        },
        nodes: [
          node('BatchNormalization', ['x', 'sc', 'bi', 'mu', 'va'], ['b'], [float('epsilon', 1e-3)]),
          node('GlobalAveragePool', ['b'], ['g']),
          node('Tile', ['g', 'rep'], ['t']),
          node('Mul', ['t', 'x'], ['m']),
          node('ReduceMean', ['m'], ['y'], [ints('axes', [1]), int('keepdims', 0)]),
        ],
      }));
  }
});

describe('autodiff: Resize and Upsample', () => {
  const modes: Array<[string, Array<ReturnType<typeof str> | ReturnType<typeof int>>]> = [
    ['nearest, half_pixel, round_prefer_floor', [str('mode', 'nearest')]],
    [
      'nearest, asymmetric, floor',
      [str('mode', 'nearest'), str('coordinate_transformation_mode', 'asymmetric'), str('nearest_mode', 'floor')],
    ],
    [
      'nearest, align_corners, round_prefer_ceil',
      [
        str('mode', 'nearest'),
        str('coordinate_transformation_mode', 'align_corners'),
        str('nearest_mode', 'round_prefer_ceil'),
      ],
    ],
    ['linear, half_pixel', [str('mode', 'linear')]],
    [
      'linear, pytorch_half_pixel',
      [str('mode', 'linear'), str('coordinate_transformation_mode', 'pytorch_half_pixel')],
    ],
    ['linear, align_corners', [str('mode', 'linear'), str('coordinate_transformation_mode', 'align_corners')]],
    ['linear, asymmetric', [str('mode', 'linear'), str('coordinate_transformation_mode', 'asymmetric')]],
    ['cubic, half_pixel', [str('mode', 'cubic')]],
    [
      'cubic, align_corners, exclude_outside',
      [str('mode', 'cubic'), str('coordinate_transformation_mode', 'align_corners'), int('exclude_outside', 1)],
    ],
  ];
  for (const [what, attrs] of modes) {
    for (const opset of [11, 13]) {
      it(`Resize ${what} (opset ${opset}): scales up 2 x 1.5, then sizes down to 5 x 3`, () =>
        checkFiniteDifferences({
          opset,
          shape: [2, 4, 5],
          constants: {
            roi: { dims: [0], values: [] },
            scales: { dims: [4], values: [1, 1, 2, 1.5] },
            none: { dims: [0], values: [] },
            zero: { dims: [1], ints: [0] },
            two: { dims: [1], ints: [2] },
            hw: { dims: [2], ints: [5, 3] },
          },
          nodes: [
            node('Resize', ['x', 'roi', 'scales'], ['u'], attrs),
            // sizes [N, 2, 5, 3]: the batch size from Shape(u), as exporters write it
            node('Shape', ['u'], ['su']),
            node('Slice', ['su', 'zero', 'two', 'zero'], ['nc']),
            node('Concat', ['nc', 'hw'], ['sizes'], [int('axis', 0)]),
            node('Resize', ['u', opset >= 13 ? '' : 'roi', opset >= 13 ? '' : 'none', 'sizes'], ['y'], attrs),
          ],
        }));
    }
  }
  it('Resize with axes and scales on two axes (opset 18), linear', () =>
    checkFiniteDifferences({
      opset: 18,
      shape: [2, 4, 5],
      constants: { scales: { dims: [2], values: [1.5, 2] }, ax: { dims: [2], ints: [2, 3] } },
      nodes: [node('Resize', ['x', '', 'scales'], ['y'], [str('mode', 'linear'), ints('axes', [2, 3])])],
    }));
  it('Resize 10 (scales input, asymmetric), nearest and linear', () =>
    checkFiniteDifferences({
      opset: 10,
      shape: [2, 3, 4],
      constants: { s: { dims: [4], values: [1, 1, 2, 1.5] } },
      nodes: [
        node('Resize', ['x', 's'], ['a'], [str('mode', 'nearest')]),
        node('Resize', ['x', 's'], ['b'], [str('mode', 'linear')]),
        node('Mul', ['a', 'b'], ['y']),
      ],
    }));
  it('Upsample 7 (scales attribute) and 9 (scales input), nearest and linear', async () => {
    await checkFiniteDifferences({
      opset: 7,
      shape: [2, 3, 4],
      nodes: [
        node('Upsample', ['x'], ['a'], [str('mode', 'nearest'), floats('scales', [1, 1, 2, 3])]),
        node('Upsample', ['x'], ['b'], [str('mode', 'linear'), floats('scales', [1, 1, 2, 3])]),
        node('Mul', ['a', 'b'], ['y']),
      ],
    });
    await checkFiniteDifferences({
      opset: 9,
      shape: [2, 3, 4],
      constants: { s: { dims: [4], values: [1, 1, 1.5, 2] } },
      nodes: [node('Upsample', ['x', 's'], ['y'], [str('mode', 'linear')])],
    });
  });
});

describe('autodiff: activations of published classifiers', () => {
  const cases: Array<[string, number, (input: string, output: string) => ReturnType<typeof node>[]]> = [
    ['HardSigmoid (alpha 0.2, beta 0.5)', 7, (i, o) => [node('HardSigmoid', [i], [o])]],
    [
      'HardSigmoid times x (hard-swish before opset 14)',
      7,
      (i, o) => [node('HardSigmoid', [i], ['hs'], [float('alpha', 1 / 6)]), node('Mul', [i, 'hs'], [o])],
    ],
    ['HardSwish', 14, (i, o) => [node('HardSwish', [i], [o])]],
    ['LeakyRelu', 7, (i, o) => [node('LeakyRelu', [i], [o], [float('alpha', 0.1)])]],
    ['PRelu with a per-channel slope', 7, (i, o) => [node('PRelu', [i, 'slope'], [o])]],
    ['PRelu with a per-channel slope', 16, (i, o) => [node('PRelu', [i, 'slope'], [o])]],
    ['Elu', 7, (i, o) => [node('Elu', [i], [o], [float('alpha', 0.7)])]],
    ['Selu', 7, (i, o) => [node('Selu', [i], [o])]],
    ['Celu', 12, (i, o) => [node('Celu', [i], [o], [float('alpha', 1.5)])]],
    ['ThresholdedRelu', 10, (i, o) => [node('ThresholdedRelu', [i], [o], [float('alpha', 0.4)])]],
    ['Softplus', 7, (i, o) => [node('Softplus', [i], [o])]],
    ['Softsign', 7, (i, o) => [node('Softsign', [i], [o])]],
    ['Mish', 18, (i, o) => [node('Mish', [i], [o])]],
    ['Abs', 7, (i, o) => [node('Abs', [i], [o])]],
    ['Abs', 13, (i, o) => [node('Abs', [i], [o])]],
    [
      'Log of Softplus, Reciprocal of 1 + |x|',
      7,
      (i, o) => [
        node('Softplus', [i], ['sp']),
        node('Log', ['sp'], ['l']),
        node('Abs', [i], ['a']),
        node('Add', ['a', 'one'], ['a1']),
        node('Reciprocal', ['a1'], ['r']),
        node('Mul', ['l', 'r'], [o]),
      ],
    ],
  ];
  for (const [what, opset, build] of cases) {
    it(`${what} (opset ${opset})`, () =>
      checkFiniteDifferences({
        opset,
        shape: [3, 2, 3],
        constants: {
          k: { dims: [], values: [37] }, // spreads the inputs over [-3.3, 3.3], 0.37 apart: past every kink
          slope: { dims: [3, 1, 1], values: [0.25, -0.5, 2] },
          one: { dims: [], values: [1] },
        },
        nodes: [node('Mul', ['x', 'k'], ['xs']), ...build('xs', 'y')],
      }));
  }

  for (const opset of [8, 13]) {
    it(`Max, Min and Mean of broadcast data tensors (opset ${opset})`, () =>
      checkFiniteDifferences({
        opset,
        shape: [3, 4],
        constants: { c: { dims: [4], values: [0.05, -0.02, 0.1, -0.2] } },
        nodes: [
          node('ReduceMean', ['x'], ['m'], [ints('axes', [1])]), // [N, 1, 4]
          node('Max', ['x', 'm', 'c'], ['a']),
          node('Min', ['x', 'c'], ['b']),
          node('Mean', ['a', 'b', 'm'], ['e']),
          node('Mul', ['e', 'x'], ['y']),
        ],
      }));
  }
});

describe('autodiff: normalizations, Einsum and Tile', () => {
  for (const opset of [7, 13]) {
    it(`LRN (size 3 and 5) and InstanceNormalization (opset ${opset})`, () =>
      checkFiniteDifferences({
        opset,
        shape: [5, 3, 4],
        constants: { sc: { dims: [5] }, bi: { dims: [5] }, k: { dims: [], values: [20] } },
        nodes: [
          node('Mul', ['x', 'k'], ['xs']),
          node('LRN', ['xs'], ['a'], [int('size', 3), float('alpha', 0.5), float('beta', 0.75), float('bias', 2)]),
          node('LRN', ['a'], ['b'], [int('size', 5), float('alpha', 0.3), float('beta', 0.6)]),
          node('InstanceNormalization', ['b', 'sc', 'bi'], ['y'], [float('epsilon', 1e-3)]),
        ],
      }));
  }
  for (const opset of [18, 21]) {
    it(`GroupNormalization, scale and bias per ${opset === 18 ? 'group (opset 18)' : 'channel (opset 21)'}`, () =>
      checkFiniteDifferences({
        opset,
        shape: [6, 2, 3],
        constants: opset === 18 ? { sc: { dims: [3] }, bi: { dims: [3] } } : { sc: { dims: [6] }, bi: { dims: [6] } },
        nodes: [node('GroupNormalization', ['x', 'sc', 'bi'], ['y'], [int('num_groups', 3), float('epsilon', 1e-3)])],
      }));
  }
  it('Einsum: batched products of data tensors, a contraction with a constant, an ellipsis, a sum within one operand', () =>
    checkFiniteDifferences({
      opset: 12,
      shape: [3, 4],
      constants: { w: { dims: [4, 5] }, v: { dims: [3] } },
      nodes: [
        node('Einsum', ['x', 'w'], ['a'], [str('equation', 'bij,jk->bik')]), // [N, 3, 5]
        node('Einsum', ['x', 'a'], ['b'], [str('equation', 'bij,bik->bjk')]), // [N, 4, 5]
        node('Einsum', ['b', 'v'], ['c'], [str('equation', '...jk,i->...ij')]), // [N, 3, 4]
        node('Einsum', ['c'], ['e'], [str('equation', 'bij->bj')]), // [N, 4]: i summed within c alone
        node('Einsum', ['c', 'x'], ['d'], [str('equation', 'bij,bij->b')]), // [N]
        node('Unsqueeze', ['d'], ['du'], [ints('axes', [1])]),
        node('Mul', ['du', 'e'], ['y']),
      ],
    }));
});

describe('autodiff at every opset: the classifier losses (seeds) written for the model opset', () => {
  /** x [N, 1, 6, 6] -> Conv -> Relu -> MaxPool 3x3/2 -> Flatten -> Gemm: logits [N, 5], at `opset`. */
  function classifier(opset: number): Uint8Array {
    return tinyModel(
      {
        opset,
        shape: [1, 6, 6],
        constants: { w: { dims: [3, 1, 3, 3] }, fc: { dims: [5, 27] }, bias: { dims: [5] } },
        nodes: [
          node('Conv', ['x', 'w'], ['c'], [ints('pads', [1, 1, 1, 1])]),
          node('Relu', ['c'], ['r']),
          node(
            'MaxPool',
            ['r'],
            ['p'],
            [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])],
          ),
          node('Flatten', ['p'], ['f']),
          node('Gemm', ['f', 'fc', 'bias'], ['y'], [int('transB', 1)]),
        ],
      },
      new TestRandom(21), // the same weights at every opset
    );
  }

  it('cross-entropy, tap seeds and the Carlini-Wagner margin agree at opsets 7, 9, 11 and 17', async () => {
    const rnd = new TestRandom(3);
    const x = { data: rnd.floats(5 * 36, 0, 1), dims: [5, 1, 6, 6] };
    const labels = Int32Array.from([0, 1, 2, 3, 4]);
    const results = [];
    for (const opset of [7, 9, 11, 17]) {
      const model = await GradientModel.load(classifier(opset), { taps: 'auto', batchSize: 3 });
      try {
        const ce = await model.gradient(x, { labels });
        const tapSeed = new TestRandom(4).floats(5 * model.neurons, -1, 1);
        const tap = await model.gradient(x, { tapSeed });
        const cw = await model.gradient(x, { marginLabels: labels });
        // The margin's gradient is a logit seed e_label - e_runnerUp, the runner-up from the logits.
        const seed = new Float32Array(5 * 5);
        for (let r = 0; r < 5; r++) {
          let best = -1;
          for (let c = 0; c < 5; c++)
            if (c !== labels[r] && (best < 0 || cw.logits[r * 5 + c]! > cw.logits[r * 5 + best]!)) best = c;
          seed[r * 5 + labels[r]!] = 1;
          seed[r * 5 + best] = -1;
          expect(cw.margin![r]).to.be.closeTo(cw.logits[r * 5 + labels[r]!]! - cw.logits[r * 5 + best]!, 1e-5);
        }
        const viaSeed = await model.gradient(x, { logitSeed: seed });
        expect(Array.from(cw.grad)).to.deep.equal(Array.from(viaSeed.grad));
        results.push({ opset, ce: ce.grad, loss: ce.loss!, tap: tap.grad, cw: cw.grad });
      } finally {
        await model.release();
      }
    }
    const close = (a: Float32Array, b: Float32Array) => {
      const scale = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(scale).to.be.above(0);
      for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).to.be.at.most(1e-5 * scale);
    };
    const last = results.at(-1)!;
    for (const r of results.slice(0, -1)) {
      close(r.ce, last.ce);
      close(r.loss, last.loss);
      close(r.tap, last.tap);
      close(r.cw, last.cw);
    }
  });
});

describe('autodiff: tensors whose batch axis is not the first (Swin and ViT exports)', () => {
  // x [N, 3, 2, 5] -> t [3, N, 2, 5]: axis 0 of t holds q, k, v, not the batch. The graph computes with
  // shapes, so the probe at batch size 2 tells which axis of each tensor follows the batch.
  for (const opset of [12, 13]) {
    it(`Gather along a non-batch axis 0 (scalar, 2-D indices), Dropout(p=0) in training, a shape-only mask (opset ${opset})`, () =>
      checkFiniteDifferences({
        opset,
        shape: [3, 2, 5],
        constants: {
          one: { dims: [], ints: [1] },
          idx: { dims: [2, 2], ints: [0, 2, 1, 1] },
          lead: { dims: [2], ints: [0, 1] },
          zero: { dims: [], values: [0] },
          minusOne: { dims: [1], ints: [-1] },
          first: { dims: [1], ints: [0] },
          where: { dims: [2, 2], ints: [0, 1, 1, 3] },
          updates: { dims: [2], values: [2, -3] },
          from1: { dims: [1], ints: [1] },
          to3: { dims: [1], ints: [3] },
        },
        nodes: [
          node('Transpose', ['x'], ['t'], [ints('perm', [1, 0, 2, 3])]),
          node('Gather', ['t', 'one'], ['a'], [int('axis', 0)]), // [N, 2, 5]
          node('Gather', ['t', 'idx'], ['g'], [int('axis', 0)]), // [2, 2, N, 2, 5]
          opset >= 13
            ? node('ReduceSum', ['g', 'lead'], ['s'], [int('keepdims', 0)])
            : node('ReduceSum', ['g'], ['s'], [ints('axes', [0, 1]), int('keepdims', 0)]), // [N, 2, 5]
          {
            name: 't/training',
            opType: 'Constant',
            input: [],
            output: ['training'],
            attribute: [
              { name: 'value', type: 4, t: { name: 'training', dims: [], dataType: 9, rawData: Uint8Array.from([1]) } },
            ],
          },
          node('Dropout', ['s', 'zero', 'training'], ['d']),
          // A mask from the input's shape alone (zeros of its shape, some rows set): no gradient through it.
          node('Shape', ['a'], ['sa']),
          node('Slice', ['sa', 'from1', 'to3'], ['hw']),
          node('ConstantOfShape', ['hw'], ['zeros']), // [2, 5]
          node('ScatterND', ['zeros', 'where', 'updates'], ['mask']), // two elements set
          node('Mul', ['a', 'd'], ['ad']),
          node('Mul', ['ad', 'mask'], ['am']),
          node('Add', ['am', 'a'], ['sum']),
          // Shape arithmetic, as attention exports have: flatten to [N, -1] by a shape computed from Shape(sum).
          node('Shape', ['sum'], ['ss']),
          node('Gather', ['ss', 'first'], ['n']),
          node('Concat', ['n', 'minusOne'], ['to'], [int('axis', 0)]),
          node('Reshape', ['sum', 'to'], ['y']),
        ],
      }));
  }
});
