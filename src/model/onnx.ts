// Reading ONNX models and adding graph outputs without re-encoding them. Protobuf merges
// concatenated messages (repeated fields append), so appending an encoded
// ModelProto { graph { output: [...] } } to the original bytes adds outputs while every byte of
// the original model, weights and fields this library does not model included, stays as it was.
import { createHash } from 'node:crypto';

import { ModelProtoType } from './onnx-schema.js';
import type { Graph, Model, ValueInfo } from './onnx-schema.js';

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
  const extra = encodeExtraOutputs(names);
  const out = new Uint8Array(bytes.length + extra.length);
  out.set(bytes, 0);
  out.set(extra, bytes.length);
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
