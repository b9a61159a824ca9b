// Vector-Jacobian rules for ops that select, join or place values: Concat, Split, Slice, Gather
// (constant indices), Pad (constant mode), Expand, Where, and the float-to-float Cast. Axes are
// per-image ones: the batch axis has no static size, so slicing or gathering along it is refused.
import type { Rule, RuleContext } from './context.js';
import {
  GradientError,
  constantInput,
  dataAxis,
  gradOf,
  intAttr,
  intsAttr,
  nodeLabel,
  optionalConstantInput,
  requireConstant,
  stringAttr,
  unbroadcast,
} from './context.js';

// y = concat(x_i, axis): dx_i is g's slice at x_i's offset.
export const concat: Rule = (ctx) => {
  const { b, node } = ctx;
  const inputs = node.input!;
  const axis = dataAxis(ctx, intAttr(node, 'axis', 0), ctx.shape(node.output![0]!).length);
  const g = gradOf(ctx);
  let offset = 0;
  return inputs.map((name, i) => {
    const size = ctx.shape(name)[axis]!;
    const start = offset;
    offset += size;
    return ctx.needs[i] ? b.op('Slice', [g, b.int64([start]), b.int64([start + size]), b.int64([axis])]) : undefined;
  });
};

// y_i = split(x): dx = concat(g_i), zeros for the outputs that receive no gradient.
export const split: Rule = (ctx) => {
  const { b, node } = ctx;
  const axis = dataAxis(ctx, intAttr(node, 'axis', 0), ctx.shape(node.input![0]!).length);
  const parts = node.output!.map((out, i) => ctx.gradOutputs[i] ?? b.op('ConstantOfShape', [b.op('Shape', [out])]));
  return [parts.length === 1 ? parts[0]! : b.op('Concat', parts, { axis })];
};

/** The indices that Slice reads along one axis of size `dim`, clamped as the ONNX spec says. */
function sliceIndices(start: number, end: number, step: number, dim: number): number[] {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  if (step > 0) {
    start = clamp(start, 0, dim);
    end = clamp(end, 0, dim);
  } else {
    start = clamp(start, 0, dim - 1);
    end = clamp(end, -1, dim - 1);
  }
  const out: number[] = [];
  for (let i = start; step > 0 ? i < end : i > end; i += step) out.push(i);
  return out;
}

// y = slice(x): each sliced axis in turn puts g back at the read indices, zeros elsewhere: Pad
// for unit steps, ScatterElements otherwise.
export const slice: Rule = (ctx) => {
  requireConstant(ctx, [0], 'starts, ends, axes and steps must be constants');
  const { b, node } = ctx;
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const starts = constantInput(ctx, 1, 'starts');
  const ends = constantInput(ctx, 2, 'ends');
  const axes = optionalConstantInput(ctx, 3, 'axes') ?? starts.map((_, i) => i);
  const steps = optionalConstantInput(ctx, 4, 'steps') ?? starts.map(() => 1);
  const current = [...ctx.shape(node.output![0]!)]; // per-axis sizes of the gradient so far
  let g = gradOf(ctx);
  axes.forEach((rawAxis, k) => {
    const a = rawAxis < 0 ? rawAxis + rank : rawAxis;
    const dim = xShape[a]!;
    const indices = sliceIndices(starts[k]!, ends[k]!, steps[k]!, dim);
    if (indices.length === dim && indices.every((v, i) => v === i)) return; // the whole axis
    dataAxis(ctx, a, rank);
    if (indices.length === 0) throw new GradientError(`${nodeLabel(node)}: an empty slice has no gradient to place`);
    if (steps[k] === 1) {
      const pads = new Array<number>(2 * rank).fill(0);
      pads[a] = indices[0]!;
      pads[a + rank] = dim - 1 - indices[indices.length - 1]!;
      g = b.op('Pad', [g, b.int64(pads)]);
    } else {
      const indexShape = current.map((_, i) => (i === a ? indices.length : 1));
      const where = b.op('Expand', [b.int64(indices, indexShape), b.op('Shape', [g])]);
      current[a] = dim;
      const shape = b.op(
        'Concat',
        [b.op('Slice', [b.op('Shape', [g]), b.int64([0]), b.int64([1])]), b.int64(current.slice(1))],
        { axis: 0 },
      );
      g = b.op('ScatterElements', [b.op('ConstantOfShape', [shape]), where, g], { axis: a });
    }
    current[a] = dim;
  });
  return [g];
};

// y = gather(x, indices, axis) with constant indices: g is contracted with a one-hot matrix
// [indices, x's axis] (a MatMul with the axis moved last), which also adds repeated indices.
export const gather: Rule = (ctx) => {
  requireConstant(ctx, [0], 'the indices must be constants');
  const { b, node } = ctx;
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const axis = dataAxis(ctx, intAttr(node, 'axis', 0), rank);
  const dim = xShape[axis]!;
  const indices = constantInput(ctx, 1, 'indices').map((i) => (i < 0 ? i + dim : i));
  const hot = new Array<number>(indices.length * dim).fill(0);
  indices.forEach((v, r) => {
    hot[r * dim + v] = 1;
  });
  const suffix = xShape.slice(axis + 1);
  const grouped = b.op('Reshape', [
    gradOf(ctx),
    b.int64([...new Array<number>(axis).fill(0), indices.length, ...suffix]),
  ]);
  const onehot = b.float(hot, [indices.length, dim]);
  if (suffix.length === 0) return [b.op('MatMul', [grouped, onehot])];
  const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis), axis];
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => {
    inverse[p] = i;
  });
  return [b.op('Transpose', [b.op('MatMul', [b.op('Transpose', [grouped], { perm }), onehot])], { perm: inverse })];
};

// y = pad(x) in constant mode: dx is g with the padding sliced off.
export const pad: Rule = (ctx) => {
  requireConstant(ctx, [0], 'pads and the constant value must be constants');
  const { b, node } = ctx;
  const mode = stringAttr(node, 'mode', 'constant');
  if (mode !== 'constant')
    throw new GradientError(`${nodeLabel(node)}: Pad mode '${mode}' is not supported (only 'constant')`);
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const pads = b.opset >= 11 ? constantInput(ctx, 1, 'pads') : (intsAttr(node, 'pads') ?? []);
  const axes = (optionalConstantInput(ctx, 3, 'axes') ?? Array.from({ length: pads.length / 2 }, (_, i) => i)).map(
    (a) => (a < 0 ? a + rank : a),
  );
  const starts: number[] = [];
  const ends: number[] = [];
  const sliced: number[] = [];
  axes.forEach((a, k) => {
    const before = pads[k]!;
    const after = pads[k + axes.length]!;
    if (before === 0 && after === 0) return;
    if (before < 0 || after < 0)
      throw new GradientError(`${nodeLabel(node)}: negative pads (cropping) are not supported`);
    dataAxis(ctx, a, rank);
    starts.push(before);
    ends.push(before + xShape[a]!);
    sliced.push(a);
  });
  if (sliced.length === 0) return [gradOf(ctx)];
  return [b.op('Slice', [gradOf(ctx), b.int64(starts), b.int64(ends), b.int64(sliced)])];
};

// y = expand(x, shape): dx sums g over the broadcast axes.
export const expand: Rule = (ctx) => [
  unbroadcast(ctx.b, gradOf(ctx), ctx.shape(ctx.node.output![0]!), ctx.shape(ctx.node.input![0]!)),
];

// y = where(c, a, b): g goes to a where c holds, to b elsewhere; c itself gets none.
export const where: Rule = (ctx) => {
  const { b, node } = ctx;
  const [c, p, q] = node.input as [string, string, string];
  const g = gradOf(ctx);
  const zero = b.float([0], []);
  const out = ctx.shape(node.output![0]!);
  return [
    undefined,
    ctx.needs[1] ? unbroadcast(b, b.op('Where', [c, g, zero]), out, ctx.shape(p)) : undefined,
    ctx.needs[2] ? unbroadcast(b, b.op('Where', [c, zero, g]), out, ctx.shape(q)) : undefined,
  ];
};

// Only float32 -> float32 casts lie on a differentiable path here: the identity.
export const cast: Rule = (ctx: RuleContext) => {
  const to = intAttr(ctx.node, 'to', 0);
  if (to !== 1)
    throw new GradientError(`${nodeLabel(ctx.node)}: Cast to type ${to} is not supported (only float32 -> float32)`);
  return [gradOf(ctx)];
};
