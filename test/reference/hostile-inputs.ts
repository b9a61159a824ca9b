// Bad inputs made in the test, small on disk however much they claim: images (bombs, strips, truncated,
// disguised formats) and tensor files (.npy and IDX headers that lie, gzip bombs). Nothing large is
// committed; each generator says what its bytes claim.
import { deflateSync, gzipSync } from 'node:zlib';

import sharp from 'sharp';

const crcTable = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function pngChunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])), 0);
  return Buffer.concat([head, body, crc]);
}

/**
 * A PNG whose header says width x height (8-bit RGB) and whose image data is `rows` rows of zeros:
 * with rows = height a valid image, with fewer a truncated one, with a huge size a header-only bomb.
 */
export function pngClaiming(width: number, height: number, rows = 0): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const raw = Buffer.alloc(rows * (1 + width * 3)); // filter byte 0 + zero pixels per row
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', deflateSync(raw, { level: 9 })),
    pngChunk('IEND', new Uint8Array(0)),
  ]);
}

/** A solid-colour image encoded by sharp in `format` (8-bit RGB unless told otherwise). */
export function solidImage(
  width: number,
  height: number,
  format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff',
  colour = { r: 200, g: 30, b: 90 },
): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: colour } })
    .toFormat(format)
    .toBuffer();
}

/** Noise with some structure (so that resizing has something to average), as raw RGB. */
export function noisePixels(width: number, height: number, seed = 1): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s >>> 24) + ((i / 3) % width)) & 0xff;
  }
  return out;
}

/** An animated GIF of `frames` frames (alternately dark and light). */
export function animatedGif(width: number, height: number, frames: number): Promise<Buffer> {
  const stack = Buffer.concat(
    Array.from({ length: frames }, (_, f) => Buffer.alloc(width * height * 3, f % 2 === 0 ? 40 : 220)),
  );
  return sharp(stack, { raw: { width, height: height * frames, channels: 3, pageHeight: height } })
    .gif({ loop: 0 })
    .toBuffer();
}

/** An SVG that draws one image from `href` over the whole canvas. */
export function svgWithImage(href: string, size = 16): Buffer {
  return Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">` +
      `<image href="${href}" x="0" y="0" width="${size}" height="${size}"/></svg>`,
  );
}

/** A 16-bit PNG from 16-bit values (1 channel: grayscale, 3: RGB). */
export function png16(width: number, height: number, channels: 1 | 3, values: Uint16Array): Promise<Buffer> {
  return sharp(values, { raw: { width, height, channels } })
    .toColourspace(channels === 1 ? 'grey16' : 'rgb16')
    .png()
    .toBuffer();
}

/** .npy bytes with the given header dict text (numpy's layout: preamble, padded header, then `data`). */
export function npyWithHeader(dict: string, data: Uint8Array = new Uint8Array(0)): Buffer {
  const unpadded = 10 + dict.length + 1;
  const header = `${dict}${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]).copy(pre);
  pre[6] = 1;
  pre.writeUInt16LE(header.length, 8);
  return Buffer.concat([pre, Buffer.from(header, 'latin1'), data]);
}

/** An IDX uint8 header for `dims`, followed by `data`. */
export function idxWithHeader(dims: number[], data: Uint8Array = new Uint8Array(0)): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = 0x08;
  head[3] = dims.length;
  dims.forEach((d, i) => {
    head.writeUInt32BE(d, 4 + 4 * i);
  });
  return Buffer.concat([head, data]);
}

/**
 * A gzip bomb: `header` followed by `zeros` zero bytes, compressed (gzip inflates zeros ~1,000x, so
 * 64 MiB of zeros is a 64 KB file). Compressed in 16 MiB pieces so the test never holds the whole.
 */
export function gzipBomb(header: Uint8Array, zeros: number): Buffer {
  const parts: Buffer[] = [gzipSync(header)];
  const block = Buffer.alloc(Math.min(zeros, 16 * 2 ** 20));
  for (let left = zeros; left > 0; left -= block.length) {
    parts.push(gzipSync(block.subarray(0, Math.min(block.length, left)), { level: 9 }));
  }
  return Buffer.concat(parts); // concatenated gzip members inflate as one stream
}
