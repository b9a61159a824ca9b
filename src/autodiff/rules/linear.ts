// Vector-Jacobian rules for the dense layers: Gemm with the data operand first and a constant
// weight (what classifiers export), and MatMul with either or both operands data.
import type { Rule } from './context.js';
import { GradientError, floatAttr, gradOf, intAttr, nodeLabel, requireConstant, unbroadcast } from './context.js';

// Y = alpha * op(A) op(B) + beta * C. With op(A) = A: dA = alpha * g op(B)^T; with op(A) = A^T:
// dA = alpha * op(B) g^T. Gemm's own transpose flags express both without Transpose nodes.
export const gemm: Rule = (ctx) => {
  requireConstant(ctx, [0], 'only the first operand may depend on the input');
  const g = gradOf(ctx);
  const w = ctx.node.input![1]!;
  const alpha = floatAttr(ctx.node, 'alpha', 1);
  const transA = intAttr(ctx.node, 'transA', 0);
  const transB = intAttr(ctx.node, 'transB', 0);
  const dA =
    transA === 0
      ? ctx.b.op('Gemm', [g, w], { alpha: { float: alpha }, transB: 1 - transB })
      : ctx.b.op('Gemm', [w, g], { alpha: { float: alpha }, transA: transB, transB: 1 });
  return [dA];
};

/** The permutation that swaps the last two axes. */
function swapLast(rank: number): number[] {
  const perm = Array.from({ length: rank }, (_, i) => i);
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1]!, perm[rank - 2]!];
  return perm;
}

// Y = A B (numpy matmul: stacked matrices, broadcast leading axes), either operand data, as in
// attention's Q K^T and A V: dA = g B^T and dB = A^T g, each summed over the leading axes its
// operand was broadcast along. A vector B [K] gives Y [..., M] and dA = g[..., M, 1] * B.
export const matmul: Rule = (ctx) => {
  const { b, node } = ctx;
  const [a, w] = node.input as [string, string];
  const aShape = ctx.shape(a);
  const wShape = ctx.shape(w);
  const yShape = ctx.shape(node.output![0]!);
  const g = gradOf(ctx);
  if (aShape.length < 2)
    throw new GradientError(`${nodeLabel(node)}: a first operand of rank ${aShape.length} is not supported`);
  if (wShape.length === 1) {
    const column = b.unsqueeze(g, [yShape.length]);
    return [
      ctx.needs[0] ? b.op('Mul', [column, w]) : undefined,
      ctx.needs[1]
        ? b.reduceSum(
            b.op('Mul', [column, a]),
            Array.from({ length: aShape.length - 1 }, (_, i) => i),
            false,
          )
        : undefined,
    ];
  }
  const lead = yShape.slice(0, -2);
  return [
    ctx.needs[0]
      ? unbroadcast(
          b,
          b.op('MatMul', [g, b.op('Transpose', [w], { perm: swapLast(wShape.length) })]),
          [...lead, ...aShape.slice(-2)],
          aShape,
        )
      : undefined,
    ctx.needs[1]
      ? unbroadcast(
          b,
          b.op('MatMul', [b.op('Transpose', [a], { perm: swapLast(aShape.length) }), g]),
          [...lead, ...wShape.slice(-2)],
          wShape,
        )
      : undefined,
  ];
};
