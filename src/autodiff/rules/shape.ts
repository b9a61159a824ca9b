// Vector-Jacobian rules for ops that only rearrange values: reshapes send the gradient back to
// the input's runtime shape (so the batch dimension stays symbolic); Transpose inverts its perm.
import type { Rule } from './context.js';
import { gradOf, intsAttr } from './context.js';

export const reshapeBack: Rule = (ctx) => {
  const x = ctx.node.input![0]!;
  return [ctx.b.op('Reshape', [gradOf(ctx), ctx.b.op('Shape', [x])])];
};

// y = transpose(x, perm): dx = transpose(g, perm^-1); the default perm reverses the axes.
export const transpose: Rule = (ctx) => {
  const rank = ctx.shape(ctx.node.input![0]!).length;
  const perm = intsAttr(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => { inverse[p] = i; });
  return [ctx.b.op('Transpose', [gradOf(ctx)], { perm: inverse })];
};
