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

/**
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear (triangle, support 1) filter, for
 * the `length` output pixels from `start` of `outSize` (each output pixel's taps depend on it alone).
 */
function bilinearTaps(inSize: number, outSize: number, start: number, length: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale; // triangle support 1, widened when shrinking
  const inverseScale = 1 / filterScale; // Pillow multiplies by the reciprocal; dividing can differ in the last bit
  const maxTaps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(length);
  const count = new Int32Array(length);
  const weights = new Int32Array(length * maxTaps);
  const w = new Float64Array(maxTaps);
  for (let o = 0; o < length; o++) {
    const centre = (start + o + 0.5) * scale;
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

/** A rectangle of an image: the part of a resized image that is computed. */
export interface Region {
  left: number;
  top: number;
  width: number;
  height: number;
}

/**
 * Resizes interleaved 8-bit pixels to width x height the way Pillow's BILINEAR does, computing only
 * `region` of the result (default all of it) and returning that region. Each output pixel is the same
 * as in the whole resized image, so a centre crop costs what the crop holds, not what the resize would:
 * a 1,000,000 x 1 strip resized to a shorter side of 256 would be 256,000,000 x 256.
 */
export function resizeBilinear(
  image: Pixels,
  width: number,
  height: number,
  region: Region = { left: 0, top: 0, width, height },
): Pixels {
  const { channels } = image;
  const { left, top } = region;
  const needHorizontal = width !== image.width;
  const needVertical = height !== image.height;
  // Input rows the output rows read: all the region's rows when only the width changes.
  const vertical = bilinearTaps(image.height, height, top, region.height);
  const rowFirst = needVertical ? vertical.first[0]! : top;
  const rowEnd = needVertical
    ? vertical.first[region.height - 1]! + vertical.count[region.height - 1]!
    : top + region.height;
  const rows = Math.max(0, rowEnd - rowFirst);
  let current: Pixels;
  if (needHorizontal) {
    // Only rows the vertical pass will read are resized horizontally, as Pillow does.
    const taps = bilinearTaps(image.width, width, left, region.width);
    const out = new Uint8Array(region.width * rows * channels);
    const src = image.data;
    for (let y = 0; y < rows; y++) {
      const inRow = (y + rowFirst) * image.width * channels;
      const outRow = y * region.width * channels;
      for (let o = 0; o < region.width; o++) {
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
    current = { data: out, width: region.width, height: rows, channels };
  } else {
    current = cut(image, left, rowFirst, region.width, rows);
  }
  if (!needVertical) return current;
  const out = new Uint8Array(region.width * region.height * channels);
  const src = current.data;
  const stride = region.width * channels;
  for (let o = 0; o < region.height; o++) {
    const lo = vertical.first[o]! - rowFirst,
      n = vertical.count[o]!,
      k = o * vertical.maxTaps;
    for (let i = 0; i < stride; i++) {
      let sum = half;
      for (let t = 0; t < n; t++) sum += src[(lo + t) * stride + i]! * vertical.weights[k + t]!;
      out[o * stride + i] = clip8(sum);
    }
  }
  return { data: out, width: region.width, height: region.height, channels };
}

/** The rectangle [left, left + width) x [top, top + height) of an image, as an image (itself when it is all of it). */
function cut(image: Pixels, left: number, top: number, width: number, height: number): Pixels {
  if (left === 0 && top === 0 && width === image.width && height === image.height) return image;
  const { channels } = image;
  const out = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * channels;
    out.set(image.data.subarray(from, from + width * channels), y * width * channels);
  }
  return { data: out, width, height, channels };
}
