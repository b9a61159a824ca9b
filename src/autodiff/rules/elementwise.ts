// Vector-Jacobian rules for elementwise ops with numpy broadcasting: Add, Sub, Mul, Div, Sum, Relu,
// and the pass-through Identity and (inference) Dropout.
import type { Rule, RuleContext } from './context.js';
import { gradOf, unbroadcast } from './context.js';
import { reluFeedsMaxPool } from './pool.js';

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
// also passes the gradient only there (zero at x = 0). The mask is hoisted: computed as soon as y
// exists (builder.ts says why).
//
// For 4-D activations with channels a multiple of 16, the convolution layers ONNX Runtime runs
// in its blocked (NCHWc) layout, the mask is tanh(2^127 y) in a BatchNormalization, which ONNX
// Runtime turns into a blocked per-channel scale with tanh fused, and a Mul, which it also runs
// blocked. Greater and Where have no blocked form: each would take a reorder of y and two of the
// gradient (ResNet-50: 2.5x its forward time with them, 2.2x without). tanh(2^127 y) is exactly 1
// from y = 1e-37 up (and for y = inf) and exactly 0 at y = 0; only for y in (0, 1e-37), and where
// y is NaN (NaN instead of 0), does the gradient differ from PyTorch's.
export const relu: Rule = (ctx) => {
  const { b } = ctx;
  const g = gradOf(ctx);
  const y = ctx.node.output![0]!;
  const [reader] = ctx.readers(y);
  if (reader !== undefined && reluFeedsMaxPool(ctx, ctx.node, reader)) return [g]; // masked by the MaxPool rule
  const shape = ctx.shape(y);
  if (shape.length === 4 && shape[1]! % 16 === 0) {
    const channels = (value: number) => b.float(new Array<number>(shape[1]!).fill(value));
    const mask = b.hoist(() =>
      b.op('Tanh', [
        b.op('BatchNormalization', [y, channels(2 ** 127), channels(0), channels(0), channels(1)], {
          epsilon: { float: 1e-10 },
        }),
      ]),
    );
    return [b.op('Mul', [g, mask])];
  }
  const zero = b.float([0], []);
  const positive = b.hoist(() => b.op('Greater', [y, zero]));
  return [b.op('Where', [positive, g, zero])];
};

// y = sum of the inputs (broadcast): each input gets g summed back to its shape.
export const sum: Rule = (ctx) => {
  const g = gradOf(ctx);
  return ctx.node.input!.map((_, i) => toInput(ctx, i, g));
};

export const identity: Rule = (ctx) => [gradOf(ctx)];
