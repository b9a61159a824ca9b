// Vector-Jacobian rules for the Reduce* ops over per-image axes (ReduceSum, ReduceMean, ReduceMax,
// ReduceMin, ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSumExp): the output gradient, with the
// reduced axes kept, is spread back over them, times the op's local derivative. The axes are an
// attribute before opset 13 (ReduceSum) or 18 (the others) and an optional input from then on.
import type { Rule, RuleContext } from './context.js';
import { GradientError, dataAxis, gradOf, intAttr, intsAttr, nodeLabel, optionalConstantInput } from './context.js';

interface Reduced {
  x: string;
  /** The reduced axes, sorted; the output gradient and output with those axes kept as size 1. */
  axes: number[];
  g: string;
  y: string;
  /** x's shape at batch size 1. */
  shape: number[];
}

function reduced(ctx: RuleContext, axesAsInputFrom: number): Reduced | undefined {
  const { b, node } = ctx;
  const x = node.input![0]!;
  const shape = ctx.shape(x);
  const rank = shape.length;
  const listed = b.opset >= axesAsInputFrom ? optionalConstantInput(ctx, 1, 'axes') : intsAttr(node, 'axes');
  if (listed === undefined || listed.length === 0) {
    if (intAttr(node, 'noop_with_empty_axes', 0) === 1) return undefined;
    throw new GradientError(`${nodeLabel(node)}: reducing over all axes (the batch included) is not supported`);
  }
  const axes = [...new Set(listed.map((a) => dataAxis(ctx, a, rank)))].sort((p, q) => p - q);
  const keep = intAttr(node, 'keepdims', 1) === 1;
  const y = node.output![0]!;
  return {
    x,
    axes,
    shape,
    g: keep ? gradOf(ctx) : b.unsqueeze(gradOf(ctx), axes),
    y: keep ? y : b.hoist(() => b.unsqueeze(y, axes)),
  };
}

/** g (reduced axes kept) spread over x's shape. */
function spread(ctx: RuleContext, r: Reduced): string {
  const { b } = ctx;
  const from = r.shape.map((v, i) => (r.axes.includes(i) ? 1 : v));
  return b.broadcast(r.g, from, r.shape, b.op('Shape', [r.x]));
}

// y = sum over the axes: dx = g spread back.
export const reduceSum: Rule = (ctx) => {
  const r = reduced(ctx, 13);
  return [r === undefined ? gradOf(ctx) : spread(ctx, r)];
};

// y = mean over the axes: dx = g / count, spread back.
export const reduceMean: Rule = (ctx) => {
  const r = reduced(ctx, 18);
  if (r === undefined) return [gradOf(ctx)];
  const count = r.axes.reduce((p, a) => p * r.shape[a]!, 1);
  return [ctx.b.op('Mul', [spread(ctx, r), ctx.b.float([1 / count], [])])];
};

/** ReduceMax / ReduceMin: the gradient goes to the elements equal to the result, shared among ties. */
function extremum(ctx: RuleContext, beaten: 'Less' | 'Greater'): string {
  const r = reduced(ctx, 18);
  if (r === undefined) return gradOf(ctx);
  const { b } = ctx;
  const wins = b.hoist(() => b.op('Not', [b.op(beaten, [r.x, r.y])]));
  const count = b.hoist(() => b.reduceSum(b.op('Cast', [wins], { to: 1 }), r.axes, true));
  return b.mask(wins, b.op('Div', [r.g, count]));
}

// y = max over the axes: dx = g [x == y] / #{x == y}, as PyTorch's amax.
export const reduceMax: Rule = (ctx) => [extremum(ctx, 'Less')];

// y = min over the axes: dx = g [x == y] / #{x == y}, as PyTorch's amin.
export const reduceMin: Rule = (ctx) => [extremum(ctx, 'Greater')];

// y = sum |x|: dx = g sign(x).
export const reduceL1: Rule = (ctx) => {
  const r = reduced(ctx, 18);
  if (r === undefined) return [gradOf(ctx)]; // noop_with_empty_axes: y = x
  const { b } = ctx;
  const sign = b.hoist(() => {
    if (b.opset >= 9) return b.op('Sign', [r.x]);
    const zero = b.float([0], []);
    const up = b.op('Cast', [b.op('Greater', [r.x, zero])], { to: 1 });
    return b.op('Sub', [up, b.op('Cast', [b.op('Less', [r.x, zero])], { to: 1 })]);
  });
  return [b.op('Mul', [r.g, sign])];
};

// y = sqrt(sum x^2): dx = g x / y, and 0 where y = 0 (PyTorch's norm backward).
export const reduceL2: Rule = (ctx) => {
  const r = reduced(ctx, 18);
  if (r === undefined) return [gradOf(ctx)]; // noop_with_empty_axes: y = x
  const { b } = ctx;
  const zero = b.float([0], []);
  const nonzero = b.hoist(() => b.op('Greater', [r.y, zero]));
  const safe = b.hoist(() => b.where(nonzero, r.y, b.float([1], [])));
  return [b.mask(nonzero, b.op('Mul', [b.op('Div', [r.g, safe]), r.x]))];
};

// y = sum x^2: dx = 2 g x.
export const reduceSumSquare: Rule = (ctx) => {
  const r = reduced(ctx, 18);
  if (r === undefined) return [gradOf(ctx)]; // noop_with_empty_axes: y = x
  const { b } = ctx;
  return [b.op('Mul', [b.op('Mul', [r.g, b.float([2], [])]), r.x])];
};

// y = log sum e^x: dx = g e^(x - y) (a softmax over the axes).
export const reduceLogSumExp: Rule = (ctx) => {
  const r = reduced(ctx, 18);
  if (r === undefined) return [gradOf(ctx)]; // noop_with_empty_axes: y = x
  const { b } = ctx;
  const weights = b.hoist(() => b.op('Exp', [b.op('Sub', [r.x, r.y])]));
  return [b.op('Mul', [r.g, weights])];
};
