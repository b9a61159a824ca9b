// Vector-Jacobian rules for normalization layers, w.r.t. the data input only (scale, bias and
// running statistics must be constants): LayerNormalization, InstanceNormalization,
// GroupNormalization, LRN and inference BatchNormalization.
import type { Rule, RuleContext } from './context.js';
import { GradientError, floatAttr, gradOf, intAttr, nodeLabel, requireConstant } from './context.js';

/**
 * dx of y = normalize(x) * scale + B, normalized over `axes`: with h = g * scale,
 * dx = rstd * (h - mean(h) - xhat * mean(h * xhat)). `h` is given (already scaled).
 */
function normalizedBack(ctx: RuleContext, x: string, h: string, axes: number[], epsilon: number): string {
  const { b } = ctx;
  const { xhat, rstd } = b.hoist(() => {
    const centered = b.op('Sub', [x, b.reduceMean(x, axes, true)]);
    const variance = b.reduceMean(b.op('Mul', [centered, centered]), axes, true);
    const rstd = b.op('Reciprocal', [b.op('Sqrt', [b.op('Add', [variance, b.float([epsilon], [])])])]);
    return { xhat: b.op('Mul', [centered, rstd]), rstd };
  });
  const inner = b.op('Sub', [
    b.op('Sub', [h, b.reduceMean(h, axes, true)]),
    b.op('Mul', [xhat, b.reduceMean(b.op('Mul', [h, xhat]), axes, true)]),
  ]);
  return b.op('Mul', [inner, rstd]);
}

// y = xhat * scale + B with xhat = (x - mean) * rstd over the axes [axis, rank): normalizedBack.
export const layerNormalization: Rule = (ctx) => {
  requireConstant(ctx, [0], 'Scale and B must be constants');
  const { b, node } = ctx;
  const x = node.input![0]!;
  const rank = ctx.shape(x).length;
  let axis = intAttr(node, 'axis', -1);
  if (axis < 0) axis += rank;
  if (axis <= 0 || axis >= rank)
    throw new GradientError(
      `${nodeLabel(node)}: normalizing from axis ${axis} (batch or out of range) is not supported`,
    );
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const h = b.op('Mul', [gradOf(ctx), node.input![1]!]);
  return [normalizedBack(ctx, x, h, axes, floatAttr(node, 'epsilon', 1e-5))];
};

/** A per-channel vector [C] as [C, 1, ..., 1] for a tensor of `rank` with channels in axis 1. */
function perChannel(ctx: RuleContext, v: string, rank: number): string {
  return rank > 2 ? ctx.b.op('Reshape', [v, ctx.b.int64([-1, ...new Array<number>(rank - 2).fill(1)])]) : v;
}

// y = scale_c * xhat + B_c, normalized over the spatial axes of each image and channel: normalizedBack.
export const instanceNormalization: Rule = (ctx) => {
  requireConstant(ctx, [0], 'scale and B must be constants');
  const { b, node } = ctx;
  const x = node.input![0]!;
  const rank = ctx.shape(x).length;
  const axes = Array.from({ length: rank - 2 }, (_, i) => 2 + i);
  const h = b.op('Mul', [gradOf(ctx), perChannel(ctx, node.input![1]!, rank)]);
  return [normalizedBack(ctx, x, h, axes, floatAttr(node, 'epsilon', 1e-5))];
};

// y = scale * xhat + B with x normalized over each group of C / G channels and the spatial axes: in
// the view [N, G, C / G * spatial], normalizedBack over the last axis. Scale and B hold one value
// per channel (opset 21) or, in opset 18, one per group.
export const groupNormalization: Rule = (ctx) => {
  requireConstant(ctx, [0], 'scale and bias must be constants');
  const { b, node } = ctx;
  const x = node.input![0]!;
  const shape = ctx.shape(x);
  const channels = shape[1]!;
  const groups = intAttr(node, 'num_groups', 1);
  const scale = node.input![1]!;
  const grouped = (t: string) => b.op('Reshape', [t, b.int64([0, groups, -1])]);
  const perGroup = ctx.shape(scale).reduce((p, v) => p * v, 1) !== channels;
  const h = perGroup
    ? b.op('Mul', [grouped(gradOf(ctx)), b.op('Reshape', [scale, b.int64([groups, 1])])])
    : grouped(b.op('Mul', [gradOf(ctx), perChannel(ctx, scale, shape.length)]));
  const xg = b.hoist(() => grouped(x));
  const dx = normalizedBack(ctx, xg, h, [2], floatAttr(node, 'epsilon', 1e-5));
  return [b.op('Reshape', [dx, b.op('Shape', [x])])];
};

// y_c = x_c s_c^-beta with s_c = bias + alpha / size * sum of x_i^2 over the channel window W(c) =
// [c - floor((size - 1) / 2), c + ceil((size - 1) / 2)]: dx_i = g_i s_i^-beta - 2 alpha beta / size *
// x_i * sum over the c whose window holds i of g_c x_c s_c^(-beta - 1). Both window sums run as a
// Conv with a kernel of ones over the channel axis of the view [N, 1, C, spatial].
export const lrn: Rule = (ctx) => {
  const { b, node } = ctx;
  const x = node.input![0]!;
  const shape = ctx.shape(x);
  const channels = shape[1]!;
  const spatial = shape.slice(2).reduce((p, v) => p * v, 1);
  const size = intAttr(node, 'size', 1);
  const alpha = floatAttr(node, 'alpha', 1e-4);
  const beta = floatAttr(node, 'beta', 0.75);
  const bias = floatAttr(node, 'bias', 1);
  const low = Math.floor((size - 1) / 2);
  const high = Math.ceil((size - 1) / 2);
  const ones = b.float(new Array<number>(size).fill(1), [1, 1, size, 1]);
  const view = (t: string) => b.op('Reshape', [t, b.int64([0, 1, channels, spatial])]);
  const windowSum = (t: string, before: number, after: number) =>
    b.op('Reshape', [
      b.op('Conv', [view(t), ones], { kernel_shape: [size, 1], pads: [before, 0, after, 0] }),
      b.op('Shape', [x]),
    ]);
  const { scale, slope } = b.hoist(() => {
    const s = b.op('Add', [
      b.op('Mul', [windowSum(b.op('Mul', [x, x]), low, high), b.float([alpha / size], [])]),
      b.float([bias], []),
    ]);
    const scale = b.op('Pow', [s, b.float([-beta], [])]); // s^-beta
    return { scale, slope: b.op('Div', [b.op('Mul', [x, scale]), s]) }; // x s^(-beta - 1)
  });
  const g = gradOf(ctx);
  const spread = windowSum(b.op('Mul', [g, slope]), high, low);
  const cross = b.op('Mul', [b.op('Mul', [spread, x]), b.float([(2 * alpha * beta) / size], [])]);
  return [b.op('Sub', [b.op('Mul', [g, scale]), cross])];
};

// Inference: y = scale * (x - mean) / sqrt(var + eps) + B, a per-channel affine map (axis 1).
export const batchNormalization: Rule = (ctx) => {
  requireConstant(ctx, [0], 'scale, bias, mean and variance must be constants');
  const { b, node } = ctx;
  if (intAttr(node, 'training_mode', 0) !== 0)
    throw new GradientError(`${nodeLabel(node)}: training_mode=1 is not supported (export the model in eval mode)`);
  if (b.opset < 9 && intAttr(node, 'spatial', 1) === 0)
    throw new GradientError(`${nodeLabel(node)}: spatial=0 (statistics per position) is not supported`);
  const [x, scale, , , variance] = node.input as [string, string, string, string, string];
  const rank = ctx.shape(x).length;
  const factor = b.op('Div', [
    scale,
    b.op('Sqrt', [b.op('Add', [variance, b.float([floatAttr(node, 'epsilon', 1e-5)], [])])]),
  ]);
  const perChannel =
    rank > 2 ? b.op('Reshape', [factor, b.int64([-1, ...new Array<number>(rank - 2).fill(1)])]) : factor;
  return [b.op('Mul', [gradOf(ctx), perChannel])];
};
