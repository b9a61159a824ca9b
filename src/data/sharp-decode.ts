// Image files to 8-bit pixels with sharp, converted to RGB or grayscale the way Pillow's convert() does.
import sharp from 'sharp';

import { DataFormatError } from './errors.js';
import type { Pixels } from './pixels.js';

/**
 * Decodes a JPEG, PNG, WebP (or anything else sharp reads) at full size to RGB (3) or L (1) pixels.
 * Matches torchvision's PIL loader rather than sharp's defaults: embedded ICC profiles and EXIF orientation
 * are ignored (PIL applies neither), alpha is dropped rather than composited, CMYK becomes RGB by Pillow's
 * formula rather than a colour profile, and grayscale uses Pillow's integer luma where libvips would
 * convert in linear light.
 */
export async function decodePixels(input: string | Uint8Array, channels: 1 | 3, source: string): Promise<Pixels> {
  let rgb: Pixels;
  try {
    // failOn 'truncated': reject cut-off files as PIL does, but accept the harmless warnings PIL ignores too.
    const options = { ignoreIcc: true, failOn: 'truncated' } as const;
    const { space } = await sharp(input, options).metadata();
    const cmyk = space === 'cmyk';
    // Without pipelineColourspace('cmyk') sharp would convert CMYK to sRGB through an ICC profile.
    const image = cmyk
      ? sharp(input, options).pipelineColourspace('cmyk').toColourspace('cmyk')
      : sharp(input, options).removeAlpha().toColourspace('srgb');
    const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    const pixels = {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      channels: info.channels,
    };
    rgb = cmyk ? cmykToRgb(pixels) : pixels;
  } catch (err) {
    throw new DataFormatError(source, `cannot decode image (${(err as Error).message})`);
  }
  if (rgb.channels !== 3) throw new DataFormatError(source, `decoded to ${rgb.channels} channels, expected RGB`);
  return channels === 3 ? rgb : luma(rgb);
}

/** Pillow's cmyk2rgb: each of R, G, B = (255 - K) * (1 - ink / 255), in its integer arithmetic. */
function cmykToRgb(cmyk: Pixels): Pixels {
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
function luma(rgb: Pixels): Pixels {
  const n = rgb.width * rgb.height;
  const out = new Uint8Array(n);
  const src = rgb.data;
  for (let p = 0, q = 0; p < n; p++, q += 3) {
    out[p] = (src[q]! * 19595 + src[q + 1]! * 38470 + src[q + 2]! * 7471 + 0x8000) >>> 16;
  }
  return { data: out, width: rgb.width, height: rgb.height, channels: 1 };
}
