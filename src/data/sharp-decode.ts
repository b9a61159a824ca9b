// Image files to 8-bit pixels with sharp, bounded before decoding: the bytes are read once (so the file
// checked is the file decoded), their format is recognised from its magic and must be one asked for,
// and the header's dimensions are checked against the limits before a pixel is decoded. Runs on the
// main thread and in decode workers: sharp is loaded by the main thread first (images.ts imports this
// file), which glibc needs for libvips to stay loaded while workers come and go.
import { open } from 'node:fs/promises';
import sharp from 'sharp';
import type { Metadata } from 'sharp';

import { formatBytes } from './limits.js';
import type { ImageFormat } from './limits.js';
import type { Pixels } from './pixels.js';

/** What a decode may accept; each has a default in ImageOptions (images.ts). */
export interface DecodeLimits {
  formats: readonly ImageFormat[];
  /** Read the first frame of an animated or multi-page image instead of refusing it. */
  firstFrame: boolean;
  maxPixels: number;
  maxAspectRatio: number;
  maxFileBytes: number;
}

/** Decoded pixels: RGB, or CMYK (4 channels) for the pixel job to convert as Pillow does. */
export interface Decoded {
  pixels: Pixels;
  cmyk: boolean;
}

/** Why an image is refused, for the caller to wrap with the image's name. */
export class ImageRefused extends Error {}

const names: Record<ImageFormat, string> = {
  jpeg: 'JPEG',
  png: 'PNG',
  webp: 'WebP',
  gif: 'GIF',
  tiff: 'TIFF',
  svg: 'SVG',
  heif: 'HEIF/AVIF',
};

/** The format the bytes' magic says (not the file name's), or undefined for anything else. */
export function sniffImageFormat(b: Uint8Array): ImageFormat | undefined {
  const at = (offset: number, text: string) =>
    b.length >= offset + text.length && [...text].every((ch, i) => b[offset + i] === ch.charCodeAt(0));
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (at(0, '\x89PNG\r\n\x1a\n')) return 'png';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'gif';
  if (at(0, 'II*\0') || at(0, 'MM\0*') || at(0, 'II+\0') || at(0, 'MM\0+')) return 'tiff';
  if (at(4, 'ftyp')) return 'heif';
  // SVG is text: XML that opens an <svg> element near its start (after a BOM, a declaration, comments).
  const text = Buffer.from(b.buffer, b.byteOffset, Math.min(b.length, 4096)).toString('latin1');
  if (/^(\xef\xbb\xbf)?\s*</.test(text) && /<svg[\s>]/i.test(text)) return 'svg';
  return undefined;
}

/** An image's format and size from its bytes and header, every limit checked; nothing is decoded yet. */
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** CMYK images are decoded as CMYK and converted as Pillow does. */
  cmyk: boolean;
}

/**
 * Checks an encoded image before decoding it, in this order: its size in bytes, its format by content
 * (one of `formats`), then from its header: frames, pixel count, aspect ratio and depth. Throws
 * ImageRefused (or sharp's error for a header it cannot read); the caller names the image.
 */
export async function probeImage(bytes: Uint8Array, limits: DecodeLimits): Promise<ImageHeader> {
  if (bytes.length > limits.maxFileBytes) {
    throw new ImageRefused(
      `${formatBytes(bytes.length)} is over the ${formatBytes(limits.maxFileBytes)} limit (maxFileBytes)`,
    );
  }
  const format = sniffImageFormat(bytes);
  const allowed = limits.formats.map((f) => names[f]).join(', ');
  if (format === undefined) {
    const head = Array.from(bytes.subarray(0, 8), (v) => v.toString(16).padStart(2, '0')).join(' ');
    throw new ImageRefused(`not a ${allowed} image (its bytes start ${head || '(empty)'})`);
  }
  if (!limits.formats.includes(format)) {
    throw new ImageRefused(
      `${names[format]} images are not accepted (formats: ${allowed}); ` +
        `pass formats: [..., '${format}'] (nfp: --image-formats) to read them`,
    );
  }
  // The header alone, without libvips's own pixel check, so that the refusal below can give the numbers.
  const meta = await sharp(bytes, { ...sharpOptions(limits), limitInputPixels: false }).metadata();
  return checkHeader(meta, format, limits);
}

/**
 * Decodes a probed image at full size to RGB (or CMYK) 8-bit pixels. Matches torchvision's PIL loader
 * rather than sharp's defaults: embedded ICC profiles and EXIF orientation are ignored (PIL applies
 * neither), alpha is dropped rather than composited, and CMYK stays CMYK for Pillow's formula rather
 * than a colour profile. Always from bytes, never a path: an SVG has no folder to fetch <image href> from.
 */
export async function decodePixels(bytes: Uint8Array, header: ImageHeader, limits: DecodeLimits): Promise<Decoded> {
  const options = sharpOptions(limits);
  const cmyk = header.cmyk;
  // Without pipelineColourspace('cmyk') sharp would convert CMYK to sRGB through an ICC profile.
  const image = cmyk
    ? sharp(bytes, options).pipelineColourspace('cmyk').toColourspace('cmyk')
    : sharp(bytes, options).removeAlpha().toColourspace('srgb');
  const { data, info } = await image.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return {
    pixels: {
      data: new Uint8Array(data.buffer, data.byteOffset, data.length),
      width: info.width,
      height: info.height,
      channels: info.channels,
    },
    cmyk,
  };
}

/**
 * failOn 'truncated': reject cut-off files as PIL does, but accept the harmless warnings PIL ignores too;
 * limitInputPixels: libvips checks the pixel limit again as it opens the image.
 */
function sharpOptions(limits: DecodeLimits) {
  return { ignoreIcc: true, failOn: 'truncated', limitInputPixels: limits.maxPixels } as const;
}

function checkHeader(meta: Metadata, format: ImageFormat, limits: DecodeLimits): ImageHeader {
  if (meta.format !== format) {
    throw new ImageRefused(`its bytes say ${names[format]} but it decodes as ${String(meta.format)}`);
  }
  const pages = meta.pages ?? 1;
  if (pages > 1 && !limits.firstFrame) {
    throw new ImageRefused(
      `it has ${pages} frames or pages (animated or multi-page); ` +
        'pass firstFrame (nfp: --first-frame) to read the first',
    );
  }
  const width = meta.width ?? 0;
  const height = pages > 1 ? (meta.pageHeight ?? meta.height ?? 0) : (meta.height ?? 0);
  if (!(width >= 1 && height >= 1)) throw new ImageRefused(`its header gives no size (${width}x${height})`);
  if (width * height > limits.maxPixels) {
    throw new ImageRefused(
      `${width}x${height} is ${(width * height).toLocaleString('en-US')} pixels, over the ` +
        `${limits.maxPixels.toLocaleString('en-US')}-pixel limit (maxPixels)`,
    );
  }
  const ratio = Math.max(width, height) / Math.min(width, height);
  if (ratio > limits.maxAspectRatio) {
    throw new ImageRefused(
      `${width}x${height} has an aspect ratio of ${ratio.toFixed(1)}, over the limit of ${limits.maxAspectRatio} ` +
        '(maxAspectRatio)',
    );
  }
  // PIL opens 16-bit grayscale as mode I and convert('RGB') clips every value above 255 to white: a
  // torchvision model never saw such an image as its pixels say, and sharp would scale it instead.
  if (meta.depth === 'ushort' && meta.channels === 1) {
    throw new ImageRefused('16-bit grayscale images are not read (torchvision clips them to white): save it as 8-bit');
  }
  return { format, width, height, cmyk: meta.space === 'cmyk' };
}

/**
 * A file's bytes, refused without reading them when it is larger than `maxBytes` or not a file. The
 * buffer is the caller's own (not pooled), so it can be handed to a worker thread without a copy.
 */
export async function readImageFile(path: string, maxBytes: number): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const info = await handle.stat();
    if (!info.isFile()) throw new ImageRefused('not a file');
    if (info.size > maxBytes)
      throw new ImageRefused(`${formatBytes(info.size)} is over the ${formatBytes(maxBytes)} limit (maxFileBytes)`);
    const bytes = new Uint8Array(Buffer.allocUnsafeSlow(info.size).buffer, 0, info.size);
    let got = 0;
    while (got < bytes.length) {
      const { bytesRead } = await handle.read(bytes, got, bytes.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return got === bytes.length ? bytes : bytes.subarray(0, got);
  } finally {
    await handle.close();
  }
}
