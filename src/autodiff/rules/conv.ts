// Vector-Jacobian rule for Conv: the input gradient is ConvTranspose with the same weights and
// attributes, its output_padding chosen from the probed shapes so that it yields x's exact size.
import type { Rule } from './context.js';
import { GradientError, gradOf, intAttr, intsAttr, nodeLabel, requireConstant, stringAttr } from './context.js';

/** Explicit [begin..., end...] pads, resolving auto_pad the way the ONNX spec defines it. */
function explicitPads(autoPad: string, pads: number[] | undefined, x: number[], y: number[], k: number[], s: number[], d: number[]): number[] {
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
  const outputPadding = xs.map((xi, i) => xi - (s[i]! * (ys[i]! - 1) + (k[i]! - 1) * d[i]! + 1 - pads[i]! - pads[i + spatial]!));
  if (outputPadding.some((p, i) => p < 0 || p >= Math.max(s[i]!, d[i]!))) {
    throw new GradientError(`${nodeLabel(node)}: cannot invert shapes x [${xShape}] -> y [${yShape}] (output_padding ${outputPadding})`);
  }
  return [ctx.b.op('ConvTranspose', [gradOf(ctx), w], {
    kernel_shape: k, strides: s, dilations: d, pads, group: intAttr(node, 'group', 1), output_padding: outputPadding,
  })];
};
