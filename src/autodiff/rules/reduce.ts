// Vector-Jacobian rules for ReduceMean and ReduceSum over per-image axes: the gradient is
// spread back over the reduced axes (divided by their size for the mean).
import type { Rule, RuleContext } from './context.js';
import { GradientError, dataAxis, gradOf, intAttr, intsAttr, nodeLabel, optionalConstantInput } from './context.js';

function reduceBack(ctx: RuleContext, mean: boolean, axesAsInputFrom: number): string {
  const { b, node } = ctx;
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const listed = b.opset >= axesAsInputFrom ? optionalConstantInput(ctx, 1, 'axes') : intsAttr(node, 'axes');
  if (listed === undefined || listed.length === 0) {
    if (intAttr(node, 'noop_with_empty_axes', 0) === 1) return gradOf(ctx);
    throw new GradientError(`${nodeLabel(node)}: reducing over all axes (the batch included) is not supported`);
  }
  const axes = [...new Set(listed.map((a) => dataAxis(ctx, a, rank)))].sort((p, q) => p - q);
  const g = intAttr(node, 'keepdims', 1) === 1 ? gradOf(ctx) : b.unsqueeze(gradOf(ctx), axes);
  const spread = b.op('Expand', [g, b.op('Shape', [x])]);
  if (!mean) return spread;
  const count = axes.reduce((p, a) => p * xShape[a]!, 1);
  return b.op('Mul', [spread, b.float([1 / count], [])]);
}

export const reduceMean: Rule = (ctx) => [reduceBack(ctx, true, 18)];
export const reduceSum: Rule = (ctx) => [reduceBack(ctx, false, 13)];
