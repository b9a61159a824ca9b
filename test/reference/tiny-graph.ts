// Tiny one-op ONNX graphs for the gradient rules' tests, and the finite-difference check they run:
// each test graph maps x [N, ...shape] to y; the loss is sum(seed * y) per image. Inputs are distinct
// values 0.01 apart and at least 0.005 from zero, so with step h = 2e-3 no ReLU or max-pool decision
// changes and central differences of these piecewise-linear (or quadratic) functions are exact up to
// float32 rounding.
import { expect } from 'chai';
import * as ort from 'onnxruntime-node';

import { GradientOutputs, seededGradientBytes } from '../../src/autodiff/index.js';
import type { BackwardOptions } from '../../src/autodiff/index.js';
import { ModelProtoType } from '../../src/model/onnx-schema.js';
import type { Initializer, Node } from '../../src/model/onnx-schema.js';
import { TestRandom } from './random.js';

export const H = 2e-3;
export const BATCH = 2;

export interface Tiny {
  nodes: Node[];
  constants?: Record<string, { dims: number[]; values?: number[]; ints?: number[] }>;
  shape: number[];
  output?: string;
  opset?: number;
}

export function tinyModel(t: Tiny, rnd: TestRandom): Uint8Array {
  const used = new Set(t.nodes.flatMap((n) => n.input ?? []));
  const constants = Object.entries(t.constants ?? {}).filter(([name]) => used.has(name));
  const initializer: Initializer[] = constants.map(([name, c]) =>
    c.ints !== undefined
      ? { name, dims: c.dims, dataType: 7, int64Data: c.ints }
      : {
          name,
          dims: c.dims,
          dataType: 1,
          floatData:
            c.values ??
            Array.from(
              rnd.floats(
                c.dims.reduce((a, v) => a * v, 1),
                -1,
                1,
              ),
            ),
        },
  );
  const x = {
    tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, ...t.shape.map((d) => ({ dimValue: d }))] } },
  };
  return ModelProtoType.encode(
    ModelProtoType.fromObject({
      irVersion: 8,
      opsetImport: [{ version: t.opset ?? 17 }],
      graph: {
        name: 'tiny',
        node: t.nodes,
        initializer,
        input: [{ name: 'x', type: x }],
        output: [{ name: t.output ?? 'y' }],
      },
    }),
  ).finish();
}

/** Distinct values spaced 0.01 apart, shuffled, none within 0.005 of zero. */
export function distinctInputs(n: number, rnd: TestRandom): Float32Array {
  const values = Array.from({ length: n }, (_, i) => (i - n / 2 + 0.5) * 0.01);
  for (let i = n - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [values[i], values[j]] = [values[j]!, values[i]!];
  }
  return Float32Array.from(values);
}

/**
 * Checks t's input gradient (built with the BackwardOptions in `options`) against central finite differences of
 * `reference` (default: t itself), a graph of the same input, output and constants (same names, so
 * the same random values).
 */
export async function checkFiniteDifferences(
  t: Tiny,
  seedValue = 7,
  options: BackwardOptions & { reference?: Tiny } = {},
): Promise<void> {
  const rnd = new TestRandom(seedValue);
  const bytes = tinyModel(t, rnd);
  const output = t.output ?? 'y';
  const perImage = t.shape.reduce((a, v) => a * v, 1);
  const x = distinctInputs(BATCH * perImage, rnd);
  const { reference, ...backwardOptions } = options;
  const forward = await ort.InferenceSession.create(
    reference === undefined ? bytes : tinyModel(reference, new TestRandom(seedValue)),
  );
  const probe = await forward.run({ x: new ort.Tensor('float32', x, [BATCH, ...t.shape]) });
  const yDims = probe[output]!.dims.map(Number);
  const perOut = yDims.slice(1).reduce((a, v) => a * v, 1);
  const seed = rnd.floats(BATCH * perOut, -1, 1);

  const { bytes: gradBytes, seedInputs } = await seededGradientBytes(bytes, {
    inputShape: t.shape,
    tensors: [output],
    ...backwardOptions,
  });
  const backward = await ort.InferenceSession.create(gradBytes);
  const result = await backward.run({
    x: new ort.Tensor('float32', x, [BATCH, ...t.shape]),
    [seedInputs[0]!]: new ort.Tensor('float32', seed, yDims),
  });
  const grad = result[GradientOutputs.grad]!.data as Float32Array;
  expect(grad.length).to.equal(x.length);

  // One forward run over every perturbed copy: rows (b, i, +h) and (b, i, -h).
  const rows = BATCH * perImage * 2;
  const xs = new Float32Array(rows * perImage);
  for (let b = 0; b < BATCH; b++) {
    for (let i = 0; i < perImage; i++) {
      for (let s = 0; s < 2; s++) {
        const row = (b * perImage + i) * 2 + s;
        xs.set(x.subarray(b * perImage, (b + 1) * perImage), row * perImage);
        xs[row * perImage + i] = x[b * perImage + i]! + (s === 0 ? H : -H);
      }
    }
  }
  const ys = (await forward.run({ x: new ort.Tensor('float32', xs, [rows, ...t.shape]) }))[output]!
    .data as Float32Array;
  let worst = 0;
  let scale = 0;
  for (let b = 0; b < BATCH; b++) {
    for (let i = 0; i < perImage; i++) {
      const loss = (row: number) => {
        let sum = 0; // float64: the difference of two nearly equal sums
        for (let j = 0; j < perOut; j++) sum += ys[row * perOut + j]! * seed[b * perOut + j]!;
        return sum;
      };
      const row = (b * perImage + i) * 2;
      const fd = (loss(row) - loss(row + 1)) / (2 * Math.fround(H));
      worst = Math.max(worst, Math.abs(fd - grad[b * perImage + i]!));
      scale = Math.max(scale, Math.abs(grad[b * perImage + i]!));
    }
  }
  await forward.release();
  await backward.release();
  expect(scale, 'gradient is not all zero').to.be.above(0);
  expect(worst / scale, `max |fd - grad| / max |grad| (scale ${scale})`).to.be.at.most(1e-2);
}

export const node = (opType: string, input: string[], output: string[], attribute: Node['attribute'] = []): Node => ({
  name: `t/${opType}_${output[0]}`,
  opType,
  input,
  output,
  attribute,
});
export const ints = (name: string, values: number[]) => ({ name, type: 7, ints: values });
export const int = (name: string, value: number) => ({ name, type: 2, i: value });
export const float = (name: string, value: number) => ({ name, type: 1, f: value });
export const str = (name: string, value: string) => ({ name, type: 3, s: new TextEncoder().encode(value) });
export const floats = (name: string, values: number[]) => ({ name, type: 6, floats: values });
