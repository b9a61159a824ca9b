// Vector-Jacobian rules for pooling (MaxPool, GlobalAveragePool, AveragePool). MaxPool routes each output's gradient
// to the input element
// that won its window: a duplicate MaxPool node supplies the winners' flat indices and
// ScatterElements(reduction='add') accumulates, which, unlike MaxUnpool, also adds where
// overlapping windows (3x3 stride 2) share a winner.
import type { Node } from '../../model/onnx-schema.js';
import type { Rule, RuleContext } from './context.js';
import { GradientError, gradOf, intAttr, intsAttr, nodeLabel, stringAttr } from './context.js';
import { explicitPads } from './conv.js';

/**
 * Whether all of a Relu's gradient comes through one MaxPool (its only reader, its output not
 * seeded). The MaxPool rule then applies the ReLU's mask on the pooled values: each window's winner
 * is positive exactly when the window's maximum is, so the mask is the same where any gradient goes,
 * and it is 1/4 the size for 2x2 windows. The Relu rule passes its gradient on.
 */
export function reluFeedsMaxPool(ctx: RuleContext, relu: Node, maxPool: Node): boolean {
  const y = relu.output?.[0];
  if (relu.opType !== 'Relu' || maxPool.opType !== 'MaxPool' || y === undefined || ctx.seeded(y)) return false;
  const readers = ctx.readers(y);
  return readers.length === 1 && readers[0] === maxPool;
}

export const maxPool: Rule = (ctx) => {
  const { b, node } = ctx;
  if (b.opset < 16) {
    throw new GradientError(
      `${nodeLabel(node)}: the MaxPool gradient needs ScatterElements with reduction='add' (opset >= 16), but the ` +
        `model imports opset ${b.opset}; re-export it with opset 16 or later`,
    );
  }
  if (intAttr(node, 'storage_order', 0) !== 0)
    throw new GradientError(`${nodeLabel(node)}: storage_order=1 (column-major indices) is not supported`);
  const x = node.input![0]!;
  // Indices index x flattened whole (batch and channel offsets included), so one flat scatter suffices.
  const [pooled, indices] = b.duplicate(node, 2) as [string, string];
  let g = gradOf(ctx);
  const relu = ctx.producer(x);
  if (relu !== undefined && reluFeedsMaxPool(ctx, relu, node)) {
    const zero = b.float([0], []);
    g = b.op('Where', [b.hoist(() => b.op('Greater', [pooled, zero])), g, zero]);
  }
  const k = intsAttr(node, 'kernel_shape') ?? [];
  const strides = intsAttr(node, 'strides') ?? k.map(() => 1);
  const dilations = intsAttr(node, 'dilations') ?? k.map(() => 1);
  if (intAttr(node, 'ceil_mode', 0) === 0 && k.every((ki, i) => (ki - 1) * dilations[i]! + 1 <= strides[i]!)) {
    // Windows do not overlap, so no two outputs share a winner: MaxUnpool places each gradient
    // at its winner and needs no scatter-add (ONNX Runtime's ScatterElements with a reduction
    // is serial and copies its zero-filled data input: 7 of the CNN's 33 ms). ONNX Runtime's
    // MaxUnpool rejects the partial windows of ceil_mode, which keep the scatter.
    return [b.op('MaxUnpool', [g, indices, b.op('Shape', [x])], { kernel_shape: k, strides })];
  }
  const flat = b.int64([-1]);
  const size = b.op('Reshape', [b.op('Size', [x]), b.int64([1])]);
  const zeros = b.op('ConstantOfShape', [size]); // float32 zeros by default
  const scattered = b.op('ScatterElements', [zeros, b.op('Reshape', [indices, flat]), b.op('Reshape', [g, flat])], {
    axis: 0,
    reduction: 'add',
  });
  return [b.op('Reshape', [scattered, b.op('Shape', [x])])];
};

// y = mean over the spatial axes: every input element gets g / (number of spatial positions).
// The target shape is a constant ([N, C, 1, 1] broadcast against [1, 1, H, W]) rather than
// Shape(x), so that shape inference knows the gradient's shape (see the Flatten rule).
export const globalAveragePool: Rule = (ctx) => {
  const x = ctx.node.input![0]!;
  const area = ctx
    .shape(x)
    .slice(2)
    .reduce((p, v) => p * v, 1);
  const spread = ctx.b.op('Expand', [gradOf(ctx), ctx.b.int64([1, 1, ...ctx.shape(x).slice(2)])]);
  return [ctx.b.op('Mul', [spread, ctx.b.float([1 / area], [])])];
};

// y = average of each window: every output's gradient, divided by its window's divisor, is
// spread evenly over the window by a depthwise ConvTranspose with a kernel of ones. The divisor
// per output position is computed here as ONNX Runtime does (count_include_pad or not, windows
// clipped by ceil_mode), a product of per-axis counts.
export const averagePool: Rule = (ctx) => {
  const { b, node } = ctx;
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const yShape = ctx.shape(node.output![0]!);
  const spatial = xShape.length - 2;
  const xs = xShape.slice(2);
  const ys = yShape.slice(2);
  const k = intsAttr(node, 'kernel_shape')!;
  const s = intsAttr(node, 'strides') ?? new Array<number>(spatial).fill(1);
  if ((intsAttr(node, 'dilations') ?? []).some((d) => d !== 1))
    throw new GradientError(`${nodeLabel(node)}: dilated AveragePool is not supported`);
  const pads = explicitPads(
    stringAttr(node, 'auto_pad', 'NOTSET'),
    intsAttr(node, 'pads'),
    xs,
    ys,
    k,
    s,
    new Array<number>(spatial).fill(1),
  );
  const includePad = intAttr(node, 'count_include_pad', 0) === 1;
  const counts = ys.map((yi, i) =>
    Array.from({ length: yi }, (_, o) => {
      let start = o * s[i]! - pads[i]!;
      let end = Math.min(start + k[i]!, xs[i]! + pads[i + spatial]!);
      const padded = end - start;
      start = Math.max(start, 0);
      end = Math.min(end, xs[i]!);
      return includePad ? padded : end - start;
    }),
  );
  const divisor: number[] = [];
  const size = ys.reduce((p, v) => p * v, 1);
  for (let flat = 0; flat < size; flat++) {
    let rest = flat;
    let count = 1;
    for (let i = spatial - 1; i >= 0; i--) {
      count *= counts[i]![rest % ys[i]!]!;
      rest = Math.floor(rest / ys[i]!);
    }
    divisor.push(1 / count);
  }
  const scaled = b.op('Mul', [gradOf(ctx), b.float(divisor, ys)]);
  // ConvTranspose yields s*(y-1) + k - pad_begin - pad_end + output_padding values per axis;
  // the end pad (or output_padding) makes that exactly x's size, cropping windows past the edge.
  const endPads: number[] = [];
  const outputPadding: number[] = [];
  xs.forEach((xi, i) => {
    const excess = s[i]! * (ys[i]! - 1) + k[i]! - pads[i]! - xi;
    endPads.push(Math.max(excess, 0));
    outputPadding.push(Math.max(-excess, 0));
  });
  if (outputPadding.some((p, i) => p >= s[i]!))
    throw new GradientError(`${nodeLabel(node)}: cannot invert shapes x [${xShape}] -> y [${yShape}]`);
  const channels = xShape[1]!;
  const ones = b.float(new Array<number>(channels * k.reduce((p, v) => p * v, 1)).fill(1), [channels, 1, ...k]);
  return [
    b.op('ConvTranspose', [scaled, ones], {
      kernel_shape: k,
      strides: s,
      pads: [...pads.slice(0, spatial), ...endPads],
      group: channels,
      output_padding: outputPadding,
    }),
  ];
};
