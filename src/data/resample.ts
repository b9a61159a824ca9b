// Bilinear resizing that reproduces Pillow's Image.resize(BILINEAR), which torchvision's Resize uses on PIL
// images: a triangle filter widened by the scale factor when shrinking (antialiasing), two separable passes,
// 22-bit fixed-point weights and a rounding to 8 bits between the passes (Pillow's libImaging/Resample.c).
//
// Why not sharp's resize: measured against torchvision on test/testdata/images, sharp's best kernel
// ('linear') is within 1-2/255 for shrink factors under 4, but libvips box-shrinks first past that (6/255)
// and aligns pixels differently when enlarging (65/255). Models trained on torchvision inputs should see
// the same pixels here, so resizing follows Pillow and sharp only decodes.
import type { Pixels } from './pixels.js';

/** Pillow's PRECISION_BITS for 8-bit images: 32 - 8 - 2, so 255 * weight sums cannot overflow int32. */
const precisionBits = 22;
const one = 2 ** precisionBits;
const half = 2 ** (precisionBits - 1);

/** For each output pixel: the first input pixel it reads, how many, and their fixed-point weights. */
interface Taps {
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array; // [outSize x maxTaps]
  maxTaps: number;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle, support 1) filter. */
function bilinearTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // triangle support 1, widened when shrinking
  const inverseScale = 1 / filterScale; // Pillow multiplies by the reciprocal; dividing can differ in the last bit
  const maxTaps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * maxTaps);
  const w = new Float64Array(maxTaps);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    // Pillow converts with C's (int) cast, which truncates; clamping makes that the same as floor here.
    const lo = Math.max(Math.trunc(centre - support + 0.5), 0);
    const hi = Math.min(Math.trunc(centre + support + 0.5), inSize);
    let total = 0;
    for (let x = lo; x < hi; x++) {
      const d = Math.abs((x - centre + 0.5) * inverseScale);
      const v = d < 1 ? 1 - d : 0;
      w[x - lo] = v;
      total += v;
    }
    for (let x = lo; x < hi; x++) {
      const v = total !== 0 ? w[x - lo]! / total : w[x - lo]!;
      weights[o * maxTaps + (x - lo)] = Math.trunc(v < 0 ? -0.5 + v * one : 0.5 + v * one);
    }
    first[o] = lo;
    count[o] = hi - lo;
  }
  return { first, count, weights, maxTaps };
}

/** Pillow's clip8: fixed-point sum to a byte. */
function clip8(sum: number): number {
  if (sum <= 0) return 0;
  if (sum >= 255 * one) return 255;
  return Math.floor(sum / one);
}

/** Resizes interleaved 8-bit pixels to width x height the way Pillow's BILINEAR does. */
export function resizeBilinear(image: Pixels, width: number, height: number): Pixels {
  const { channels } = image;
  let current = image;
  const needHorizontal = width !== image.width;
  const needVertical = height !== image.height;
  const vertical = bilinearTaps(image.height, height);
  if (needHorizontal) {
    // Only rows the vertical pass will read are resized horizontally, as Pillow does.
    const rowFirst = vertical.first[0]!;
    const rowEnd = vertical.first[height - 1]! + vertical.count[height - 1]!;
    if (needVertical) for (let o = 0; o < height; o++) vertical.first[o]! -= rowFirst;
    const taps = bilinearTaps(image.width, width);
    const rows = needVertical ? rowEnd - rowFirst : image.height;
    const start = needVertical ? rowFirst : 0;
    const out = new Uint8Array(width * rows * channels);
    const src = image.data;
    for (let y = 0; y < rows; y++) {
      const inRow = (y + start) * image.width * channels;
      const outRow = y * width * channels;
      for (let o = 0; o < width; o++) {
        const lo = taps.first[o]!,
          n = taps.count[o]!,
          k = o * taps.maxTaps;
        for (let c = 0; c < channels; c++) {
          let sum = half;
          for (let t = 0; t < n; t++) sum += src[inRow + (lo + t) * channels + c]! * taps.weights[k + t]!;
          out[outRow + o * channels + c] = clip8(sum);
        }
      }
    }
    current = { data: out, width, height: rows, channels };
  }
  if (needVertical) {
    const out = new Uint8Array(width * height * channels);
    const src = current.data;
    const stride = width * channels;
    for (let o = 0; o < height; o++) {
      const lo = vertical.first[o]!,
        n = vertical.count[o]!,
        k = o * vertical.maxTaps;
      for (let i = 0; i < stride; i++) {
        let sum = half;
        for (let t = 0; t < n; t++) sum += src[(lo + t) * stride + i]! * vertical.weights[k + t]!;
        out[o * stride + i] = clip8(sum);
      }
    }
    current = { data: out, width, height, channels };
  }
  return current;
}
