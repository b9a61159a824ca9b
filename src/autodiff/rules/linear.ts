// Vector-Jacobian rules for the dense layers: Gemm with the data operand first and a constant
// weight (what classifiers export), MatMul with either or both operands data, and Einsum.
import type { Rule, RuleContext } from './context.js';
import {
  GradientError,
  floatAttr,
  gradOf,
  intAttr,
  nodeLabel,
  requireConstant,
  stringAttr,
  unbroadcast,
} from './context.js';

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
      ? ctx.b.gemm(g, w, { alpha: { float: alpha }, transB: 1 - transB })
      : ctx.b.gemm(w, g, { alpha: { float: alpha }, transA: transB, transB: 1 });
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

/** An Einsum equation with every operand's subscripts spelled out (the ellipsis replaced by letters). */
function parseEinsum(
  ctx: RuleContext,
  equation: string,
  ranks: number[],
  outRank: number,
): { terms: string[]; out: string } {
  const fail = (why: string) => new GradientError(`${nodeLabel(ctx.node)}: equation '${equation}': ${why}`);
  const [lhs, rhs] = equation.replace(/\s+/g, '').split('->') as [string, string | undefined];
  const raw = lhs.split(',');
  if (raw.length !== ranks.length) throw fail(`${raw.length} terms for ${ranks.length} inputs`);
  const used = new Set(equation.replace(/[^A-Za-z]/g, ''));
  const spare = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'.split('').filter((c) => !used.has(c));
  const ellipsisRank = Math.max(0, ...raw.map((t, i) => (t.includes('...') ? ranks[i]! - (t.length - 3) : 0)));
  const dots = spare.slice(0, ellipsisRank).join('');
  const expand = (t: string, rank: number) =>
    t.includes('...') ? t.replace('...', dots.slice(ellipsisRank - (rank - (t.length - 3)))) : t;
  const terms = raw.map((t, i) => expand(t, ranks[i]!));
  let out: string;
  if (rhs !== undefined)
    out = rhs.includes('...') ? rhs.replace('...', dots.slice(ellipsisRank - (outRank - (rhs.length - 3)))) : rhs;
  else {
    // Implicit output: the ellipsis, then the letters that appear once, in alphabetical order.
    const counts = new Map<string, number>();
    for (const t of raw) for (const c of t.replace('...', '')) counts.set(c, (counts.get(c) ?? 0) + 1);
    out =
      dots +
      [...counts]
        .filter(([, n]) => n === 1)
        .map(([c]) => c)
        .sort()
        .join('');
  }
  terms.forEach((t, i) => {
    if (new Set(t).size !== t.length) throw fail(`a repeated subscript in operand ${i} (a diagonal) is not supported`);
  });
  return { terms, out };
}

// y = einsum(x_1, ..., x_n): dx_i = einsum(g, x_j for j != i) onto x_i's subscripts; subscripts of
// x_i found in neither g nor the other operands (summed within x_i alone) are broadcast back.
export const einsum: Rule = (ctx) => {
  const { b, node } = ctx;
  const inputs = node.input!;
  const equation = stringAttr(node, 'equation', '');
  const y = node.output![0]!;
  const { terms, out } = parseEinsum(
    ctx,
    equation,
    inputs.map((x) => ctx.shape(x).length),
    ctx.shape(y).length,
  );
  const g = gradOf(ctx);
  return inputs.map((x, i) => {
    if (!ctx.needs[i]) return undefined;
    const others = terms.filter((_, j) => j !== i);
    const available = new Set([...out, ...others.join('')]);
    const target = terms[i]!;
    const kept = [...target].filter((c) => available.has(c)).join('');
    const operands = [g, ...inputs.filter((_, j) => j !== i)];
    const partial = b.op('Einsum', operands, { equation: `${[out, ...others].join(',')}->${kept}` });
    if (kept.length === target.length) return partial;
    const shape = ctx.shape(x);
    const missing = [...target].flatMap((c, a) => (available.has(c) ? [] : [a]));
    const from = shape.map((v, a) => (missing.includes(a) ? 1 : v));
    return b.broadcast(b.unsqueeze(partial, missing), from, shape, b.op('Shape', [x]));
  });
};
