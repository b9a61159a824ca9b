// Vector-Jacobian rules for the dense layers Gemm and MatMul, with the data operand first and
// a constant weight (what classifiers export).
import type { Rule } from './context.js';
import { GradientError, floatAttr, gradOf, intAttr, nodeLabel, requireConstant } from './context.js';

// Y = alpha * op(A) op(B) + beta * C. With op(A) = A: dA = alpha * g op(B)^T; with op(A) = A^T:
// dA = alpha * op(B) g^T. Gemm's own transpose flags express both without Transpose nodes.
export const gemm: Rule = (ctx) => {
  requireConstant(ctx, [0], 'only the first operand may depend on the input');
  const g = gradOf(ctx);
  const w = ctx.node.input![1]!;
  const alpha = floatAttr(ctx.node, 'alpha', 1);
  const transA = intAttr(ctx.node, 'transA', 0);
  const transB = intAttr(ctx.node, 'transB', 0);
  const dA = transA === 0
    ? ctx.b.op('Gemm', [g, w], { alpha: { float: alpha }, transB: 1 - transB })
    : ctx.b.op('Gemm', [w, g], { alpha: { float: alpha }, transA: transB, transB: 1 });
  return [dA];
};

// Y = A B with B a constant matrix [K, N]: dA = g B^T.
export const matmul: Rule = (ctx) => {
  requireConstant(ctx, [0], 'only the first operand may depend on the input');
  const w = ctx.node.input![1]!;
  const rank = ctx.shape(w).length;
  if (rank !== 2) throw new GradientError(`${nodeLabel(ctx.node)}: the constant operand has rank ${rank}; only matrices are supported`);
  return [ctx.b.op('MatMul', [gradOf(ctx), ctx.b.op('Transpose', [w], { perm: [1, 0] })])];
};
