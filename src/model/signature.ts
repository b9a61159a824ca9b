// What an ONNX image classifier takes and gives, read from its graph as model zoos publish it: the
// image input (name, element type, channels-first or channels-last layout, a free or fixed batch) and
// the logits (the first output, or the input of a trailing Softmax or LogSoftmax when the model
// outputs probabilities or log-probabilities, so that attacks, taps and the confidence term see logits).
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import type { Layout } from '../data/layout.js';
import { ModelFormatError, decodeModel, realInputs, shapeOf } from './onnx.js';
import type { Graph, Node, ValueInfo } from './onnx-schema.js';
import { ElemType } from './onnx-schema.js';

/** What the first output holds; the logits are taken before a trailing Softmax / LogSoftmax. */
export type OutputKind = 'logits' | 'probabilities' | 'log-probabilities';

export class SignatureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

export interface ImageInput {
  name: string;
  layout: Layout;
  /** Per-image shape in the model's layout: [C, H, W] or [H, W, C]; NaN where the model leaves a dimension symbolic. */
  shape: number[];
  /** The declared batch size when the model fixes it; undefined for a free (symbolic) batch axis. */
  batch: number | undefined;
}

export interface LogitsOutput {
  /** The model's first output. */
  output: string;
  /** The tensor holding the logits [batch, classes]: the output itself, or a trailing softmax's input. */
  logits: string;
  kind: OutputKind;
}

const typeNames: Record<number, string> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  16: 'bfloat16',
};

export function elemTypeName(t: number | undefined): string {
  return t === undefined ? 'of unknown type' : (typeNames[t] ?? `of ONNX type ${t}`);
}

/** A channels-first per-image shape [C, H, W] in `layout`. */
export function fromChannelsFirst(chw: readonly number[], layout: Layout): number[] {
  const [c, h, w] = chw as [number, number, number];
  return layout === 'nhwc' ? [h, w, c] : [c, h, w];
}

/** A per-image shape in `layout` as channels-first [C, H, W]. */
export function toChannelsFirst(shape: readonly number[], layout: Layout): number[] {
  const [a, b, c] = shape as [number, number, number];
  return layout === 'nhwc' ? [c, a, b] : [a, b, c];
}

/**
 * The layout of a declared per-image shape [a, b, c]: channels-last when the last dimension is 1,
 * 3 or 4 (gray, RGB, RGBA) and the first is not; channels-first otherwise (also when symbolic).
 */
export function detectLayout(shape: ReadonlyArray<number | string | null>): Layout {
  const few = (d: number | string | null | undefined) => typeof d === 'number' && [1, 3, 4].includes(d);
  return shape.length === 3 && few(shape[2]) && !few(shape[0]) ? 'nhwc' : 'nchw';
}

/** The single image input: float32, rank 4, its layout (given or detected) and its batch. */
export function imageInput(graph: Graph, source: string, layout?: Layout): ImageInput {
  const inputs = realInputs(graph);
  if (inputs.length !== 1) {
    throw new SignatureError(
      `${source}: expected one image input but the model ` +
        `has ${inputs.length} (${inputs.map((i) => i.name).join(', ')})`,
    );
  }
  const input = inputs[0]!;
  const elemType = input.type?.tensorType?.elemType;
  if (elemType !== undefined && elemType !== ElemType.FLOAT) {
    const what = elemTypeName(elemType);
    throw new SignatureError(
      elemType === ElemType.FLOAT16
        ? `${source}: input '${input.name}' is float16; nfp runs float32 models only (convert the model to float32, ` +
            `e.g. with onnxconverter-common, or export it again in float32)`
        : `${source}: input '${input.name}' takes ${what} values; nfp feeds float32 images in [0, 1] (export the ` +
            `model with a float32 input and its preprocessing inside the graph)`,
    );
  }
  const declared = shapeOf(input) ?? [];
  if (declared.length !== 0 && declared.length !== 4) {
    throw new SignatureError(
      `${source}: input '${input.name}' has shape [${declared.join(', ')}]; expected an image batch ` +
        `[N, C, H, W] or [N, H, W, C]`,
    );
  }
  const perImage = declared.slice(1);
  const chosen = layout ?? detectLayout(perImage);
  const batch = typeof declared[0] === 'number' && declared[0] > 0 ? declared[0] : undefined;
  return {
    name: input.name,
    layout: chosen,
    shape: perImage.length === 3 ? perImage.map((d) => (typeof d === 'number' && d > 0 ? d : NaN)) : [NaN, NaN, NaN],
    batch,
  };
}

function producerOf(graph: Graph, tensor: string): Node | undefined {
  return (graph.node ?? []).find((n) => (n.output ?? []).includes(tensor));
}

/**
 * The logits: the first output, or, when it comes from a Softmax or LogSoftmax over the class axis
 * (possibly through Identity), that op's input. Float16 outputs are refused by name.
 */
export function logitsOutput(graph: Graph, source: string): LogitsOutput {
  const first: ValueInfo | undefined = graph.output?.[0];
  if (first === undefined) throw new ModelFormatError(`${source}: the graph has no outputs`);
  const elemType = first.type?.tensorType?.elemType;
  if (elemType !== undefined && elemType !== ElemType.FLOAT)
    throw new SignatureError(
      `${source}: output '${first.name}' is ${elemTypeName(elemType)}; nfp needs float32 logits or probabilities`,
    );
  let tensor = first.name;
  let node = producerOf(graph, tensor);
  while (node?.opType === 'Identity' && node.input?.[0]) {
    tensor = node.input[0];
    node = producerOf(graph, tensor);
  }
  const domain = node?.domain ?? '';
  if ((node?.opType === 'Softmax' || node?.opType === 'LogSoftmax') && (domain === '' || domain === 'ai.onnx')) {
    const attr = node.attribute?.find((a) => a.name === 'axis');
    const axis = attr === undefined ? undefined : Number(attr.i ?? 0); // a decoded 0 leaves `i` out
    // On [batch, classes] the class axis is 1 = -1, and the opset-13 and older semantics agree.
    if (axis === undefined || axis === 1 || axis === -1)
      return {
        output: first.name,
        logits: node.input![0]!,
        kind: node.opType === 'Softmax' ? 'probabilities' : 'log-probabilities',
      };
  }
  return { output: first.name, logits: first.name, kind: 'logits' };
}

/** The image input of a model file (or bytes), without creating a session: for loading data in its layout. */
export async function readImageInput(model: string | Uint8Array, layout?: Layout): Promise<ImageInput> {
  const source = typeof model === 'string' ? basename(model) : 'model';
  const bytes = typeof model === 'string' ? new Uint8Array(await readFile(model)) : model;
  return imageInput(decodeModel(bytes, source).graph, source, layout);
}
