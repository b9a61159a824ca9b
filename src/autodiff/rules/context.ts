// What a vector-Jacobian rule sees: the forward node, the gradients of its outputs, which inputs
// need gradients, probed shapes and the builder that new nodes go into.
import type { Attribute, Node } from '../../model/onnx-schema.js';
import type { GraphBuilder } from '../builder.js';

export class GradientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GradientError';
  }
}

export interface RuleContext {
  node: Node;
  b: GraphBuilder;
  /** Gradient tensor of each output; undefined where nothing flows back. */
  gradOutputs: Array<string | undefined>;
  /** Per input: whether it depends on the differentiated input (and so needs a gradient). */
  needs: boolean[];
  /** Shape of a data tensor with batch size 1 (from the probe run), or of a constant; throws if unknown. */
  shape(tensor: string): number[];
}

/** Gradient tensors per node input (undefined for inputs that need none). */
export type Rule = (ctx: RuleContext) => Array<string | undefined>;

export function nodeLabel(node: Node): string {
  return `${node.opType} node '${node.name ?? '(unnamed)'}'`;
}

function find(node: Node, name: string): Attribute | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function intAttr(node: Node, name: string, fallback: number): number {
  const a = find(node, name);
  return a?.i !== undefined ? Number(a.i) : fallback;
}

export function floatAttr(node: Node, name: string, fallback: number): number {
  return find(node, name)?.f ?? fallback;
}

export function intsAttr(node: Node, name: string): number[] | undefined {
  const a = find(node, name);
  return a?.ints?.map(Number);
}

export function stringAttr(node: Node, name: string, fallback: string): string {
  const s = find(node, name)?.s;
  return s === undefined ? fallback : new TextDecoder().decode(s);
}

/** The single gradient of a one-output node (rules run only when some output has one). */
export function gradOf(ctx: RuleContext): string {
  const g = ctx.gradOutputs[0];
  if (g === undefined) throw new GradientError(`internal: ${nodeLabel(ctx.node)} has no output gradient`);
  return g;
}

/** Throws unless only the listed inputs depend on the differentiated input. */
export function requireConstant(ctx: RuleContext, dataInputs: number[], why: string): void {
  ctx.needs.forEach((need, i) => {
    if (need && !dataInputs.includes(i)) {
      throw new GradientError(`${nodeLabel(ctx.node)}: input ${i} ('${ctx.node.input?.[i]}') depends on the model input, which this gradient rule does not support (${why})`);
    }
  });
}

/**
 * Sums a gradient of the broadcast result shape `out` back to an operand's shape `input`
 * (numpy broadcasting: leading axes added, size-1 axes stretched). Axis 0 is the batch, probed
 * at 1 on both sides, so it is never summed unless the operand lacks it.
 */
export function unbroadcast(b: GraphBuilder, g: string, out: number[], input: number[]): string {
  const lead = out.length - input.length;
  const stretched: number[] = [];
  for (let i = lead; i < out.length; i++) if (input[i - lead] === 1 && out[i] !== 1) stretched.push(i);
  const kept = b.reduceSum(g, stretched, true);
  return b.reduceSum(kept, Array.from({ length: lead }, (_, i) => i), false);
}
