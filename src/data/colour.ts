// Pillow's colour conversions on decoded 8-bit pixels, so that images reach a model as torchvision's
// PIL loader hands them over: CMYK to RGB by Pillow's formula, RGB to L by its integer luma.
import type { Pixels } from './pixels.js';

/** Pillow's cmyk2rgb: each of R, G, B = (255 - K) * (1 - ink / 255), in its integer arithmetic. */
export function cmykToRgb(cmyk: Pixels): Pixels {
  if (cmyk.channels !== 4) return cmyk; // reported by the caller's channel check
  const n = cmyk.width * cmyk.height;
  const out = new Uint8Array(n * 3);
  const src = cmyk.data;
  for (let p = 0; p < n; p++) {
    const nk = 255 - src[4 * p + 3]!;
    for (let c = 0; c < 3; c++) {
      const t = src[4 * p + c]! * nk + 128; // MULDIV255: a * b / 255 rounded, without a division
      out[3 * p + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return { data: out, width: cmyk.width, height: cmyk.height, channels: 3 };
}

/** Pillow's RGB to L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, i.e. 0.299 R + 0.587 G + 0.114 B rounded. */
export function luma(rgb: Pixels): Pixels {
  const n = rgb.width * rgb.height;
  const out = new Uint8Array(n);
  const src = rgb.data;
  for (let p = 0, q = 0; p < n; p++, q += 3) {
    out[p] = (src[q]! * 19595 + src[q + 1]! * 38470 + src[q + 2]! * 7471 + 0x8000) >>> 16;
  }
  return { data: out, width: rgb.width, height: rgb.height, channels: 1 };
}
