// Values of a graph's constant tensors (initializers and Constant nodes), for the rules whose
// gradient depends on them (Slice starts, Pad pads, Gather indices, Reduce axes).
import type { Graph, Initializer, Node } from '../model/onnx-schema.js';

const FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  INT32 = 6,
  INT64 = 7,
  BOOL = 9,
  DOUBLE = 11;

function decode(t: Initializer): number[] | undefined {
  if (t.floatData?.length) return t.floatData.map(Number);
  if (t.int64Data?.length) return t.int64Data.map(Number);
  if (t.int32Data?.length) return t.int32Data.map(Number);
  const raw = t.rawData;
  if (raw === undefined) return (t.dims ?? []).some((d) => Number(d) === 0) ? [] : undefined;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const out: number[] = [];
  switch (t.dataType) {
    case FLOAT:
      for (let i = 0; i + 4 <= raw.byteLength; i += 4) out.push(view.getFloat32(i, true));
      return out;
    case DOUBLE:
      for (let i = 0; i + 8 <= raw.byteLength; i += 8) out.push(view.getFloat64(i, true));
      return out;
    case INT32:
      for (let i = 0; i + 4 <= raw.byteLength; i += 4) out.push(view.getInt32(i, true));
      return out;
    case INT64:
      for (let i = 0; i + 8 <= raw.byteLength; i += 8) out.push(Number(view.getBigInt64(i, true)));
      return out;
    case BOOL:
    case UINT8:
      return Array.from(raw);
    case INT8:
      for (let i = 0; i < raw.byteLength; i++) out.push(view.getInt8(i));
      return out;
    default:
      return undefined;
  }
}

function constantNodeValue(node: Node): number[] | undefined {
  for (const a of node.attribute ?? []) {
    if (a.name === 'value' && a.t !== undefined) return decode(a.t);
    if (a.name === 'value_float' && a.f !== undefined) return [a.f];
    if (a.name === 'value_int' && a.i !== undefined) return [Number(a.i)];
    if (a.name === 'value_floats' && a.floats !== undefined) return a.floats.map(Number);
    if (a.name === 'value_ints' && a.ints !== undefined) return a.ints.map(Number);
  }
  return undefined;
}

/** Looks up (and decodes once) the values of constant tensors by name; undefined for data tensors. */
export function constantLookup(graph: Graph): (tensor: string) => number[] | undefined {
  const sources = new Map<string, () => number[] | undefined>();
  for (const t of graph.initializer ?? []) sources.set(t.name, () => decode(t));
  for (const node of graph.node ?? []) {
    if (node.opType === 'Constant' && node.output?.[0]) sources.set(node.output[0], () => constantNodeValue(node));
  }
  const cache = new Map<string, number[] | undefined>();
  return (tensor) => {
    if (!cache.has(tensor)) cache.set(tensor, sources.get(tensor)?.());
    return cache.get(tensor);
  };
}
