// Vector-Jacobian rules for elementwise ops with numpy broadcasting: Add, Sub, Mul, Div, Sum, Relu,
// Min, Max, Mean, and the pass-through Identity and (inference) Dropout.
import type { Rule, RuleContext } from './context.js';
import { GradientError, gradOf, nodeLabel, unbroadcast } from './context.js';
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
//
// With a temperature T (ctx.reluTemperature, BPDA), the mask is sigmoid(x / T) of the Relu's input x
// instead: the derivative of T softplus(x / T), nonzero where the ReLU is off, so that a gradient
// attack can push switched-off neurons back on; the forward pass is unchanged. Div and Sigmoid exist
// in every opset the transform accepts (7 on).
export const relu: Rule = (ctx) => {
  const { b } = ctx;
  const g = gradOf(ctx);
  const y = ctx.node.output![0]!;
  const T = ctx.reluTemperature;
  if (T !== undefined) {
    const x = ctx.node.input![0]!;
    const smooth = b.hoist(() => b.op('Sigmoid', [b.op('Div', [x, b.float([T], [])])]));
    return [b.op('Mul', [g, smooth])];
  }
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
  const positive = b.hoist(() => b.op('Greater', [y, b.float([0], [])]));
  return [b.mask(positive, g)];
};

// y = sum of the inputs (broadcast): each input gets g summed back to its shape.
export const sum: Rule = (ctx) => {
  const g = gradOf(ctx);
  return ctx.node.input!.map((_, i) => toInput(ctx, i, g));
};

export const identity: Rule = (ctx) => [gradOf(ctx)];

// Dropout at inference is the identity: a training_mode input (opset 12) must be a constant false, or
// the ratio a constant 0 (torchvision's Swin calls F.dropout(p=0) in training mode).
export const dropout: Rule = (ctx) => {
  const training = ctx.node.input?.[2] ? ctx.constant(ctx.node.input[2]) : [0];
  const ratio = ctx.node.input?.[1] ? ctx.constant(ctx.node.input[1]) : undefined;
  const inference = training !== undefined && training.every((v) => v === 0);
  if (!inference && !(ratio !== undefined && ratio.every((v) => v === 0)))
    throw new GradientError(
      `${nodeLabel(ctx.node)}: training_mode must be a constant false, or the ratio 0 (export the model in eval mode)`,
    );
  return [gradOf(ctx)];
};

/** Min and Max: each input gets the gradient where it equals the result, shared evenly among ties. */
function extremum(ctx: RuleContext, beaten: 'Less' | 'Greater'): Array<string | undefined> {
  const { b, node } = ctx;
  const inputs = node.input!;
  const g = gradOf(ctx);
  if (inputs.length === 1) return [g];
  const y = node.output![0]!;
  // x_i <= y for Max (>= for Min) everywhere, so x_i == y exactly where it is not beaten.
  const wins = b.hoist(() => inputs.map((x) => b.op('Not', [b.op(beaten, [x, y])])));
  const count = b.hoist(() => b.sum(wins.map((w) => b.op('Cast', [w], { to: 1 }))));
  const share = b.op('Div', [g, count]);
  return inputs.map((_, i) => toInput(ctx, i, b.mask(wins[i]!, share)));
}

// y = max(x_1, ..., x_n) (broadcast): dx_i = g [x_i == y] / #{j : x_j == y}, as PyTorch's maximum.
export const max: Rule = (ctx) => extremum(ctx, 'Less');

// y = min(x_1, ..., x_n) (broadcast): dx_i = g [x_i == y] / #{j : x_j == y}, as PyTorch's minimum.
export const min: Rule = (ctx) => extremum(ctx, 'Greater');

// y = mean(x_1, ..., x_n) (broadcast): dx_i = g / n, summed back to x_i's shape.
export const mean: Rule = (ctx) => {
  const n = ctx.node.input!.length;
  const g = n === 1 ? gradOf(ctx) : ctx.b.op('Mul', [gradOf(ctx), ctx.b.float([1 / n], [])]);
  return ctx.node.input!.map((_, i) => toInput(ctx, i, g));
};
