// A small ONNX image classifier built in the tests, of no architecture the project ships and with no
// model card: [N, 1, 8, 8] -> Conv -> Relu -> MaxPool -> GELU (erf form) -> Conv -> SiLU (x * Sigmoid(x))
// -> GlobalAveragePool -> Flatten -> Gemm -> logits [N, 3], random weights. What the 'wide' taps
// must find in it is listed in `tinyWideTaps`.
import * as ort from 'onnxruntime-node';

import { ModelProtoType } from '../../src/model/onnx-schema.js';
import type { Initializer, Node } from '../../src/model/onnx-schema.js';
import { TestRandom } from './random.js';

export const tinyWideTaps = ['relu1', 'pool1', 'gelu', 'silu', 'gap', 'features', 'logits'];
/** Neurons per image of each of those taps. */
export const tinyWideSizes = [256, 64, 64, 96, 6, 6, 3];

const n = (opType: string, input: string[], output: string, attribute: Node['attribute'] = []): Node => ({
  name: `tiny/${output}`,
  opType,
  input,
  output: [output],
  attribute,
});
const ints = (name: string, values: number[]) => ({ name, type: 7, ints: values });

function scaleRows(w: Initializer, scale: number[] | undefined): Initializer {
  if (scale === undefined) return w;
  const data = w.floatData as number[];
  return { ...w, floatData: data.map((v, i) => v * scale[Math.floor(i / 6)]!) };
}

/** The head's rows scaled and its bias replaced: logits (w3 f) * scale + shift. */
export interface TinyHead {
  scale: number[];
  shift: number[];
}

export function tinyClassifier(seed = 3, head?: TinyHead): Uint8Array {
  const rnd = new TestRandom(seed);
  const weights = (name: string, dims: number[], scale: number): Initializer => ({
    name,
    dims,
    dataType: 1,
    floatData: Array.from(
      rnd.floats(
        dims.reduce((a, b) => a * b, 1),
        -scale,
        scale,
      ),
    ),
  });
  const scalar = (name: string, value: number): Initializer => ({ name, dims: [], dataType: 1, floatData: [value] });
  const initializer = [
    weights('w1', [4, 1, 3, 3], 0.6),
    weights('b1', [4], 0.1),
    weights('w2', [6, 4, 3, 3], 0.3),
    weights('b2', [6], 0.1),
    scaleRows(weights('w3', [3, 6], 1), head?.scale),
    head ? { name: 'b3', dims: [3], dataType: 1, floatData: head.shift } : weights('b3', [3], 0.1),
    scalar('sqrt2', Math.SQRT2),
    scalar('one', 1),
    scalar('half', 0.5),
  ];
  const node = [
    n('Conv', ['x', 'w1', 'b1'], 'conv1', [ints('pads', [1, 1, 1, 1])]),
    n('Relu', ['conv1'], 'relu1'),
    n('MaxPool', ['relu1'], 'pool1', [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
    n('Div', ['pool1', 'sqrt2'], 'gelu_div'),
    n('Erf', ['gelu_div'], 'gelu_erf'),
    n('Add', ['gelu_erf', 'one'], 'gelu_add'),
    n('Mul', ['pool1', 'gelu_add'], 'gelu_mul'),
    n('Mul', ['gelu_mul', 'half'], 'gelu'),
    n('Conv', ['gelu', 'w2', 'b2'], 'conv2', [ints('pads', [1, 1, 1, 1])]),
    n('Sigmoid', ['conv2'], 'gate'),
    n('Mul', ['conv2', 'gate'], 'silu'),
    n('GlobalAveragePool', ['silu'], 'gap'),
    n('Flatten', ['gap'], 'features'),
    n('Gemm', ['features', 'w3', 'b3'], 'logits', [{ name: 'transB', type: 2, i: 1 }]),
  ];
  const input = {
    name: 'x',
    type: {
      tensorType: {
        elemType: 1,
        shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }, { dimValue: 8 }, { dimValue: 8 }] },
      },
    },
  };
  return ModelProtoType.encode(
    ModelProtoType.fromObject({
      irVersion: 8,
      opsetImport: [{ version: 17 }],
      graph: { name: 'tiny', node, initializer, input: [input], output: [{ name: 'logits' }] },
    }),
  ).finish();
}

/**
 * The tiny classifier with its logits standardized over `images` (each class's logit scaled to unit
 * spread and centered), so that random weights still predict every class for some of them.
 */
export async function balancedTinyClassifier(images: Float32Array, seed = 3): Promise<Uint8Array> {
  const rows = images.length / 64;
  const run = async (bytes: Uint8Array) => {
    const session = await ort.InferenceSession.create(bytes);
    try {
      return (await session.run({ x: new ort.Tensor('float32', images, [rows, 1, 8, 8]) })).logits!
        .data as Float32Array;
    } finally {
      await session.release();
    }
  };
  const z = await run(tinyClassifier(seed, { scale: [1, 1, 1], shift: [0, 0, 0] }));
  const mean = [0, 1, 2].map((c) => z.filter((_, i) => i % 3 === c).reduce((a, v) => a + v, 0) / rows);
  const sd = [0, 1, 2].map((c) =>
    Math.sqrt(z.filter((_, i) => i % 3 === c).reduce((a, v) => a + (v - mean[c]!) ** 2, 0) / rows),
  );
  return tinyClassifier(seed, { scale: sd.map((s) => 1 / s), shift: mean.map((m, c) => -m / sd[c]!) });
}
