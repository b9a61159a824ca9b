// Reading ONNX models and adding graph outputs without re-encoding them. Protobuf merges
// concatenated messages (repeated fields append), so appending an encoded
// ModelProto { graph { output: [...] } } to the original bytes adds outputs while every byte of
// the original model, weights and fields this library does not model included, stays as it was.
import { createHash } from 'node:crypto';

import { ElemType, ModelProtoType } from './onnx-schema.js';
import type { Graph, Initializer, Model, Node, ValueInfo } from './onnx-schema.js';

export class ModelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelFormatError';
  }
}

/** Decodes an ONNX ModelProto; throws ModelFormatError naming `source` for anything that is not one. */
export function decodeModel(bytes: Uint8Array, source: string): Model & { graph: Graph } {
  if (bytes.length === 0) throw new ModelFormatError(`${source}: empty file, not an ONNX model`);
  let model: Model;
  try {
    const message = ModelProtoType.decode(bytes);
    model = ModelProtoType.toObject(message, { longs: Number, defaults: false, arrays: true }) as Model;
  } catch (error) {
    throw new ModelFormatError(
      `${source}: not a valid ONNX model ` +
        `(${error instanceof Error ? error.message : String(error)}); the file may be truncated or of another format`,
    );
  }
  if (model.graph === undefined || (model.graph.node?.length ?? 0) === 0) {
    throw new ModelFormatError(`${source}: ONNX model has no graph nodes (truncated file or not an ONNX model)`);
  }
  if (model.irVersion === undefined || !model.opsetImport?.length) {
    throw new ModelFormatError(`${source}: ONNX model lacks ir_version or opset_import; not a valid model file`);
  }
  return model as Model & { graph: Graph };
}

/**
 * Bytes that, appended to a model's bytes, add graph outputs with the given names. No type is
 * declared: ONNX Runtime infers it, so integer tensors (shape computations) can be probed too.
 */
export function encodeExtraOutputs(names: string[]): Uint8Array {
  const output: ValueInfo[] = names.map((name) => ({ name }));
  return ModelProtoType.encode(ModelProtoType.fromObject({ graph: { output } })).finish();
}

export function withExtraOutputs(bytes: Uint8Array, names: string[]): Uint8Array {
  if (names.length === 0) return bytes;
  return concat(bytes, encodeExtraOutputs(names));
}

/**
 * Bytes that, appended to a model's bytes, add for each `tensor` a graph output `output` holding the
 * per-image values at `indices` (ascending, into the tensor's values per image in row-major order):
 * Flatten(axis 1) then Gather(axis 1) with the indices as an int64 initializer. Both ops exist at every
 * opset, and the values are copied, not computed, so they equal the whole tensor's at those indices.
 */
export function encodeSampleGathers(
  samples: Array<{ tensor: string; output: string; indices: Uint32Array }>,
): Uint8Array {
  const node: Node[] = [];
  const initializer: Initializer[] = [];
  const output: ValueInfo[] = [];
  samples.forEach(({ tensor, output: name, indices }, i) => {
    const flat = `nfp.flat.${i}:${tensor}`;
    const at = `nfp.indices.${i}:${tensor}`;
    node.push(
      {
        opType: 'Flatten',
        name: `nfp.Flatten.${i}`,
        input: [tensor],
        output: [flat],
        attribute: [{ name: 'axis', type: 2, i: 1 }],
      },
      {
        opType: 'Gather',
        name: `nfp.Gather.${i}`,
        input: [flat, at],
        output: [name],
        attribute: [{ name: 'axis', type: 2, i: 1 }],
      },
    );
    initializer.push({ name: at, dims: [indices.length], dataType: ElemType.INT64, int64Data: Array.from(indices) });
    output.push({ name });
  });
  return ModelProtoType.encode(ModelProtoType.fromObject({ graph: { node, initializer, output } })).finish();
}

/** The model with extra outputs `names` and the sample gathers of encodeSampleGathers. */
export function withSampleGathers(
  bytes: Uint8Array,
  names: string[],
  samples: Array<{ tensor: string; output: string; indices: Uint32Array }>,
): Uint8Array {
  return concat(bytes, names.length > 0 ? encodeExtraOutputs(names) : new Uint8Array(0), encodeSampleGathers(samples));
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Names of the graph inputs that are real inputs (not initializers listed as inputs, as IR < 4 allowed). */
export function realInputs(graph: Graph): ValueInfo[] {
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  return (graph.input ?? []).filter((v) => !initializers.has(v.name));
}

/** Shape of a value info: numbers for fixed dims, strings for symbolic ones, null when unknown. */
export function shapeOf(v: ValueInfo): Array<number | string | null> | undefined {
  const dims = v.type?.tensorType?.shape?.dim;
  if (dims === undefined) return undefined;
  return dims.map((d) => (d.dimValue !== undefined ? d.dimValue : d.dimParam !== undefined ? d.dimParam : null));
}
