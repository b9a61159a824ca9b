// Vector-Jacobian rule for Conv: the input gradient is ConvTranspose with the same weights and
// attributes, its output_padding chosen from the probed shapes so that it yields x's exact size.
// At stride 1 it is a Conv with flipped, channel-swapped weights instead: ONNX Runtime's Conv has
// blocked (NCHWc) kernels that its ConvTranspose lacks.
import type { Rule, RuleContext } from './context.js';
import { GradientError, gradOf, intAttr, intsAttr, nodeLabel, requireConstant, stringAttr } from './context.js';

/** Explicit [begin..., end...] pads, resolving auto_pad the way the ONNX spec defines it. */
export function explicitPads(
  autoPad: string,
  pads: number[] | undefined,
  x: number[],
  y: number[],
  k: number[],
  s: number[],
  d: number[],
): number[] {
  const n = k.length;
  if (autoPad === 'NOTSET') return pads ?? new Array<number>(2 * n).fill(0);
  if (autoPad === 'VALID') return new Array<number>(2 * n).fill(0);
  const begin: number[] = [];
  const end: number[] = [];
  for (let i = 0; i < n; i++) {
    const total = Math.max(0, (y[i]! - 1) * s[i]! + (k[i]! - 1) * d[i]! + 1 - x[i]!);
    const small = Math.floor(total / 2);
    begin.push(autoPad === 'SAME_LOWER' ? total - small : small);
    end.push(autoPad === 'SAME_LOWER' ? small : total - small);
  }
  return [...begin, ...end];
}

/**
 * The weights of the Conv that equals ConvTranspose(., w) at stride 1: in and out channels swapped
 * within each group and the kernel flipped. Built from the constant w with ops ONNX Runtime folds
 * once at session creation.
 */
function flippedWeights(ctx: RuleContext, w: string, group: number): string {
  const { b } = ctx;
  const [cout, cinPerGroup, ...k] = ctx.shape(w) as [number, number, ...number[]];
  const grouped = b.op('Reshape', [w, b.int64([group, cout / group, cinPerGroup, ...k])]);
  const swapped = b.op('Transpose', [grouped], { perm: [0, 2, 1, ...k.map((_, i) => 3 + i)] });
  const axes = k.map((_, i) => 3 + i);
  const big = 2 ** 62;
  // Slice with negative steps from opset 10; before, a Gather of the reversed indices per axis.
  const flipped =
    b.opset >= 10
      ? b.slice(
          swapped,
          axes.map(() => -1),
          axes.map(() => -big),
          axes,
          axes.map(() => -1),
        )
      : axes.reduce(
          (t, a, i) =>
            b.op('Gather', [t, b.int64(Array.from({ length: k[i]! }, (_, j) => k[i]! - 1 - j))], { axis: a }),
          swapped,
        );
  return b.op('Reshape', [flipped, b.int64([group * cinPerGroup, cout / group, ...k])]);
}

export const conv: Rule = (ctx) => {
  requireConstant(ctx, [0], 'weights and bias must be constants');
  const node = ctx.node;
  const [x, w] = node.input as [string, string];
  const xShape = ctx.shape(x);
  const yShape = ctx.shape(node.output![0]!);
  const spatial = xShape.length - 2;
  const xs = xShape.slice(2);
  const ys = yShape.slice(2);
  const k = intsAttr(node, 'kernel_shape') ?? ctx.shape(w).slice(2);
  const s = intsAttr(node, 'strides') ?? new Array<number>(spatial).fill(1);
  const d = intsAttr(node, 'dilations') ?? new Array<number>(spatial).fill(1);
  const pads = explicitPads(stringAttr(node, 'auto_pad', 'NOTSET'), intsAttr(node, 'pads'), xs, ys, k, s, d);
  // ConvTranspose yields s*(y-1) + op + (k-1)*d + 1 - pad_begin - pad_end; Conv dropped the rest.
  const outputPadding = xs.map(
    (xi, i) => xi - (s[i]! * (ys[i]! - 1) + (k[i]! - 1) * d[i]! + 1 - pads[i]! - pads[i + spatial]!),
  );
  if (outputPadding.some((p, i) => p < 0 || p >= Math.max(s[i]!, d[i]!))) {
    throw new GradientError(
      `${nodeLabel(node)}: cannot invert shapes x [${xShape}] -> y [${yShape}] (output_padding ${outputPadding})`,
    );
  }
  const group = intAttr(node, 'group', 1);
  if (s.every((v) => v === 1) && pads.every((p, i) => p <= (k[i % spatial]! - 1) * d[i % spatial]!)) {
    return [
      ctx.b.op('Conv', [gradOf(ctx), flippedWeights(ctx, w, group)], {
        kernel_shape: k,
        dilations: d,
        group,
        pads: pads.map((p, i) => (k[i % spatial]! - 1) * d[i % spatial]! - p),
      }),
    ];
  }
  const back = ctx.b.op('ConvTranspose', [gradOf(ctx), w], {
    kernel_shape: k,
    strides: s,
    dilations: d,
    pads,
    group,
    output_padding: outputPadding,
  });
  // ONNX Runtime runs ConvTranspose in the plain layout, and the ops after it (the Sum with a
  // residual gradient, the ReLU mask's Mul) follow it there, which costs reorders of their other,
  // blocked inputs. An identity AveragePool reorders just this output into the blocked layout,
  // where they stay (ResNet-50: 3 large reorders fewer per stride-2 layer). Not for depthwise
  // layers: MobileNetV2's next ops (Clip masks) are plain anyway, and the pool only costs.
  if (group === 1 && xShape.length === 4 && xShape[1]! % 16 === 0)
    return [ctx.b.op('AveragePool', [back], { kernel_shape: [1, 1] })];
  return [back];
};
