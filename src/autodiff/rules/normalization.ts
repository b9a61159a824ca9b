// Vector-Jacobian rules for normalization layers, w.r.t. the data input only (scale, bias and
// running statistics must be constants): LayerNormalization and inference BatchNormalization.
import type { Rule } from './context.js';
import { GradientError, floatAttr, gradOf, intAttr, nodeLabel, requireConstant } from './context.js';

// y = xhat * scale + B with xhat = (x - mean) * rstd over the axes [axis, rank). With
// h = g * scale: dx = rstd * (h - mean(h) - xhat * mean(h * xhat)).
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
  const centered = b.op('Sub', [x, b.reduceMean(x, axes, true)]);
  const variance = b.reduceMean(b.op('Mul', [centered, centered]), axes, true);
  const rstd = b.op('Reciprocal', [
    b.op('Sqrt', [b.op('Add', [variance, b.float([floatAttr(node, 'epsilon', 1e-5)], [])])]),
  ]);
  const xhat = b.op('Mul', [centered, rstd]);
  const h = b.op('Mul', [gradOf(ctx), node.input![1]!]);
  const inner = b.op('Sub', [
    b.op('Sub', [h, b.reduceMean(h, axes, true)]),
    b.op('Mul', [xhat, b.reduceMean(b.op('Mul', [h, xhat]), axes, true)]),
  ]);
  return [b.op('Mul', [inner, rstd])];
};

// Inference: y = scale * (x - mean) / sqrt(var + eps) + B, a per-channel affine map (axis 1).
export const batchNormalization: Rule = (ctx) => {
  requireConstant(ctx, [0], 'scale, bias, mean and variance must be constants');
  const { b, node } = ctx;
  if (intAttr(node, 'training_mode', 0) !== 0)
    throw new GradientError(`${nodeLabel(node)}: training_mode=1 is not supported (export the model in eval mode)`);
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
