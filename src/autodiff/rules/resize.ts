// Vector-Jacobian rules for Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9). Every mode
// ONNX Runtime runs (nearest, linear, cubic) reads each output position from a few input positions
// along each axis with weights that depend on that axis alone, so y = A_1 ... A_k x with one matrix
// A_i [out_i x in_i] per resized axis; dx applies the transposes, one MatMul per resized axis. The
// matrices are computed here, in float32 as ONNX Runtime computes them (upsamplebase.h, upsample.cc).
import type { Rule, RuleContext } from './context.js';
import { GradientError, floatAttr, gradOf, intAttr, intsAttr, nodeLabel, stringAttr } from './context.js';

const f = Math.fround;

interface ResizeSettings {
  mode: string;
  coordinates: string;
  nearest: string;
  cubicA: number;
  excludeOutside: boolean;
}

/** The input coordinate of output position `o` along an axis, as ONNX Runtime's transformation modes define it. */
function original(mode: string, o: number, scale: number, outLength: number, inLength: number): number {
  switch (mode) {
    case 'asymmetric':
      return f(o / scale);
    case 'pytorch_half_pixel':
      return outLength > 1 ? f(f(f(o + 0.5) / scale) - 0.5) : 0;
    case 'tf_half_pixel_for_nn':
      return f(f(o + 0.5) / scale);
    case 'align_corners':
      return outLength === 1 ? 0 : f(f(o * (inLength - 1)) / (outLength - 1));
    case 'half_pixel_symmetric': {
      const adjustment = f(outLength / f(scale * inLength));
      const offset = f(f(inLength / 2) * f(1 - adjustment));
      return f(offset + f(f(o + 0.5) / scale) - 0.5);
    }
    default: // half_pixel
      return f(f(f(o + 0.5) / scale) - 0.5);
  }
}

/** C++'s std::round: halves away from zero. */
const roundAway = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

function nearestPixel(mode: string, x: number, downsampling: boolean): number {
  switch (mode) {
    case 'simple': // Resize 10 and Upsample
      return downsampling ? Math.ceil(x) : Math.trunc(x);
    case 'round_prefer_ceil':
      return roundAway(x);
    case 'floor':
      return Math.floor(x);
    case 'ceil':
      return Math.ceil(x);
    default: // round_prefer_floor
      return x === Math.trunc(x) + 0.5 ? Math.floor(x) : roundAway(x);
  }
}

/** ONNX Runtime's cubic convolution weights for the 4 taps at offsets -1..2 around floor(x). */
function cubicCoefficients(s: number, a: number): number[] {
  const t = 1 - s;
  return [
    f(((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a),
    f(((a + 2) * s - (a + 3)) * s * s + 1),
    f(((a + 2) * t - (a + 3)) * t * t + 1),
    f(((a * (1 + t) - 5 * a) * (1 + t) + 8 * a) * (1 + t) - 4 * a),
  ];
}

/** The matrix [outLength x inLength] (row-major) that resizes one axis. */
export function resizeMatrix(r: ResizeSettings, scale: number, inLength: number, outLength: number): number[] {
  const m = new Array<number>(outLength * inLength).fill(0);
  const add = (o: number, i: number, w: number) => {
    m[o * inLength + i]! += w;
  };
  for (let o = 0; o < outLength; o++) {
    const x = scale === 1 ? o : original(r.coordinates, o, scale, outLength, inLength);
    if (r.mode === 'nearest') {
      add(o, Math.min(Math.max(nearestPixel(r.nearest, x, scale < 1), 0), inLength - 1), 1);
    } else if (r.mode === 'linear') {
      const c = Math.max(0, Math.min(x, inLength - 1));
      const i1 = Math.min(Math.trunc(c), inLength - 1);
      const i2 = Math.min(i1 + 1, inLength - 1);
      if (i1 === i2) add(o, i1, 1);
      else {
        add(o, i1, f(Math.abs(f(c - i2))));
        add(o, i2, f(Math.abs(f(c - i1))));
      }
    } else {
      const base = Math.floor(x);
      const coefficients = cubicCoefficients(f(x - base), r.cubicA);
      const taps = coefficients.map((w, t) => {
        const at = base - 1 + t;
        return {
          at: Math.min(Math.max(at, 0), inLength - 1),
          w: r.excludeOutside && (at < 0 || at >= inLength) ? 0 : w,
        };
      });
      const sum = r.excludeOutside ? taps.reduce((p, t) => p + t.w, 0) : 1;
      for (const t of taps) add(o, t.at, t.w / sum);
    }
  }
  return m;
}

/** The per-axis scales ONNX Runtime uses: given, or output / input size (float32) when sizes are given. */
function axisScales(ctx: RuleContext, xShape: number[], yShape: number[]): number[] {
  const { b, node } = ctx;
  const rank = xShape.length;
  let given: number[] | undefined;
  if (node.opType === 'Upsample' && b.opset < 9)
    given = (node.attribute ?? []).find((a) => a.name === 'scales')?.floats;
  else {
    const index = node.opType === 'Upsample' || b.opset < 11 ? 1 : 2;
    const name = node.input?.[index];
    const values = name ? ctx.constant(name) : undefined;
    if (values !== undefined && values.length > 0) given = values;
  }
  if (given !== undefined) {
    const axes = intsAttr(node, 'axes');
    if (axes !== undefined && axes.length > 0 && given.length !== rank) {
      const full = new Array<number>(rank).fill(1);
      axes.forEach((a, i) => {
        full[a < 0 ? a + rank : a] = given![i]!;
      });
      given = full;
    }
    return given.map((s) => f(s));
  }
  return xShape.map((v, i) => f(yShape[i]! / v));
}

// y = A_1 ... A_k x (one matrix per resized axis): dx = A_1^T ... A_k^T g, a MatMul with the axis
// moved last for each resized axis (none for the last axis).
export const resize: Rule = (ctx) => {
  const { b, node } = ctx;
  const x = node.input![0]!;
  const xShape = ctx.shape(x);
  const yShape = ctx.shape(node.output![0]!);
  const rank = xShape.length;
  const isResize = node.opType === 'Resize';
  const settings: ResizeSettings = {
    mode: stringAttr(node, 'mode', 'nearest'),
    coordinates:
      isResize && b.opset >= 11 ? stringAttr(node, 'coordinate_transformation_mode', 'half_pixel') : 'asymmetric',
    nearest: isResize && b.opset >= 11 ? stringAttr(node, 'nearest_mode', 'round_prefer_floor') : 'simple',
    cubicA: floatAttr(node, 'cubic_coeff_a', -0.75),
    excludeOutside: intAttr(node, 'exclude_outside', 0) === 1,
  };
  if (settings.coordinates === 'tf_crop_and_resize')
    throw new GradientError(`${nodeLabel(node)}: coordinate_transformation_mode 'tf_crop_and_resize' is not supported`);
  if (intAttr(node, 'antialias', 0) === 1) throw new GradientError(`${nodeLabel(node)}: antialias=1 is not supported`);
  if (!['nearest', 'linear', 'cubic'].includes(settings.mode))
    throw new GradientError(`${nodeLabel(node)}: mode '${settings.mode}' is not supported`);
  const scales = axisScales(ctx, xShape, yShape);
  let g = gradOf(ctx);
  for (let axis = rank - 1; axis >= 0; axis--) {
    if (xShape[axis] === yShape[axis] && scales[axis] === 1) continue;
    if (axis === 0) throw new GradientError(`${nodeLabel(node)}: resizing the batch axis 0 is not supported`);
    const m = resizeMatrix(settings, scales[axis]!, xShape[axis]!, yShape[axis]!);
    const matrix = b.float(m, [yShape[axis]!, xShape[axis]!]);
    if (axis === rank - 1) {
      g = b.op('MatMul', [g, matrix]);
      continue;
    }
    const perm = [...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis), axis];
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => {
      inverse[p] = i;
    });
    g = b.op('Transpose', [b.op('MatMul', [b.op('Transpose', [g], { perm }), matrix])], { perm: inverse });
  }
  return [g];
};
