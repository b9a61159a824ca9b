// Static shapes for the gradient rules: per-image shapes of every node output from one probe
// run at batch size 1 (stored with that leading 1), plus the declared shapes of constants.
import { probeLayers } from '../model/layers.js';
import type { Graph } from '../model/onnx-schema.js';
import type { SessionSettings } from '../model/session.js';

export async function probeShapes(
  bytes: Uint8Array,
  graph: Graph,
  input: { name: string; shape: number[] },
  settings: SessionSettings = {},
): Promise<Map<string, number[]>> {
  const shapes = new Map<string, number[]>();
  for (const t of graph.initializer ?? []) shapes.set(t.name, (t.dims ?? []).map(Number));
  for (const node of graph.node ?? []) {
    const value = node.attribute?.find((a) => a.name === 'value')?.t;
    if (node.opType === 'Constant' && value !== undefined && node.output?.[0]) shapes.set(node.output[0], (value.dims ?? []).map(Number));
  }
  shapes.set(input.name, [1, ...input.shape]);
  for (const layer of await probeLayers(bytes, graph, input, settings)) {
    if (layer.shape !== undefined) shapes.set(layer.output, [1, ...layer.shape]);
  }
  return shapes;
}
