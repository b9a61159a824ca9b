// Vector-Jacobian rules for pointwise nonlinearities (Erf, Sqrt, Sigmoid, Tanh, Exp, Log, Neg, Abs,
// Reciprocal, Pow with a constant exponent, Softplus, Softsign, Mish, Clip) and for Softmax /
// LogSoftmax along an axis.
import type { Rule } from './context.js';
import { GradientError, floatAttr, gradOf, intAttr, nodeLabel, requireConstant, unbroadcast } from './context.js';

const x0 = (ctx: Parameters<Rule>[0]) => ctx.node.input![0]!;
const y0 = (ctx: Parameters<Rule>[0]) => ctx.node.output![0]!;

// erf'(x) = 2 / sqrt(pi) * exp(-x^2): with Mul/Add/Div it covers the exact GELU that PyTorch exports.
export const erf: Rule = (ctx) => {
  const { b } = ctx;
  const x = x0(ctx);
  const bell = b.op('Exp', [b.op('Neg', [b.op('Mul', [x, x])])]);
  return [b.op('Mul', [gradOf(ctx), b.op('Mul', [bell, b.float([2 / Math.sqrt(Math.PI)], [])])])];
};

// y = sqrt(x): dx = g / (2 y).
export const sqrt: Rule = (ctx) => [ctx.b.op('Div', [gradOf(ctx), ctx.b.op('Mul', [y0(ctx), ctx.b.float([2], [])])])];

// y = sigmoid(x): dx = g y (1 - y).
export const sigmoid: Rule = (ctx) => {
  const { b } = ctx;
  const y = y0(ctx);
  return [b.op('Mul', [gradOf(ctx), b.op('Mul', [y, b.op('Sub', [b.float([1], []), y])])])];
};

// y = tanh(x): dx = g (1 - y^2).
export const tanh: Rule = (ctx) => {
  const { b } = ctx;
  const y = y0(ctx);
  return [b.op('Mul', [gradOf(ctx), b.op('Sub', [b.float([1], []), b.op('Mul', [y, y])])])];
};

export const exp: Rule = (ctx) => [ctx.b.op('Mul', [gradOf(ctx), y0(ctx)])];

// y = log(x): dx = g / x.
export const log: Rule = (ctx) => [ctx.b.op('Div', [gradOf(ctx), x0(ctx)])];

// y = 1 / x: dx = -g y^2.
export const reciprocal: Rule = (ctx) => {
  const { b } = ctx;
  const y = y0(ctx);
  return [b.op('Neg', [b.op('Mul', [gradOf(ctx), b.op('Mul', [y, y])])])];
};

// y = |x|: dx = g sign(x), 0 at x = 0 as in PyTorch (Sign arrived in opset 9; before, from comparisons).
export const abs: Rule = (ctx) => {
  const { b } = ctx;
  const x = x0(ctx);
  const sign = b.hoist(() => {
    if (b.opset >= 9) return b.op('Sign', [x]);
    const zero = b.float([0], []);
    const up = b.op('Cast', [b.op('Greater', [x, zero])], { to: 1 });
    return b.op('Sub', [up, b.op('Cast', [b.op('Less', [x, zero])], { to: 1 })]);
  });
  return [b.op('Mul', [gradOf(ctx), sign])];
};

// y = log(1 + e^x): dx = g sigmoid(x).
export const softplus: Rule = (ctx) => [
  ctx.b.op('Mul', [gradOf(ctx), ctx.b.hoist(() => ctx.b.op('Sigmoid', [x0(ctx)]))]),
];

// y = x / (1 + |x|): dx = g / (1 + |x|)^2.
export const softsign: Rule = (ctx) => {
  const { b } = ctx;
  const slope = b.hoist(() => {
    const d = b.op('Add', [b.op('Abs', [x0(ctx)]), b.float([1], [])]);
    return b.op('Reciprocal', [b.op('Mul', [d, d])]);
  });
  return [b.op('Mul', [gradOf(ctx), slope])];
};

// y = x tanh(softplus(x)): dx = g (t + x sigmoid(x) (1 - t^2)) with t = tanh(softplus(x)).
export const mish: Rule = (ctx) => {
  const { b } = ctx;
  const x = x0(ctx);
  const slope = b.hoist(() => {
    const t = b.op('Tanh', [b.op('Softplus', [x])]);
    const rest = b.op('Sub', [b.float([1], []), b.op('Mul', [t, t])]);
    return b.op('Add', [t, b.op('Mul', [b.op('Mul', [x, b.op('Sigmoid', [x])]), rest])]);
  });
  return [b.op('Mul', [gradOf(ctx), slope])];
};

export const neg: Rule = (ctx) => [ctx.b.op('Neg', [gradOf(ctx)])];

// y = x^p with p constant: dx = g p x^(p - 1), summed back to x's shape if p broadcast it.
export const pow: Rule = (ctx) => {
  requireConstant(ctx, [0], 'the exponent must be a constant');
  const { b, node } = ctx;
  const x = x0(ctx);
  const p = node.input![1]!;
  const value = ctx.constant(p);
  let d: string;
  if (value?.length === 1 && value[0] === 2) d = b.op('Mul', [x, b.float([2], [])]);
  else if (value?.length === 1)
    d = b.op('Mul', [b.op('Pow', [x, b.float([value[0]! - 1], [])]), b.float([value[0]!], [])]);
  else {
    const pf = b.op('Cast', [p], { to: 1 });
    d = b.op('Mul', [b.op('Pow', [x, b.op('Sub', [pf, b.float([1], [])])]), pf]);
  }
  return [unbroadcast(b, b.op('Mul', [gradOf(ctx), d]), ctx.shape(y0(ctx)), ctx.shape(x))];
};

// y = clip(x, min, max): g passes where min <= x <= max, bounds included and NaN excluded (PyTorch's
// clamp backward; before opset 12, which lacks GreaterOrEqual, NaN passes). Before opset 11 the
// bounds are attributes, defaulting to the float range.
export const clip: Rule = (ctx) => {
  requireConstant(ctx, [0], 'min and max must be constants');
  const { b, node } = ctx;
  const x = x0(ctx);
  const conditions: string[] = [];
  if (b.opset >= 11) {
    if (node.input![1]) conditions.push(b.atLeast(x, node.input![1]));
    if (node.input![2]) conditions.push(b.atMost(x, node.input![2]));
  } else {
    const lo = floatAttr(node, 'min', -Infinity);
    const hi = floatAttr(node, 'max', Infinity);
    if (lo > -3.4028234663852886e38) conditions.push(b.atLeast(x, b.float([lo], [])));
    if (hi < 3.4028234663852886e38) conditions.push(b.atMost(x, b.float([hi], [])));
  }
  if (conditions.length === 0) return [gradOf(ctx)];
  const inside = conditions.length === 1 ? conditions[0]! : b.op('And', conditions);
  return [b.mask(inside, gradOf(ctx))];
};

/** Softmax's normalized axes: one axis from opset 13, the flattened tail before. */
function softmaxAxes(ctx: Parameters<Rule>[0]): number[] {
  const rank = ctx.shape(x0(ctx)).length;
  const opset13 = ctx.b.opset >= 13;
  let axis = intAttr(ctx.node, 'axis', opset13 ? -1 : 1);
  if (axis < 0) axis += rank;
  if (axis === 0 || axis >= rank)
    throw new GradientError(
      `${nodeLabel(ctx.node)}: softmax over axis ${axis} (batch or out of range) is not supported`,
    );
  return opset13 ? [axis] : Array.from({ length: rank - axis }, (_, i) => axis + i);
}

// y = softmax(x): dx = y (g - sum(g y)) over the softmax axes.
export const softmax: Rule = (ctx) => {
  const { b } = ctx;
  const g = gradOf(ctx);
  const y = y0(ctx);
  const gy = b.op('Mul', [g, y]);
  return [b.op('Sub', [gy, b.op('Mul', [y, b.reduceSum(gy, softmaxAxes(ctx), true)])])];
};

// y = log softmax(x): dx = g - exp(y) sum(g).
export const logSoftmax: Rule = (ctx) => {
  const { b } = ctx;
  const g = gradOf(ctx);
  return [b.op('Sub', [g, b.op('Mul', [b.op('Exp', [y0(ctx)]), b.reduceSum(g, softmaxAxes(ctx), true)])])];
};
