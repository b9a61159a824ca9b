// Vector-Jacobian rules for the piecewise activations of the ReLU family: LeakyRelu, PRelu, Elu,
// Selu, Celu, ThresholdedRelu, HardSigmoid and HardSwish. Each mask is computed from forward tensors
// alone and hoisted next to the forward pass (builder.ts says why); at the kinks the gradient is
// PyTorch's.
import type { Rule, RuleContext } from './context.js';
import { floatAttr, gradOf, requireConstant, unbroadcast } from './context.js';

const x0 = (ctx: RuleContext) => ctx.node.input![0]!;
const y0 = (ctx: RuleContext) => ctx.node.output![0]!;

/** x > 0, computed as soon as x exists. */
function positive(ctx: RuleContext): string {
  const { b } = ctx;
  return b.hoist(() => b.op('Greater', [x0(ctx), b.float([0], [])]));
}

// y = x (x > 0), alpha x (else): dx = g (x > 0), alpha g (else).
export const leakyRelu: Rule = (ctx) => {
  const { b } = ctx;
  const g = gradOf(ctx);
  const alpha = floatAttr(ctx.node, 'alpha', 0.01);
  return [b.where(positive(ctx), g, b.op('Mul', [g, b.float([alpha], [])]))];
};

// y = x (x > 0), slope x (else), slope broadcast to x: dx = g (x > 0), slope g (else).
export const prelu: Rule = (ctx) => {
  requireConstant(ctx, [0], 'the slope must be a constant');
  const { b } = ctx;
  const g = gradOf(ctx);
  const sloped = b.op('Mul', [g, ctx.node.input![1]!]);
  return [unbroadcast(b, b.where(positive(ctx), g, sloped), ctx.shape(y0(ctx)), ctx.shape(x0(ctx)))];
};

// y = x (x > 0), alpha (e^x - 1) (else): dx = g (x > 0), g (y + alpha) (else).
export const elu: Rule = (ctx) => {
  const { b } = ctx;
  const g = gradOf(ctx);
  const alpha = floatAttr(ctx.node, 'alpha', 1);
  const slope = b.hoist(() => b.op('Add', [y0(ctx), b.float([alpha], [])]));
  return [b.where(positive(ctx), g, b.op('Mul', [g, slope]))];
};

// y = gamma x (x > 0), gamma alpha (e^x - 1) (else): dx = gamma g (x > 0), g (y + gamma alpha) (else).
export const selu: Rule = (ctx) => {
  const { b } = ctx;
  const g = gradOf(ctx);
  const alpha = floatAttr(ctx.node, 'alpha', 1.6732632);
  const gamma = floatAttr(ctx.node, 'gamma', 1.050701);
  const slope = b.hoist(() => b.op('Add', [y0(ctx), b.float([gamma * alpha], [])]));
  return [b.where(positive(ctx), b.op('Mul', [g, b.float([gamma], [])]), b.op('Mul', [g, slope]))];
};

// y = x (x > 0), alpha (e^(x / alpha) - 1) (else): dx = g (x > 0), g (y / alpha + 1) = g e^(x / alpha) (else).
export const celu: Rule = (ctx) => {
  const { b } = ctx;
  const g = gradOf(ctx);
  const alpha = floatAttr(ctx.node, 'alpha', 1);
  const slope = b.hoist(() => b.op('Add', [b.op('Mul', [y0(ctx), b.float([1 / alpha], [])]), b.float([1], [])]));
  return [b.where(positive(ctx), g, b.op('Mul', [g, slope]))];
};

// y = x (x > alpha), 0 (else): dx = g (x > alpha).
export const thresholdedRelu: Rule = (ctx) => {
  const { b } = ctx;
  const alpha = floatAttr(ctx.node, 'alpha', 1);
  return [
    b.mask(
      b.hoist(() => b.op('Greater', [x0(ctx), b.float([alpha], [])])),
      gradOf(ctx),
    ),
  ];
};

// y = max(0, min(1, alpha x + beta)): dx = alpha g where 0 < y < 1 (PyTorch's hardsigmoid backward
// is zero at the kinks too).
export const hardSigmoid: Rule = (ctx) => {
  const { b } = ctx;
  const alpha = floatAttr(ctx.node, 'alpha', 0.2);
  const y = y0(ctx);
  const inside = b.hoist(() =>
    b.op('And', [b.op('Greater', [y, b.float([0], [])]), b.op('Less', [y, b.float([1], [])])]),
  );
  return [b.mask(inside, b.op('Mul', [gradOf(ctx), b.float([alpha], [])]))];
};

// y = x hardsigmoid(x) with alpha 1/6, beta 1/2: dx = 0 (x < -3), g (x / 3 + 1/2) (-3 <= x <= 3), g
// (x > 3), as PyTorch's hardswish backward (-g / 2 at x = -3, 3 g / 2 at x = 3).
export const hardSwish: Rule = (ctx) => {
  const { b } = ctx;
  const x = x0(ctx);
  const slope = b.hoist(() => {
    const ramp = b.op('Add', [b.op('Mul', [x, b.float([1 / 3], [])]), b.float([0.5], [])]);
    const low = b.op('Less', [x, b.float([-3], [])]);
    const high = b.op('Greater', [x, b.float([3], [])]);
    return b.where(low, b.float([0], []), b.where(high, b.float([1], []), ramp));
  });
  return [b.op('Mul', [gradOf(ctx), slope])];
};
