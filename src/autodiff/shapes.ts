// Static facts for the gradient rules from probe runs: the shape of every node output at batch
// size 1 (wherever the batch axis lies; at the model's own batch size when it fixes one), the
// declared shapes of constants, and the values of integer shape arithmetic that does not depend on
// the batch size (with a fixed batch size, all of it).
import { probeLayers } from '../model/layers.js';
import type { Graph } from '../model/onnx-schema.js';
import type { SessionSettings } from '../model/session.js';

export interface Probed {
  shapes: Map<string, number[]>;
  /**
   * Integer tensors computed from shapes (Shape -> Gather -> Mul ... feeding Slice or Reshape, as
   * attention exports do) whose values are the same at batch sizes 1 and 2: constants in effect.
   */
  constants: Map<string, number[]>;
  /** The float32 tensors among the probed ones, the input included. */
  floats: Set<string>;
  /**
   * Per tensor, the axes whose size follows the batch size (from the probe at batch size 2, made
   * when the graph computes with shapes, as attention exports do); absent: unknown, taken as axis 0.
   * Empty for every tensor of a model that fixes its batch size.
   */
  batchAxes?: Map<string, number[]>;
  /** Whether the model fixes its batch size (every size is then static). */
  fixedBatch: boolean;
}

export async function probeShapes(
  bytes: Uint8Array,
  graph: Graph,
  input: { name: string; shape: number[]; batch?: number },
  settings: SessionSettings = {},
): Promise<Probed> {
  const rows = input.batch ?? 1;
  const shapes = new Map<string, number[]>();
  for (const t of graph.initializer ?? []) shapes.set(t.name, (t.dims ?? []).map(Number));
  for (const node of graph.node ?? []) {
    const value = node.attribute?.find((a) => a.name === 'value')?.t;
    if (node.opType === 'Constant' && value !== undefined && node.output?.[0])
      shapes.set(node.output[0], (value.dims ?? []).map(Number));
  }
  shapes.set(input.name, [rows, ...input.shape]);
  const one = await probeLayers(bytes, graph, input, settings, { integerValues: true, batch: rows });
  const floats = new Set<string>([input.name]);
  for (const layer of one) {
    if (layer.dims !== undefined) shapes.set(layer.output, layer.dims);
    if (layer.dtype === 'float32') floats.add(layer.output);
  }
  const constants = new Map<string, number[]>();
  let batchAxes: Map<string, number[]> | undefined;
  if (input.batch !== undefined) {
    for (const l of one) if (l.values !== undefined) constants.set(l.output, l.values);
  } else if (one.some((l) => l.values !== undefined)) {
    // A second probe at batch size 2 tells batch-independent shape arithmetic from batch-dependent,
    // and which axes of each tensor follow the batch size.
    const two = new Map(
      (await probeLayers(bytes, graph, input, settings, { batch: 2, integerValues: true })).map((l) => [l.output, l]),
    );
    batchAxes = new Map([[input.name, [0]]]);
    for (const l of one) {
      const other = two.get(l.output);
      if (
        l.values !== undefined &&
        other?.values !== undefined &&
        other.values.length === l.values.length &&
        other.values.every((v, i) => v === l.values![i])
      )
        constants.set(l.output, l.values);
      if (l.dims !== undefined && other?.dims !== undefined && other.dims.length === l.dims.length)
        batchAxes.set(
          l.output,
          l.dims.flatMap((d, i) => (other.dims![i] !== d ? [i] : [])),
        );
    }
  }
  return { shapes, constants, floats, fixedBatch: input.batch !== undefined, ...(batchAxes ? { batchAxes } : {}) };
}
