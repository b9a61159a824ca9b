// Vector-Jacobian rules for pooling (MaxPool, GlobalMaxPool, AveragePool, GlobalAveragePool).
// MaxPool routes each output's gradient to the input element that won its window: where windows
// do not overlap, MaxUnpool places it at the winner's index; where they do (3x3 stride 2), the
// winners, one-hot over the window's K offsets, route the gradient into K channels per channel,
// which a grouped ConvTranspose with one-hot kernels adds back onto the input grid (overlaps
// included). Only ops of every opset from 7 are used: no ScatterElements with reduction='add'.
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
  if (ctx.reluTemperature !== undefined) return false; // the Relu rule applies its smooth mask
  if (relu.opType !== 'Relu' || maxPool.opType !== 'MaxPool' || y === undefined || ctx.seeded(y)) return false;
  const readers = ctx.readers(y);
  return readers.length === 1 && readers[0] === maxPool;
}

/**
 * The tensor whose window maxima pick a max pool's winners: its input x, or, with the smooth ReLU
 * backward (ctx.reluTemperature) and x a Relu's output, that Relu's input. Where a window's maximum
 * is positive both have the same winner; where the whole window is off, relu(x) ties at zero (any
 * element is a subgradient) and the pre-activation picks the element nearest to switching on, so
 * the smooth mask pushes the neuron the pool would pass on, as for maxpool(T softplus(x / T)).
 */
function winnersOf(ctx: RuleContext, x: string): string {
  if (ctx.reluTemperature === undefined) return x;
  const relu = ctx.producer(x);
  return relu?.opType === 'Relu' && (relu.domain ?? '') === '' ? relu.input![0]! : x;
}

interface PoolWindows {
  /** Kernel, strides, dilations and explicit [begin..., end...] pads per spatial axis. */
  k: number[];
  s: number[];
  d: number[];
  pads: number[];
  /** ceil_mode: the last window along an axis may be partial. */
  ceil: boolean;
}

/** The row-major flat index over the spatial axes of window element `offset` of output `out`; -1 in the padding. */
function windowIndex(w: PoolWindows, xs: number[], out: number[], offset: number[]): number {
  let flat = 0;
  for (let i = 0; i < xs.length; i++) {
    const at = out[i]! * w.s[i]! - w.pads[i]! + offset[i]! * w.d[i]!;
    if (at < 0 || at >= xs[i]!) return -1;
    flat = flat * xs[i]! + at;
  }
  return flat;
}

/** All index tuples of a box of the given sizes, the last axis fastest. */
function box(sizes: number[]): number[][] {
  let out: number[][] = [[]];
  for (const n of sizes) out = out.flatMap((t) => Array.from({ length: n }, (_, i) => [...t, i]));
  return out;
}

/**
 * dx for y = maxpool(x) with gradient g: MaxUnpool at the winners when windows do not overlap;
 * otherwise a one-hot route over the K window offsets and a grouped ConvTranspose. The winners
 * come from the pool's Indices output (opset 8 on; `indices`), made per image and channel, compared
 * with the index each offset reads; in opset 7 MaxPool has no Indices, and the winners are the
 * first maxima (ArgMax) of the windows gathered by a one-hot grouped Conv.
 */
function routeToWinners(
  ctx: RuleContext,
  x: string,
  g: string,
  w: PoolWindows,
  yShape: number[],
  indices: (() => string) | undefined,
): string {
  const { b } = ctx;
  const xShape = ctx.shape(x);
  const spatial = xShape.length - 2;
  const xs = xShape.slice(2);
  const ys = yShape.slice(2);
  const channels = xShape[1]!;
  // Windows overlap along an axis with more than one of them, when a window outreaches the stride.
  const overlapping = w.k.some((ki, i) => ys[i]! > 1 && (ki - 1) * w.d[i]! + 1 > w.s[i]!);
  if (!overlapping && !w.ceil && indices !== undefined && b.opset >= 9) {
    // No two outputs share a winner: MaxUnpool places each gradient at its winner without a
    // scatter-add (ONNX Runtime's ScatterElements with a reduction is serial: 7 of the CNN's 33 ms).
    // ONNX Runtime's MaxUnpool rejects the partial windows of ceil_mode, which take the route below.
    return b.op('MaxUnpool', [g, indices(), b.op('Shape', [x])], { kernel_shape: w.k, strides: w.s });
  }
  const offsets = box(w.k);
  const K = offsets.length;
  const outputs = box(ys);
  let winners: string;
  if (indices !== undefined) {
    const plane = xs.reduce((p, v) => p * v, 1);
    const reads = b.int64(
      offsets.flatMap((o) => outputs.map((out) => windowIndex(w, xs, out, o))),
      [K, ...ys],
    );
    winners = b.hoist(() => {
      const flat = indices();
      const size = b.int64([plane], []);
      const within = b.op('Sub', [flat, b.op('Mul', [b.op('Div', [flat, size]), size])]);
      return b.op('Equal', [b.unsqueeze(within, [2]), reads]);
    });
  } else {
    // Opset 7: the windows as K channels per channel (a grouped Conv with one-hot kernels over x
    // padded with the lowest float, which no element loses to), their first maximum by ArgMax.
    const hot = new Array<number>(channels * K * K).fill(0);
    for (let c = 0; c < channels; c++) for (let o = 0; o < K; o++) hot[(c * K + o) * K + o] = 1;
    const kernels = b.float(hot, [channels * K, 1, ...w.k]);
    winners = b.hoist(() => {
      const padded = w.pads.some((p) => p > 0)
        ? b.pad(x, [0, 0, ...w.pads.slice(0, spatial), 0, 0, ...w.pads.slice(spatial)], -3.4e38)
        : x;
      const windows = b.op('Conv', [padded, kernels], {
        kernel_shape: w.k,
        strides: w.s,
        dilations: w.d,
        group: channels,
        // ceil_mode does not exist before opset 10: the Conv covers exactly the pool's windows.
      });
      const stacked = b.op('Reshape', [windows, b.int64([0, channels, K, ...ys])]);
      const first = b.op('ArgMax', [stacked], { axis: 2, keepdims: 1 });
      return b.op('Equal', [
        first,
        b.int64(
          Array.from({ length: K }, (_, o) => o),
          [K, ...ys.map(() => 1)],
        ),
      ]);
    });
  }
  const routed = b.mask(winners, b.unsqueeze(g, [2])); // [N, C, K, ...ys]
  const stacked = b.op('Reshape', [routed, b.int64([0, channels * K, ...ys])]);
  const hot = new Array<number>(channels * K * K).fill(0);
  for (let c = 0; c < channels; c++) for (let o = 0; o < K; o++) hot[(c * K + o) * K + o] = 1;
  // ConvTranspose yields s*(y-1) + (k-1)*d + 1 - pad_begin - pad_end + output_padding values per
  // axis; the end pad (or output_padding) makes that exactly x's size.
  const endPads: number[] = [];
  const outputPadding: number[] = [];
  xs.forEach((xi, i) => {
    const excess = w.s[i]! * (ys[i]! - 1) + (w.k[i]! - 1) * w.d[i]! + 1 - w.pads[i]! - xi;
    endPads.push(Math.max(excess, 0));
    outputPadding.push(Math.max(-excess, 0));
  });
  return b.op('ConvTranspose', [stacked, b.float(hot, [channels * K, 1, ...w.k])], {
    kernel_shape: w.k,
    strides: w.s,
    dilations: w.d,
    pads: [...w.pads.slice(0, spatial), ...endPads],
    group: channels,
    output_padding: outputPadding,
  });
}

export const maxPool: Rule = (ctx) => {
  const { b, node } = ctx;
  if (intAttr(node, 'storage_order', 0) !== 0)
    throw new GradientError(`${nodeLabel(node)}: storage_order=1 (column-major indices) is not supported`);
  const x = node.input![0]!;
  const y = node.output![0]!;
  const xs = ctx.shape(x).slice(2);
  const ys = ctx.shape(y).slice(2);
  const k = intsAttr(node, 'kernel_shape') ?? [];
  const s = intsAttr(node, 'strides') ?? k.map(() => 1);
  const d = intsAttr(node, 'dilations') ?? k.map(() => 1);
  const pads = explicitPads(stringAttr(node, 'auto_pad', 'NOTSET'), intsAttr(node, 'pads'), xs, ys, k, s, d);
  // Indices index x flattened whole (batch and channel offsets included); a copy of the node gives them
  // (reading the tensor that picks the winners: winnersOf).
  const source = winnersOf(ctx, x);
  let indices: string | undefined;
  const indicesOf =
    b.opset >= 8
      ? () =>
          (indices ??= (
            source === x ? b.duplicate(node, 2) : b.duplicate(node, 2, [source, ...node.input!.slice(1)])
          )[1]!)
      : undefined;
  let g = gradOf(ctx);
  const relu = ctx.producer(x);
  if (relu !== undefined && reluFeedsMaxPool(ctx, relu, node))
    g = b.mask(
      b.hoist(() => b.op('Greater', [y, b.float([0], [])])),
      g,
    );
  const ceil = intAttr(node, 'ceil_mode', 0) === 1;
  return [routeToWinners(ctx, source, g, { k, s, d, pads, ceil }, ctx.shape(y), indicesOf)];
};

// y = max over the spatial axes: a MaxPool whose window is the whole image (PyTorch's adaptive
// max pool to 1 routes the gradient to the first maximum, as MaxPool's Indices do).
export const globalMaxPool: Rule = (ctx) => {
  const { b, node } = ctx;
  const x = winnersOf(ctx, node.input![0]!);
  const xs = ctx.shape(x).slice(2);
  const k = [...xs];
  let indices: string | undefined;
  const indicesOf =
    b.opset >= 8 ? () => (indices ??= b.hoist(() => b.node('MaxPool', [x], { kernel_shape: k }, 2)[1]!)) : undefined;
  const w = { k, s: k.map(() => 1), d: k.map(() => 1), pads: [...k, ...k].map(() => 0), ceil: false };
  return [routeToWinners(ctx, x, gradOf(ctx), w, ctx.shape(node.output![0]!), indicesOf)];
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
  const xShape = ctx.shape(x);
  const spread = ctx.b.broadcast(
    gradOf(ctx),
    [1, xShape[1]!, ...xShape.slice(2).map(() => 1)],
    [1, xShape[1]!, ...xShape.slice(2)],
  );
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
