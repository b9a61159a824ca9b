// Images as hostile input: sizes bounded from the header before decoding, formats recognised by
// content and accepted only when asked for, the resize computing only what the crop keeps (the same
// pixels as resizing everything), and large images resized off the main thread.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';
import sharp from 'sharp';

import { decodeImage } from '../../src/data/index.js';
import { decodeInWorker, decodeWorkers } from '../../src/data/decode-pool.js';
import { runDecodeJob } from '../../src/data/decode-job.js';
import type { DecodeSettings } from '../../src/data/decode-job.js';
import type { Pixels } from '../../src/data/pixels.js';
import { centreCropToTensor, resizeCropToTensor, resizeShorterSide } from '../../src/data/torchvision-transforms.js';
import { packageRoot } from '../../src/paths.js';
import { expectDataRejection } from '../reference/data-errors.js';
import { animatedGif, noisePixels, png16, pngClaiming, solidImage, svgWithImage } from '../reference/hostile-inputs.js';
import { TestRandom } from '../reference/random.js';
import { useTempDir } from '../reference/temp-dir.js';

const buffer = (b: Uint8Array) => `image buffer (${b.length} bytes)`;

describe('data: image limits and formats', () => {
  const tempDir = useTempDir('nfp-image-limits-');

  it('resizes only the crop and gets the pixels of resizing everything, then cropping', () => {
    const rng = new TestRandom(7);
    for (let trial = 0; trial < 60; trial++) {
      const width = 1 + rng.int(90);
      const height = 1 + rng.int(90);
      const channels = rng.int(2) === 0 ? 1 : 3;
      const image: Pixels = {
        data: noisePixels(width, height, trial).subarray(0, width * height * channels),
        width,
        height,
        channels,
      };
      const resize = rng.int(4) === 0 ? null : 1 + rng.int(70);
      const crop = rng.int(4) === 0 ? null : 1 + rng.int(80); // larger than the image at times: zero padding
      const whole = resize === null ? image : resizeShorterSide(image, resize);
      const expected = centreCropToTensor(whole, crop);
      const got = resizeCropToTensor(image, resize, crop);
      const what = `${width}x${height}x${channels}, resize ${resize}, crop ${crop}`;
      expect([got.width, got.height], what).to.deep.equal([expected.width, expected.height]);
      expect(Buffer.from(got.data.buffer).equals(Buffer.from(expected.data.buffer)), what).to.equal(true);
    }
  });

  it('refuses a 1,000,000 x 1 strip by its aspect ratio before decoding, and resizes only the crop when allowed', async () => {
    const strip = await sharp({
      create: { width: 1_000_000, height: 1, channels: 3, background: { r: 10, g: 200, b: 60 } },
    })
      .png({ compressionLevel: 9 })
      .toBuffer();
    expect(strip.length).to.be.below(5000);
    await expectDataRejection(
      decodeImage(strip),
      buffer(strip),
      '1000000x1 has an aspect ratio of 1000000.0, over the limit of 20',
    );
    // Allowed, the crop is what is computed: before, the 256,000,000 x 256 resize took seconds and gigabytes.
    const started = performance.now();
    const image = await decodeImage(strip, { maxAspectRatio: 2_000_000, resize: 28, crop: 28 });
    expect(performance.now() - started).to.be.below(5000);
    expect(image.dims).to.deep.equal([1, 3, 28, 28]);
    expect([image.data[0], image.data[28 * 28], image.data[2 * 28 * 28]]).to.deep.equal(
      [10, 200, 60].map((v) => Math.fround(v / 255)),
    );
  });

  it('refuses images over the pixel limit from their header, before decoding a pixel', async () => {
    const claim = pngClaiming(100_000, 100_000); // 65 bytes that claim 10 gigapixels
    await expectDataRejection(
      decodeImage(claim),
      buffer(claim),
      '100000x100000 is 10,000,000,000 pixels, over the 40,000,000-pixel limit (maxPixels)',
    );
    const small = await solidImage(400, 300, 'png');
    await expectDataRejection(
      decodeImage(small, { maxPixels: 100_000 }),
      buffer(small),
      'over the 100,000-pixel limit',
    );
    // The result is bounded too: a resize of 60,000 would make a 60,000 x 80,000 image.
    await expectDataRejection(
      decodeImage(small, { resize: 60_000, crop: null }),
      buffer(small),
      'it would be 80000x60000 after resizing, over the 40,000,000-pixel limit',
    );
    await expectDataRejection(
      decodeImage(small, { maxFileBytes: 100 }),
      buffer(small),
      'over the 100 bytes limit (maxFileBytes)',
    );
    const file = join(tempDir(), 'big.png');
    writeFileSync(file, small);
    await expectDataRejection(
      decodeImage(file, { maxFileBytes: 100 }),
      file,
      'over the 100 bytes limit (maxFileBytes)',
    );
  });

  it('refuses truncated images and random bytes, naming what the bytes are', async () => {
    const truncated = pngClaiming(64, 64, 10);
    await expectDataRejection(decodeImage(truncated), buffer(truncated), 'cannot decode image');
    const jpeg = await solidImage(64, 64, 'jpeg');
    const cut = jpeg.subarray(0, jpeg.length >> 1);
    await expectDataRejection(decodeImage(cut), buffer(cut), 'cannot decode image');
    const random = Buffer.from(noisePixels(10, 10));
    await expectDataRejection(
      decodeImage(random),
      buffer(random),
      /not a JPEG, PNG, WebP image \(its bytes start [0-9a-f ]+\)/,
    );
  });

  it('reads JPEG, PNG and WebP by content whatever the file is called; GIF, TIFF and SVG only when asked', async () => {
    const png = await solidImage(20, 20, 'png');
    const misnamed = join(tempDir(), 'photo.jpg');
    writeFileSync(misnamed, png);
    expect((await decodeImage(misnamed, { resize: null, crop: null })).dims).to.deep.equal([1, 3, 20, 20]);
    for (const format of ['gif', 'tiff'] as const) {
      const image = await solidImage(20, 20, format);
      const name = format === 'gif' ? 'GIF' : 'TIFF';
      await expectDataRejection(
        decodeImage(image),
        buffer(image),
        `${name} images are not accepted (formats: JPEG, PNG, WebP); pass formats: [..., '${format}']`,
      );
      const read = await decodeImage(image, { formats: ['png', format], resize: null, crop: null });
      expect(read.dims).to.deep.equal([1, 3, 20, 20]);
    }
    const gif = await animatedGif(16, 12, 3);
    await expectDataRejection(decodeImage(gif, { formats: ['gif'] }), buffer(gif), 'it has 3 frames or pages');
    const first = await decodeImage(gif, { formats: ['gif'], firstFrame: true, resize: null, crop: null });
    expect(first.dims).to.deep.equal([1, 3, 12, 16]);
    expect(Math.round(first.data[0]! * 255)).to.be.closeTo(40, 8);
  });

  it('refuses an SVG saved as .png, and never lets an SVG read files it names', async () => {
    const dir = join(tempDir(), 'svg');
    mkdirSync(dir);
    const secret = join(dir, 'secret.png');
    writeFileSync(secret, await solidImage(16, 16, 'png', { r: 255, g: 0, b: 0 }));
    for (const href of ['secret.png', `file://${secret}`]) {
      const path = join(dir, 'x.png');
      writeFileSync(path, svgWithImage(href));
      await expectDataRejection(decodeImage(path), path, 'SVG images are not accepted (formats: JPEG, PNG, WebP)');
      // Asked for, the SVG is rendered from its bytes alone: no folder, no file, no red.
      const rendered = await decodeImage(path, { formats: ['svg'], resize: null, crop: null });
      expect(rendered.dims).to.deep.equal([1, 3, 16, 16]);
      expect(Math.max(...rendered.data.subarray(0, 256)), `red from ${href}`).to.equal(0);
    }
    // The check is not vacuous: an image embedded in the SVG itself is drawn.
    const inline = svgWithImage(`data:image/png;base64,${readFileSync(secret).toString('base64')}`);
    const drawn = await decodeImage(inline, { formats: ['svg'], resize: null, crop: null });
    expect(drawn.data[0]).to.equal(1);
  });

  it('reads 16-bit RGB as PIL does (the high byte) and refuses 16-bit grayscale, which PIL clips to white', async () => {
    const values = Uint16Array.from({ length: 4 * 2 * 3 }, (_, i) => (i * 40503 + 12345) % 65536);
    const rgb = await png16(4, 2, 3, values);
    const read = await decodeImage(rgb, { resize: null, crop: null });
    const planar = Array.from({ length: 24 }, (_, i) => values[(i % 8) * 3 + Math.floor(i / 8)]! >> 8);
    expect(Array.from(read.data, (v) => Math.round(v * 255))).to.deep.equal(planar);
    const gray = await png16(4, 2, 1, new Uint16Array(8).fill(40_000));
    await expectDataRejection(decodeImage(gray), buffer(gray), '16-bit grayscale images are not read');
  });

  it('decodes large images on a worker thread, to the same pixels as on the main thread', async () => {
    const settings: DecodeSettings = {
      channels: 3,
      resize: 256,
      crop: 224,
      formats: ['jpeg', 'png', 'webp'],
      firstFrame: false,
      maxPixels: 40_000_000,
      maxAspectRatio: 20,
      maxFileBytes: 2 ** 27,
    };
    for (const file of ['gradients/wide_big.jpg', 'textures/cmyk.jpg', 'textures/leaf.webp']) {
      const bytes = new Uint8Array(readFileSync(join(packageRoot, 'test', 'testdata', 'images', file)));
      for (const channels of [1, 3] as const) {
        const inline = await runDecodeJob(bytes, { ...settings, channels });
        const worker = await decodeInWorker(bytes, { ...settings, channels }, false);
        expect(Buffer.from(worker.data.buffer).equals(Buffer.from(inline.data.buffer)), file).to.equal(true);
      }
      expect(bytes.length, 'the caller keeps its buffer').to.be.above(0);
    }
    expect(decodeWorkers()).to.be.at.least(1);
    // A worker's refusal comes back as the image's error.
    const claim = pngClaiming(100_000, 100_000);
    try {
      await decodeInWorker(claim, settings, false);
      expect.fail('expected a refusal');
    } catch (err) {
      expect((err as Error).message).to.contain('over the 40,000,000-pixel limit');
    }
  });

  it('validates the limit options', async () => {
    const png = await solidImage(8, 8, 'png');
    for (const [options, fragment] of [
      [{ maxPixels: 0 }, 'Expected a positive integer for maxPixels but received 0'],
      [{ maxAspectRatio: 0.5 }, 'Expected a number >= 1 for maxAspectRatio but received 0.5'],
      [{ maxFileBytes: 1.5 }, 'Expected a positive integer for maxFileBytes but received 1.5'],
      [
        { formats: ['bmp'] },
        'Expected formats among jpeg, png, webp, gif, tiff, svg, heif for formats but received bmp',
      ],
      [{ formats: [] }, 'for formats but received'],
    ] as [Record<string, unknown>, string][]) {
      try {
        await decodeImage(png, options);
        expect.fail(`expected a RangeError for ${JSON.stringify(options)}`);
      } catch (err) {
        expect(err).to.be.instanceOf(RangeError);
        expect((err as Error).message).to.contain(fragment);
      }
    }
  });
});
