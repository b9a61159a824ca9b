// Vector-Jacobian rules for elementwise ops with numpy broadcasting: Add, Sub, Mul, Div, Sum, Relu,
// and the pass-through Identity and (inference) Dropout.
import type { Rule, RuleContext } from './context.js';
import { gradOf, unbroadcast } from './context.js';

/** g reduced to input i's shape, or undefined when input i needs no gradient. */
function toInput(ctx: RuleContext, i: number, g: string): string | undefined {
  if (!ctx.needs[i]) return undefined;
  const out = ctx.shape(ctx.node.output![0]!);
  return unbroadcast(ctx.b, g, out, ctx.shape(ctx.node.input![i]!));
}

export const add: Rule = (ctx) => {
  const g = gradOf(ctx);
  return [toInput(ctx, 0, g), toInput(ctx, 1, g)];
};

export const sub: Rule = (ctx) => {
  const g = gradOf(ctx);
  return [toInput(ctx, 0, g), ctx.needs[1] ? toInput(ctx, 1, ctx.b.op('Neg', [g])) : undefined];
};

export const mul: Rule = (ctx) => {
  const g = gradOf(ctx);
  const [a, c] = ctx.node.input as [string, string];
  return [
    ctx.needs[0] ? toInput(ctx, 0, ctx.b.op('Mul', [g, c])) : undefined,
    ctx.needs[1] ? toInput(ctx, 1, ctx.b.op('Mul', [g, a])) : undefined,
  ];
};

// y = a / c: da = g / c, dc = -g * a / c^2 = -g * y / c.
export const div: Rule = (ctx) => {
  const g = gradOf(ctx);
  const [, c] = ctx.node.input as [string, string];
  const y = ctx.node.output![0]!;
  return [
    ctx.needs[0] ? toInput(ctx, 0, ctx.b.op('Div', [g, c])) : undefined,
    ctx.needs[1] ? toInput(ctx, 1, ctx.b.op('Neg', [ctx.b.op('Mul', [g, ctx.b.op('Div', [y, c])])])) : undefined,
  ];
};

// The forward output decides the mask: y > 0 exactly where x > 0, and PyTorch's ReLU backward
// also passes the gradient only there (zero at x = 0). (Measured: Greater + Where is about as
// fast as Sign + Mul or Cast + Mul in ONNX Runtime 1.30 CPU; none of them is vectorized.)
export const relu: Rule = (ctx) => {
  const g = gradOf(ctx);
  const zero = ctx.b.float([0], []);
  const positive = ctx.b.op('Greater', [ctx.node.output![0]!, zero]);
  return [ctx.b.op('Where', [positive, g, zero])];
};

// y = sum of the inputs (broadcast): each input gets g summed back to its shape.
export const sum: Rule = (ctx) => {
  const g = gradOf(ctx);
  return ctx.node.input!.map((_, i) => toInput(ctx, i, g));
};

export const identity: Rule = (ctx) => [gradOf(ctx)];
