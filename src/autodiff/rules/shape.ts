// Vector-Jacobian rules for ops that only rearrange values: reshapes send the gradient back to
// the input's runtime shape (so the batch dimension stays symbolic); Transpose inverts its perm.
import type { Rule } from './context.js';
import { gradOf, intAttr, intsAttr } from './context.js';

export const reshapeBack: Rule = (ctx) => {
  const x = ctx.node.input![0]!;
  return [ctx.b.op('Reshape', [gradOf(ctx), ctx.b.op('Shape', [x])])];
};

// Flatten at axis 1 of a feature map ([N, C, H, W], the batch first as Conv and pooling have it)
// goes back to a static shape but for the batch axis (0 copies it): shape inference then knows
// the gradient's shape, which ONNX Runtime needs before it keeps the elementwise ops on it in its
// blocked (NCHWc) layout. Elsewhere the batch may sit in any axis: the runtime shape is used.
export const flatten: Rule = (ctx) => {
  const x = ctx.node.input![0]!;
  const xShape = ctx.shape(x);
  if (intAttr(ctx.node, 'axis', 1) !== 1 || xShape.length !== 4 || xShape.some((d) => d === 0)) return reshapeBack(ctx);
  return [ctx.b.op('Reshape', [gradOf(ctx), ctx.b.int64([0, ...xShape.slice(1)])])];
};

// y = transpose(x, perm): dx = transpose(g, perm^-1); the default perm reverses the axes.
export const transpose: Rule = (ctx) => {
  const rank = ctx.shape(ctx.node.input![0]!).length;
  const perm = intsAttr(ctx.node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => {
    inverse[p] = i;
  });
  return [ctx.b.op('Transpose', [gradOf(ctx)], { perm: inverse })];
};
