// Vector-Jacobian rules for ops that select, join or place values: Concat, Split, Slice, Gather
// (constant indices), Pad (constant mode), Tile, Expand, Where, and the float-to-float Cast. Axes
// are per-image ones: the batch axis has no static size, so slicing or gathering along it is refused.
// Slice and Pad take attributes before opsets 10 and 11, inputs from then on; Split's sizes do not
// matter to its gradient.
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
    return ctx.needs[i] ? b.slice(g, [start], [start + size], [axis]) : undefined;
  });
};

// y_i = split(x): dx = concat(g_i), zeros for the outputs that receive no gradient.
export const split: Rule = (ctx) => {
  const { b, node } = ctx;
  const axis = dataAxis(ctx, intAttr(node, 'axis', 0), ctx.shape(node.input![0]!).length);
  const parts = node.output!.map((out, i) => ctx.gradOutputs[i] ?? b.zerosLike(out));
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
// for unit steps, a one-hot MatMul otherwise.
export const slice: Rule = (ctx) => {
  requireConstant(ctx, [0], 'starts, ends, axes and steps must be constants');
  const { b, node } = ctx;
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const inputs = b.opset >= 10;
  const starts = inputs ? constantInput(ctx, 1, 'starts') : (intsAttr(node, 'starts') ?? []);
  const ends = inputs ? constantInput(ctx, 2, 'ends') : (intsAttr(node, 'ends') ?? []);
  const axes = (inputs ? optionalConstantInput(ctx, 3, 'axes') : intsAttr(node, 'axes')) ?? starts.map((_, i) => i);
  const steps = (inputs ? optionalConstantInput(ctx, 4, 'steps') : undefined) ?? starts.map(() => 1);
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
      g = b.pad(g, pads);
    } else g = placeAlong(ctx, g, current.length, a, indices, dim);
    current[a] = dim;
  });
  return [g];
};

/**
 * g, whose axis `axis` holds the values read at `indices` of an axis of size `dim`, put back at
 * those indices with zeros elsewhere: contracted with a one-hot matrix [indices, dim] (a MatMul
 * with the axis moved last), which also adds repeated indices.
 */
function placeAlong(ctx: RuleContext, g: string, rank: number, axis: number, indices: number[], dim: number): string {
  const { b } = ctx;
  const hot = new Array<number>(indices.length * dim).fill(0);
  indices.forEach((v, r) => {
    hot[r * dim + v]! += 1;
  });
  const onehot = b.float(hot, [indices.length, dim]);
  if (axis === rank - 1) return b.op('MatMul', [g, onehot]);
  const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis), axis];
  const inverse = new Array<number>(rank);
  perm.forEach((p, i) => {
    inverse[p] = i;
  });
  return b.op('Transpose', [b.op('MatMul', [b.op('Transpose', [g], { perm }), onehot])], { perm: inverse });
}

// y = gather(x, indices, axis) with constant indices: g, its index axes merged into one, is put
// back along the axis by the one-hot MatMul of placeAlong, which adds repeated indices.
export const gather: Rule = (ctx) => {
  requireConstant(ctx, [0], 'the indices must be constants');
  const { b, node } = ctx;
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const axis = dataAxis(ctx, intAttr(node, 'axis', 0), rank);
  const dim = xShape[axis]!;
  const indices = constantInput(ctx, 1, 'indices').map((i) => (i < 0 ? i + dim : i));
  // g has the index tensor's axes where x has `axis`: none for a scalar index, several to merge into one.
  const indexRank = ctx.shape(node.input![1]!).length;
  let grouped = gradOf(ctx);
  if (indexRank === 0) grouped = b.unsqueeze(grouped, [axis]);
  else if (indexRank > 1) {
    const xDims = b.op('Shape', [x]);
    const target = b.op(
      'Concat',
      [b.slice(xDims, [0], [axis], [0]), b.int64([indices.length]), b.slice(xDims, [axis + 1], [rank], [0])],
      { axis: 0 },
    );
    grouped = b.op('Reshape', [grouped, target]);
  }
  return [placeAlong(ctx, grouped, rank, axis, indices, dim)];
};

// y = tile(x, repeats) with a constant repeats and the batch axis not repeated: g viewed as
// [N, r_1, d_1, r_2, d_2, ...] summed over the r axes.
export const tile: Rule = (ctx) => {
  requireConstant(ctx, [0], 'repeats must be a constant');
  const { b, node } = ctx;
  const xShape = ctx.shape(node.input![0]!);
  const repeats = constantInput(ctx, 1, 'repeats');
  if (repeats[0] !== 1) throw new GradientError(`${nodeLabel(node)}: tiling along the batch axis 0 is not supported`);
  if (repeats.every((r) => r === 1)) return [gradOf(ctx)];
  const view = [0, ...xShape.slice(1).flatMap((d, i) => [repeats[i + 1]!, d])];
  const summed = xShape.slice(1).map((_, i) => 1 + 2 * i);
  return [b.reduceSum(b.op('Reshape', [gradOf(ctx), b.int64(view)]), summed, false)];
};

/** Where each output position along a padded axis reads from in reflect, edge or wrap mode. */
function padSources(mode: string, before: number, dim: number, after: number): number[] {
  return Array.from({ length: before + dim + after }, (_, p) => {
    const i = p - before;
    if (mode === 'edge') return Math.min(Math.max(i, 0), dim - 1);
    if (mode === 'wrap') return ((i % dim) + dim) % dim;
    let r = i; // reflect: mirrored about the edge elements, which are not repeated
    const period = 2 * (dim - 1);
    r = period === 0 ? 0 : ((r % period) + period) % period;
    return r < dim ? r : period - r;
  });
}

// y = pad(x): in constant mode dx is g with the padding sliced off (and zeros where negative pads
// cropped x); in reflect, edge and wrap modes every output position adds its gradient to the input
// element it copies, axis by axis (the modes are separable), by the one-hot MatMul of placeAlong.
export const pad: Rule = (ctx) => {
  requireConstant(ctx, [0], 'pads and the constant value must be constants');
  const { b, node } = ctx;
  const mode = stringAttr(node, 'mode', 'constant');
  if (!['constant', 'reflect', 'edge', 'wrap'].includes(mode))
    throw new GradientError(`${nodeLabel(node)}: Pad mode '${mode}' is not supported`);
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const rank = xShape.length;
  const pads = b.opset >= 11 ? constantInput(ctx, 1, 'pads') : (intsAttr(node, 'pads') ?? []);
  const axes = (optionalConstantInput(ctx, 3, 'axes') ?? Array.from({ length: pads.length / 2 }, (_, i) => i)).map(
    (a) => (a < 0 ? a + rank : a),
  );
  let g = gradOf(ctx);
  const current = [...ctx.shape(node.output![0]!)];
  const starts: number[] = [];
  const ends: number[] = [];
  const sliced: number[] = [];
  const crops = new Array<number>(2 * rank).fill(0);
  axes.forEach((a, k) => {
    const before = pads[k]!;
    const after = pads[k + axes.length]!;
    if (before === 0 && after === 0) return;
    dataAxis(ctx, a, rank);
    const dim = xShape[a]!;
    if (mode !== 'constant') {
      if (before < 0 || after < 0)
        throw new GradientError(`${nodeLabel(node)}: negative pads (cropping) in ${mode} mode are not supported`);
      g = placeAlong(ctx, g, rank, a, padSources(mode, before, dim, after), dim);
      current[a] = dim;
      return;
    }
    // Constant mode: keep what came from x, then zeros for what negative pads cut off.
    const from = Math.max(before, 0);
    const to = current[a]! - Math.max(after, 0);
    if (from > 0 || to < current[a]!) {
      starts.push(from);
      ends.push(to);
      sliced.push(a);
    }
    crops[a] = Math.max(-before, 0);
    crops[a + rank] = Math.max(-after, 0);
  });
  if (sliced.length > 0) g = b.slice(g, starts, ends, sliced);
  if (crops.some((c) => c > 0)) g = b.pad(g, crops);
  return [g];
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
    ctx.needs[1] ? unbroadcast(b, b.where(c, g, zero), out, ctx.shape(p)) : undefined,
    ctx.needs[2] ? unbroadcast(b, b.where(c, zero, g), out, ctx.shape(q)) : undefined,
  ];
};

// Only float32 -> float32 casts lie on a differentiable path here: the identity.
export const cast: Rule = (ctx: RuleContext) => {
  const to = intAttr(ctx.node, 'to', 0);
  if (to !== 1)
    throw new GradientError(`${nodeLabel(ctx.node)}: Cast to type ${to} is not supported (only float32 -> float32)`);
  return [gradOf(ctx)];
};
