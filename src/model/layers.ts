// Listing a model's layers with their output shapes, found by one probe run with every node
// output added as a graph output (shape inference alone misses shapes many exporters omit).
import * as ort from 'onnxruntime-node';

import { withExtraOutputs } from './onnx.js';
import type { Graph } from './onnx-schema.js';
import { createSession } from './session.js';
import type { SessionSettings } from './session.js';

export interface LayerInfo {
  name: string;
  opType: string;
  output: string;
  /** Shape of one image's output (batch dimension removed); undefined if not probed or not batch-first. */
  shape?: number[];
  /**
   * The output's full shape in the probe run (batch size 1, or the model's fixed one), also for tensors whose
   * leading axis is not the batch (attention reshapes to [tokens, batch * heads, ...]), where `shape` is undefined.
   */
  dims?: number[];
  /** Values of small integer outputs (shape arithmetic), when asked for. */
  values?: number[];
  neurons?: number;
  dtype?: string;
}

export async function probeLayers(
  bytes: Uint8Array,
  graph: Graph,
  input: { name: string; shape: number[] },
  settings: SessionSettings = {},
  probe: { batch?: number; integerValues?: boolean } = {},
): Promise<LayerInfo[]> {
  const constants = new Set(['Constant', 'ConstantOfShape', 'Shape', 'Size']);
  const layers: LayerInfo[] = [];
  for (const node of graph.node ?? []) {
    if (constants.has(node.opType)) continue;
    for (const output of node.output ?? []) {
      if (output !== '') layers.push({ name: node.name ?? '', opType: node.opType, output });
    }
  }
  const graphOutputs = new Set((graph.output ?? []).map((o) => o.name));
  const session = await createSession(
    withExtraOutputs(
      bytes,
      layers.map((l) => l.output).filter((o) => !graphOutputs.has(o)),
    ),
    settings,
  );
  try {
    const batch = probe.batch ?? 1;
    const size = batch * input.shape.reduce((a, b) => a * b, 1);
    const x = new Float32Array(size);
    for (let i = 0; i < size; i++) x[i] = ((i * 7919) % 255) / 255; // deterministic, not constant
    const result = await session.run({ [input.name]: new ort.Tensor('float32', x, [batch, ...input.shape]) });
    for (const layer of layers) {
      const t = result[layer.output];
      if (t === undefined) continue;
      layer.dtype = t.type;
      layer.dims = t.dims.map(Number);
      if (probe.integerValues === true && (t.type === 'int64' || t.type === 'int32') && t.size <= 64) {
        layer.values = Array.from(t.data as BigInt64Array | Int32Array, Number);
      }
      if (t.dims.length >= 1 && t.dims[0] === batch) {
        layer.shape = t.dims.slice(1).map(Number);
        layer.neurons = layer.shape.reduce((a, b) => a * b, 1);
      }
    }
  } finally {
    await session.release();
  }
  return layers;
}
