// The hostile inputs of the fuzz suite, by category, written small into a folder: bad images (truncated,
// random bytes, bombs, extreme aspect ratios, 16-bit, CMYK, alpha, GIF/TIFF/SVG/HEIF) and bad tensor
// files (.npy and IDX headers that lie, wrong types, gzip bombs). Each case says what must happen: a
// DataFormatError whose message holds `expect`, or a result. hostile-child.ts runs them in a process
// of its own; runHostile collects what it saw (outcome, time, event-loop block, peak RSS).
import { spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import sharp from 'sharp';

import { encodeIdx, encodeNpy } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import {
  animatedGif,
  gzipBomb,
  idxWithHeader,
  noisePixels,
  npyWithHeader,
  png16,
  pngClaiming,
  solidImage,
  svgWithImage,
} from './hostile-inputs.js';

export interface HostileCase {
  category: string;
  name: string;
  kind: 'image' | 'file';
  path: string;
  options?: Record<string, unknown>;
  /** 'ok': a result; else a fragment of the DataFormatError's message. */
  expect: 'ok' | string;
}

export interface HostileResult {
  name: string;
  outcome: 'ok' | 'error';
  message: string;
  ms: number;
  blockMs: number;
}

/** Writes the bad images into `dir`; a few seconds, mostly sharp encoding and one 108 MB deflate. */
export async function imageCases(dir: string): Promise<HostileCase[]> {
  const cases: HostileCase[] = [];
  const add = (
    category: string,
    name: string,
    bytes: Uint8Array,
    expect: string,
    options?: Record<string, unknown>,
  ) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    cases.push({ category, name, kind: 'image', path, expect, ...(options ? { options } : {}) });
  };
  const small = (format: 'png' | 'jpeg' | 'webp' | 'gif' | 'tiff') => solidImage(48, 32, format);
  const rgb = (w: number, h: number) =>
    sharp(Buffer.from(noisePixels(w, h)), { raw: { width: w, height: h, channels: 3 } });

  // Truncated files: every decoder must notice, none may return a half image.
  const png = await rgb(64, 64).png().toBuffer();
  const jpeg = await rgb(64, 64).jpeg().toBuffer();
  const webp = await rgb(64, 64).webp().toBuffer();
  add('truncated', 'truncated-rows.png', pngClaiming(64, 64, 10), 'cannot decode image');
  add('truncated', 'truncated-half.png', png.subarray(0, png.length >> 1), 'cannot decode image');
  add('truncated', 'truncated-ihdr.png', png.subarray(0, 20), 'cannot decode image');
  add('truncated', 'truncated-half.jpg', jpeg.subarray(0, jpeg.length >> 1), 'cannot decode image');
  add('truncated', 'truncated-half.webp', webp.subarray(0, webp.length >> 1), 'cannot decode image');

  // Random bytes, alone or behind a real magic number.
  add('random bytes', 'empty.png', new Uint8Array(0), 'not a JPEG, PNG, WebP image (its bytes start (empty))');
  add('random bytes', 'noise-1k.png', noisePixels(20, 17, 5), 'not a JPEG, PNG, WebP image');
  add('random bytes', 'noise-64k.jpg', noisePixels(150, 146, 6), 'not a JPEG, PNG, WebP image');
  add(
    'random bytes',
    'png-magic-noise.png',
    Buffer.concat([png.subarray(0, 8), noisePixels(30, 30, 7)]),
    'cannot decode',
  );
  add(
    'random bytes',
    'jpeg-magic-noise.jpg',
    Buffer.concat([jpeg.subarray(0, 3), noisePixels(30, 30, 8)]),
    'cannot decode',
  );
  add('random bytes', 'text.png', Buffer.from('GIF? no: just text that says <html> and nothing else'), 'not a JPEG');

  // Decompression bombs: refused from the header, or, within the limits, decoded in bounded memory.
  add('bombs', 'claims-10-gigapixels.png', pngClaiming(100_000, 100_000), 'over the 40,000,000-pixel limit');
  add('bombs', 'claims-64-megapixels.png', pngClaiming(8_000, 8_000), '8000x8000 is 64,000,000 pixels');
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
  const hugeJpeg = Buffer.from(jpeg);
  hugeJpeg.writeUInt16BE(60_000, sof + 5);
  hugeJpeg.writeUInt16BE(60_000, sof + 7);
  add('bombs', 'claims-60000x60000.jpg', hugeJpeg, '60000x60000 is 3,600,000,000 pixels');
  const hugeWebp = Buffer.from(webp);
  const vp8 = hugeWebp.indexOf(Buffer.from([0x9d, 0x01, 0x2a]));
  if (vp8 > 0) {
    hugeWebp.writeUInt16LE(0x3fff, vp8 + 3);
    hugeWebp.writeUInt16LE(0x3fff, vp8 + 5);
    add('bombs', 'claims-16383x16383.webp', hugeWebp, 'is 268,402,689 pixels');
  }
  add('bombs', 'zeros-36-megapixels.png', pngClaiming(6_000, 6_000, 6_000), 'ok');

  // Extreme aspect ratios: refused past 20, or with the limit raised, only the crop is computed.
  const strip = (w: number, h: number) =>
    sharp({ create: { width: w, height: h, channels: 3, background: { r: 9, g: 99, b: 199 } } })
      .png({ compressionLevel: 9 })
      .toBuffer();
  add(
    'aspect ratio',
    'strip-1000000x1.png',
    await strip(1_000_000, 1),
    'aspect ratio of 1000000.0, over the limit of 20',
  );
  add('aspect ratio', 'strip-1x1000000.png', await strip(1, 1_000_000), 'aspect ratio of 1000000.0');
  add('aspect ratio', 'strip-5000000x1.png', await strip(5_000_000, 1), 'aspect ratio of 5000000.0');
  add('aspect ratio', 'strip-21x1.png', await strip(21, 1), 'aspect ratio of 21.0, over the limit of 20');
  add('aspect ratio', 'strip-20x1.png', await strip(20, 1), 'ok');
  add('aspect ratio', 'strip-5000000x1-allowed.png', await strip(5_000_000, 1), 'ok', {
    maxAspectRatio: 10_000_000,
    resize: 28,
    crop: 28,
  });
  add('aspect ratio', 'strip-1000000x1-no-crop.png', await strip(1_000_000, 1), 'over the 40,000,000-pixel limit', {
    maxAspectRatio: 10_000_000,
    crop: null,
  });

  // Depths and colour spaces PIL reads one way and libvips another.
  const values = Uint16Array.from({ length: 40 * 30 * 3 }, (_, i) => (i * 40503) & 0xffff);
  add('16-bit, CMYK, alpha', '16-bit-rgb.png', await png16(40, 30, 3, values), 'ok');
  add('16-bit, CMYK, alpha', '16-bit-gray.png', await png16(40, 30, 1, values.subarray(0, 1200)), '16-bit grayscale');
  add('16-bit, CMYK, alpha', 'cmyk.jpg', await rgb(40, 30).toColourspace('cmyk').jpeg().toBuffer(), 'ok');
  copyFileSync(join(packageRoot, 'test', 'testdata', 'images', 'textures', 'cmyk.jpg'), join(dir, 'cmyk-fixture.jpg'));
  cases.push({
    category: '16-bit, CMYK, alpha',
    name: 'cmyk-fixture.jpg',
    kind: 'image',
    path: join(dir, 'cmyk-fixture.jpg'),
    expect: 'ok',
  });
  const rgbaPixels = Uint8Array.from({ length: 40 * 30 * 4 }, (_, i) => (i * 73) & 0xff);
  const rgba = sharp(Buffer.from(rgbaPixels), { raw: { width: 40, height: 30, channels: 4 } });
  add('16-bit, CMYK, alpha', 'rgba.png', await rgba.png().toBuffer(), 'ok');
  add('16-bit, CMYK, alpha', 'palette.png', await rgb(40, 30).png({ palette: true }).toBuffer(), 'ok');
  add('16-bit, CMYK, alpha', 'gray-alpha.png', await rgba.toColourspace('b-w').png().toBuffer(), 'ok');

  // Formats beyond the raster defaults: refused unless asked for, and bounded when asked for.
  add('GIF, TIFF, SVG, HEIF', 'gif.png', await small('gif'), 'GIF images are not accepted');
  add('GIF, TIFF, SVG, HEIF', 'gif-allowed.gif', await small('gif'), 'ok', { formats: ['gif'] });
  add('GIF, TIFF, SVG, HEIF', 'animated.gif', await animatedGif(32, 24, 4), 'it has 4 frames or pages', {
    formats: ['gif'],
  });
  add('GIF, TIFF, SVG, HEIF', 'animated-first-frame.gif', await animatedGif(32, 24, 4), 'ok', {
    formats: ['gif'],
    firstFrame: true,
  });
  const gifScreen = Buffer.from(await small('gif'));
  gifScreen.writeUInt16LE(65_535, 6);
  gifScreen.writeUInt16LE(65_535, 8);
  // libvips sizes a GIF by its frames, not by the screen it claims: a bounded result.
  add('GIF, TIFF, SVG, HEIF', 'gif-claims-65535x65535.gif', gifScreen, 'ok', { formats: ['gif'] });
  add('GIF, TIFF, SVG, HEIF', 'tiff.png', await small('tiff'), 'TIFF images are not accepted');
  add('GIF, TIFF, SVG, HEIF', 'tiff-allowed.tif', await small('tiff'), 'ok', { formats: ['tiff'] });
  const heif = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } })
    .avif()
    .toBuffer()
    .catch(() => undefined);
  if (heif) add('GIF, TIFF, SVG, HEIF', 'avif.png', heif, 'HEIF/AVIF images are not accepted');
  add('GIF, TIFF, SVG, HEIF', 'svg-href.png', svgWithImage('secret.png'), 'SVG images are not accepted');
  add(
    'GIF, TIFF, SVG, HEIF',
    'svg-file-href.png',
    svgWithImage(`file://${join(dir, 'secret.png')}`),
    'SVG images are not accepted',
  );
  writeFileSync(join(dir, 'secret.png'), await solidImage(16, 16, 'png', { r: 255, g: 0, b: 0 }));
  add('GIF, TIFF, SVG, HEIF', 'svg-href-allowed.svg', svgWithImage('secret.png'), 'ok', {
    formats: ['svg'],
    resize: null,
    crop: null,
  });
  add(
    'GIF, TIFF, SVG, HEIF',
    'svg-claims-100000x100000.svg',
    Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" width="100000" height="100000"><rect width="1" height="1"/></svg>',
    ),
    'over the 40,000,000-pixel limit',
    { formats: ['svg'] },
  );
  const laughs =
    '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">' +
    Array.from(
      { length: 8 },
      (_, i) => `<!ENTITY ${String.fromCharCode(98 + i)} "${`&${String.fromCharCode(97 + i)};`.repeat(10)}">`,
    ).join('') +
    ']><svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><text>&i;</text></svg>';
  add('GIF, TIFF, SVG, HEIF', 'svg-billion-laughs.svg', Buffer.from(laughs), 'cannot decode image', {
    formats: ['svg'],
  });
  add('GIF, TIFF, SVG, HEIF', 'jpeg-named.png', jpeg, 'ok');
  return cases;
}

/** Writes the bad tensor files into `dir`. */
export function fileCases(dir: string): HostileCase[] {
  const cases: HostileCase[] = [];
  const add = (
    category: string,
    name: string,
    bytes: Uint8Array,
    expect: string,
    options?: Record<string, unknown>,
  ) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    cases.push({ category, name, kind: 'file', path, expect, ...(options ? { options } : {}) });
  };
  const npy = (dict: string, data?: Uint8Array) => npyWithHeader(dict, data);
  const f4 = (shape: string) => `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;

  add(
    'npy headers',
    'lying-shape.npy',
    npy(f4('(1000000000, 3, 224, 224)'), new Uint8Array(64)),
    'bytes of data for shape (1000000000, 3, 224, 224)',
  );
  add(
    'npy headers',
    'overflowing-shape.npy',
    npy(f4('(99999999999, 99999999999, 99999999999, 9)')),
    'more elements than any file can',
  );
  add('npy headers', 'short-data.npy', npy(f4('(10, 1, 2, 2)'), new Uint8Array(100)), 'expected 160 bytes of data');
  add('npy headers', 'long-data.npy', npy(f4('(1, 1, 2, 2)'), new Uint8Array(1000)), 'expected 16 bytes of data');
  add(
    'npy headers',
    'int32.npy',
    npy("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1, 1, 1), }", new Uint8Array(4)),
    'found int32',
  );
  add(
    'npy headers',
    'big-endian.npy',
    npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1, 1, 1, 1), }", new Uint8Array(4)),
    "unsupported dtype '>f4'",
  );
  add(
    'npy headers',
    'object.npy',
    npy("{'descr': '|O', 'fortran_order': False, 'shape': (1, 1, 1, 1), }", new Uint8Array(8)),
    "unsupported dtype '|O'",
  );
  add(
    'npy headers',
    'structured.npy',
    npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"),
    'structured dtypes are not supported',
  );
  add(
    'npy headers',
    'fortran.npy',
    npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 1, 1, 1), }", new Uint8Array(4)),
    'Fortran-order',
  );
  add(
    'npy headers',
    'code-in-header.npy',
    npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': __import__('os').system('id') }"),
    'unexpected key',
  );
  add('npy headers', 'negative-dim.npy', npy(f4('(-1, 1, 1, 1)')), 'expected a non-negative integer');
  add('npy headers', 'flat.npy', npy(f4('(16,)'), new Uint8Array(64)), 'expected images [n, c, h, w] or [n, h, w]');
  const longHeader = Buffer.from(npy(f4('(1, 1, 1, 1)')));
  longHeader.writeUInt16LE(60_000, 8);
  add('npy headers', 'header-length-60000.npy', longHeader, 'exceeds the 10000-byte limit');
  const version = Buffer.from(npy(f4('(1, 1, 1, 1)')));
  version[6] = 9;
  add('npy headers', 'version-9.npy', version, 'unsupported .npy format version 9.0');
  add('npy headers', 'truncated-preamble.npy', npy(f4('(1, 1, 1, 1)')).subarray(0, 9), 'truncated .npy preamble');

  add(
    'IDX headers',
    'lying-dims',
    idxWithHeader([60_000, 28, 28], new Uint8Array(784)),
    'expected 47040000 bytes of data for dims 60000x28x28',
  );
  add('IDX headers', 'huge-dims', idxWithHeader([0xffffffff, 0xffffffff, 0xffffffff]), 'an impossible number of bytes');
  const badType = Buffer.from(idxWithHeader([1, 2, 2], new Uint8Array(4)));
  badType[2] = 0x42;
  add('IDX headers', 'type-0x42', badType, 'unknown IDX type code 42');
  const floats = encodeIdx({ dims: [1, 2, 2], data: new Float32Array(4) });
  add('IDX headers', 'float-images', floats, 'expected uint8 images [n, height, width] but found float32');
  const ndims = Buffer.from(idxWithHeader([1, 2, 2]));
  ndims[3] = 200;
  add('IDX headers', 'ndims-200', ndims, 'implausible number of dimensions 200');
  add(
    'IDX headers',
    'truncated-header',
    idxWithHeader([5, 28, 28]).subarray(0, 10),
    'truncated header: 3 dims need 16 bytes',
  );
  add(
    'IDX headers',
    'labels-as-images',
    idxWithHeader([4], new Uint8Array(4)),
    'expected uint8 images [n, height, width]',
  );

  const idx10 = encodeIdx({ dims: [10, 28, 28], data: new Uint8Array(7840).fill(3) });
  add(
    'gzip',
    'declares-4-GiB-idx3-ubyte.gz',
    gzipBomb(idxWithHeader([5_600_000, 28, 28]), 1 << 20),
    'declares 4.1 GiB',
  );
  add(
    'gzip',
    'declares-4-GiB.npy.gz',
    gzipBomb(npy("{'descr': '|u1', 'fortran_order': False, 'shape': (5600000, 1, 28, 28), }"), 1 << 20),
    'declares 4.1 GiB',
  );
  add(
    'gzip',
    'declares-more-than-a-file.gz',
    gzipSync(idxWithHeader([0xffffffff, 0xffffffff, 0xffffffff])),
    'declares more bytes than any file holds',
  );
  add(
    'gzip',
    'inflates-past-header-64MiB.gz',
    gzipBomb(idxWithHeader([10, 28, 28]), 64 * 2 ** 20),
    'inflates past the 7856 bytes its header declares',
  );
  add('gzip', 'truncated-stream.gz', gzipSync(idx10).subarray(0, 40), 'corrupt gzip data (unexpected end of file)');
  add('gzip', 'truncated-data.gz', gzipSync(idx10.subarray(0, 4000)), 'gzip data ends after 4000 of the 7856 bytes');
  const corrupt = gzipSync(encodeIdx({ dims: [10, 28, 28], data: noisePixels(28, 28 * 10).subarray(0, 7840) }));
  corrupt.fill(0x33, corrupt.length >> 1, (corrupt.length >> 1) + 16);
  add('gzip', 'corrupt.gz', corrupt, 'corrupt gzip data');
  add('gzip', 'gzip-of-gzip.gz', gzipSync(gzipSync(idx10)), 'not a .npy file, an IDX file or a directory of images');
  add('gzip', 'gzip-of-noise.gz', gzipSync(noisePixels(100, 100)), 'not a .npy file, an IDX file');
  add('gzip', 'under-a-lowered-cap.gz', gzipSync(idx10), 'past the 4 KiB decompression limit', {
    maxGunzipBytes: 4096,
  });
  add('gzip', 'honest.npy.gz', gzipSync(encodeNpy({ dims: [10, 1, 28, 28], data: new Uint8Array(7840) })), 'ok');
  return cases;
}

/** Runs cases in a child process; the results in order, and its peak RSS. */
export function runHostile(
  cases: HostileCase[],
  dir: string,
  name: string,
): { results: HostileResult[]; maxRssMB: number } {
  const list = join(dir, `${name}.json`);
  writeFileSync(list, JSON.stringify(cases));
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(packageRoot, 'test', 'reference', 'hostile-child.ts'), list],
    {
      encoding: 'utf8',
      cwd: packageRoot,
      maxBuffer: 16 * 2 ** 20,
    },
  );
  if (child.status !== 0) throw new Error(`hostile-child exited ${child.status}: ${child.stderr.slice(-3000)}`);
  const lines = child.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as HostileResult & { maxRssMB?: number });
  const last = lines.pop()!;
  return { results: lines, maxRssMB: last.maxRssMB! };
}
