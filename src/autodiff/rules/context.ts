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
  /** Values of a constant tensor (initializer or Constant node); undefined for data tensors. */
  constant(tensor: string): number[] | undefined;
  /** The forward node that computes a tensor; undefined for graph inputs and constants. */
  producer(tensor: string): Node | undefined;
  /** The forward nodes that read a tensor which depends on the differentiated input. */
  readers(tensor: string): readonly Node[];
  /** Whether the loss seeds a gradient at this tensor directly (a logit or tap seed). */
  seeded(tensor: string): boolean;
  /** The axes of a tensor whose size follows the batch size, where known (probed); undefined: unknown. */
  batchAxes(tensor: string): number[] | undefined;
  /**
   * Set: the backward pass of every Relu takes the smooth mask sigmoid(x / T) of its input x instead of
   * 1[x > 0] (BPDA; the forward pass stays exact). Undefined: the exact gradient.
   */
  reluTemperature?: number | undefined;
}

/** Gradient tensors per node input (undefined for inputs that need none). */
export type Rule = (ctx: RuleContext) => Array<string | undefined>;

export function nodeLabel(node: Node): string {
  return `${node.opType} node '${node.name ?? '(unnamed)'}'`;
}

function find(node: Node, name: string): Attribute | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

// A present attribute without its value holds 0: decoding leaves out zero scalars (keepdims=0,
// PyTorch's x.mean(dim) for one), so only a missing attribute takes the op's default.
export function intAttr(node: Node, name: string, fallback: number): number {
  const a = find(node, name);
  return a === undefined ? fallback : Number(a.i ?? 0);
}

export function floatAttr(node: Node, name: string, fallback: number): number {
  const a = find(node, name);
  return a === undefined ? fallback : (a.f ?? 0);
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
      throw new GradientError(
        `${nodeLabel(ctx.node)}: input ${i} ('${ctx.node.input?.[i]}') depends on the model input, which this ` +
          `gradient rule does not support (${why})`,
      );
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
  return b.reduceSum(
    kept,
    Array.from({ length: lead }, (_, i) => i),
    false,
  );
}

/** The values of a constant input that the rule needs (e.g. Slice starts); throws when it is data. */
export function constantInput(ctx: RuleContext, i: number, what: string): number[] {
  const name = ctx.node.input?.[i];
  const values = name ? ctx.constant(name) : undefined;
  if (values === undefined)
    throw new GradientError(
      `${nodeLabel(ctx.node)}: ${what} (input ${i}, '${name}') must be a constant for its gradient`,
    );
  return values;
}

/** The values of an optional constant input, or undefined when the input is absent. */
export function optionalConstantInput(ctx: RuleContext, i: number, what: string): number[] | undefined {
  const name = ctx.node.input?.[i];
  return name ? constantInput(ctx, i, what) : undefined;
}

/**
 * A possibly negative axis of the node's first input resolved against `rank`; an axis whose size
 * follows the batch size is refused (its size is not static): axis 0 unless the probe says which.
 */
export function dataAxis(ctx: RuleContext, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    throw new GradientError(`${nodeLabel(ctx.node)}: axis ${axis} is out of range for rank ${rank}`);
  const input = ctx.node.input?.[0];
  const batch = input ? ctx.batchAxes(input) : undefined;
  if (batch === undefined ? a === 0 : batch.includes(a))
    throw new GradientError(`${nodeLabel(ctx.node)}: the gradient along the batch axis ${a} is not supported`);
  return a;
}
