// Image folders and single images against torchvision: the fixtures in test/testdata/images-expected were
// written by scripts/gen_image_fixtures.py with ImageFolder + Resize + CenterCrop + ToTensor.
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import {
  DataFormatError,
  decodeImage,
  listImageFolder,
  loadImageFolder,
  readNpy,
  toInt32Labels,
} from '../../src/data/index.js';
import type { ImageOptions } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { expectDataRejection as expectDataError } from '../reference/data-errors.js';
import { useTempDir } from '../reference/temp-dir.js';

const testdata = join(packageRoot, 'test', 'testdata');
const imagesDir = join(testdata, 'images');
const expectedDir = join(testdata, 'images-expected');
/** The brief's bound; on the machines measured so far the match is exact (0). */
const tolerance = 2 / 255;

function maxAbsDiff(a: Float32Array, b: ArrayLike<number>): number {
  expect(a.length).to.equal(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

describe('data: images', () => {
  const tempDir = useTempDir('nfp-data-images-');

  it('lists classes, files and labels in ImageFolder order', () => {
    const { classes, files, labels } = listImageFolder(imagesDir);
    const expectedFiles = readFileSync(join(expectedDir, 'files.txt'), 'utf8').trim().split('\n');
    expect(classes).to.deep.equal(['gradients', 'textures']);
    expect(files).to.deep.equal(expectedFiles.map((f) => join(imagesDir, f)));
    const expectedLabels = toInt32Labels(readNpy(join(expectedDir, 'labels.npy')).data as BigInt64Array, 'labels.npy');
    expect(Array.from(labels)).to.deep.equal(Array.from(expectedLabels));
  });

  const cases: { name: string; options: ImageOptions; expected: string; dims: number[] }[] = [
    {
      name: 'RGB, Resize(40) + CenterCrop(32)',
      options: { resize: 40, crop: 32 },
      expected: 'rgb-r40-c32.npy',
      dims: [7, 3, 32, 32],
    },
    {
      name: 'grayscale, Resize(40) + CenterCrop(32)',
      options: { resize: 40, crop: 32, channels: 1 },
      expected: 'gray-r40-c32.npy',
      dims: [7, 1, 32, 32],
    },
    {
      name: 'grayscale, Resize(24) + CenterCrop(30) (zero padding)',
      options: { resize: 24, crop: 30, channels: 1 },
      expected: 'gray-r24-c30.npy',
      dims: [7, 1, 30, 30],
    },
  ];
  for (const c of cases) {
    it(`matches torchvision within 2/255: ${c.name}`, async () => {
      const folder = await loadImageFolder(imagesDir, c.options);
      const expected = readNpy(join(expectedDir, c.expected));
      expect(folder.dims).to.deep.equal(c.dims);
      expect(expected.dims).to.deep.equal(c.dims);
      expect(folder.data).to.be.instanceOf(Float32Array);
      const perImage = folder.data.length / folder.dims[0];
      for (let i = 0; i < folder.dims[0]; i++) {
        const diff = maxAbsDiff(
          folder.data.subarray(i * perImage, (i + 1) * perImage),
          (expected.data as Float32Array).subarray(i * perImage, (i + 1) * perImage),
        );
        expect(diff, `${folder.files[i]}: max abs difference ${(diff * 255).toFixed(2)}/255`).to.be.at.most(tolerance);
      }
    });
  }

  it('decodes one image from a path or a Buffer, the same as in the folder', async () => {
    const folder = await loadImageFolder(imagesDir, { resize: 40, crop: 32 });
    const perImage = 3 * 32 * 32;
    for (const i of [0, 3, 5]) {
      const file = folder.files[i]!;
      const fromPath = await decodeImage(file, { resize: 40, crop: 32 });
      const fromBuffer = await decodeImage(new Uint8Array(readFileSync(file)), { resize: 40, crop: 32 });
      expect(fromPath.dims).to.deep.equal([1, 3, 32, 32]);
      expect(fromBuffer.dims).to.deep.equal([1, 3, 32, 32]);
      const inFolder = folder.data.subarray(i * perImage, (i + 1) * perImage);
      expect(maxAbsDiff(fromPath.data, inFolder)).to.equal(0);
      expect(maxAbsDiff(fromBuffer.data, inFolder)).to.equal(0);
    }
  });

  it('defaults to Resize(256) + CenterCrop(224) RGB, and can keep the original size', async () => {
    const file = join(imagesDir, 'gradients', 'sunset.jpg');
    const standard = await decodeImage(file);
    expect(standard.dims).to.deep.equal([1, 3, 224, 224]);
    const original = await decodeImage(file, { resize: null, crop: null });
    expect(original.dims).to.deep.equal([1, 3, 64, 96]);
    const gray = await decodeImage(file, { resize: 48, crop: null, channels: 1 });
    expect(gray.dims).to.deep.equal([1, 1, 48, 72]);
    let min = Infinity,
      max = -Infinity;
    for (const v of standard.data) [min, max] = [Math.min(min, v), Math.max(max, v)];
    expect(min).to.be.at.least(0);
    expect(max).to.be.at.most(1);
  });

  it('requires one size across a folder when there is no crop, naming the odd file', async () => {
    const root = join(tempDir(), 'sizes');
    mkdirSync(join(root, 'a'), { recursive: true });
    copyFileSync(join(imagesDir, 'gradients', 'sunset.jpg'), join(root, 'a', '1.jpg'));
    copyFileSync(join(imagesDir, 'gradients', 'sunset.jpg'), join(root, 'a', '2.jpg'));
    const same = await loadImageFolder(root, { resize: 20, crop: null });
    expect(same.dims).to.deep.equal([2, 3, 20, 30]);
    copyFileSync(join(imagesDir, 'gradients', 'tall.png'), join(root, 'a', '3.png'));
    try {
      await loadImageFolder(root, { resize: 20, crop: null, concurrency: 1 });
      expect.fail('expected an error');
    } catch (err) {
      expect(err).to.be.instanceOf(DataFormatError);
      expect((err as DataFormatError).file).to.equal(join(root, 'a', '3.png'));
      expect((err as Error).message).to.contain('after resizing but other images are 30x20; set crop');
    }
  });

  it(
    'sorts as ImageFolder does (checked against torchvision 0.14), walks subfolders, follows links and filters by ' +
      'extension',
    async () => {
      const root = join(tempDir(), 'order');
      const src = join(imagesDir, 'gradients', 'sunset.jpg');
      for (const cls of ['b', 'B', 'ä', '.hidden']) mkdirSync(join(root, cls, 'sub', 'deeper'), { recursive: true });
      copyFileSync(src, join(root, 'b', 'z.JPG'));
      copyFileSync(src, join(root, 'b', 'a.jpeg'));
      copyFileSync(src, join(root, 'b', 'sub', 'm.png'));
      copyFileSync(src, join(root, 'b', 'sub', 'deeper', 'k.webp'));
      mkdirSync(join(root, 'b', 'sub-x'));
      copyFileSync(src, join(root, 'b', 'sub-x', 'q.jpg')); // 'sub-x' < 'sub/deeper' as strings: '-' < '/'
      writeFileSync(join(root, 'b', 'notes.txt'), 'not an image');
      copyFileSync(src, join(root, 'B', 'x.jpg'));
      copyFileSync(src, join(root, 'ä', 'y.jpg'));
      copyFileSync(src, join(root, '.hidden', 'h.jpg'));
      writeFileSync(join(root, 'stray.jpg'), 'files at the top are not a class');
      symlinkSync(join(root, 'B'), join(root, 'linked'));
      symlinkSync(join(root, 'b'), join(root, 'b', 'sub', 'loop')); // a cycle: visited once, not forever

      const { classes, files, labels } = listImageFolder(root);
      expect(classes).to.deep.equal(['.hidden', 'B', 'b', 'linked', 'ä']);
      const relative = files.map((f) => f.slice(root.length + 1));
      expect(relative).to.deep.equal([
        '.hidden/h.jpg',
        'B/x.jpg',
        'b/a.jpeg',
        'b/z.JPG',
        'b/sub/m.png',
        'b/sub-x/q.jpg',
        'b/sub/deeper/k.webp',
        'linked/x.jpg',
        'ä/y.jpg',
      ]);
      expect(Array.from(labels)).to.deep.equal([0, 1, 2, 2, 2, 2, 2, 3, 4]);
      const loaded = await loadImageFolder(root, { resize: 16, crop: 16 });
      expect(loaded.dims).to.deep.equal([9, 3, 16, 16]);
    },
  );

  it('names the file that cannot be decoded: garbage, truncated, or not there', async () => {
    const root = join(tempDir(), 'broken');
    mkdirSync(join(root, 'cls'), { recursive: true });
    const good = readFileSync(join(imagesDir, 'gradients', 'wide_big.jpg'));
    copyFileSync(join(imagesDir, 'gradients', 'sunset.jpg'), join(root, 'cls', 'a.jpg'));
    writeFileSync(join(root, 'cls', 'b.jpg'), good.subarray(0, Math.floor(good.length / 2)));
    await expectDataError(loadImageFolder(root), join(root, 'cls', 'b.jpg'), 'cannot decode image');

    const garbage = join(tempDir(), 'garbage.png');
    writeFileSync(garbage, Buffer.from('this is not a PNG at all'));
    await expectDataError(decodeImage(garbage), garbage, 'cannot decode image');
    await expectDataError(
      decodeImage(join(tempDir(), 'missing.jpg')),
      join(tempDir(), 'missing.jpg'),
      'cannot decode image',
    );
    await expectDataError(decodeImage(Buffer.from([1, 2, 3])), 'image buffer (3 bytes)', 'cannot decode image');
    await expectDataError(decodeImage(new Uint8Array(0)), 'image buffer (0 bytes)', 'cannot decode image');
  });

  it('rejects folders without classes or without images', async () => {
    const empty = join(tempDir(), 'empty');
    mkdirSync(empty);
    await expectDataError(loadImageFolder(empty), empty, 'no class folders (expected root/<class>/<image>)');
    const noImages = join(tempDir(), 'no-images');
    mkdirSync(join(noImages, 'cats'), { recursive: true });
    mkdirSync(join(noImages, 'dogs'), { recursive: true });
    copyFileSync(join(imagesDir, 'gradients', 'sunset.jpg'), join(noImages, 'dogs', 'd.jpg'));
    writeFileSync(join(noImages, 'cats', 'readme.txt'), '');
    await expectDataError(
      loadImageFolder(noImages),
      noImages,
      'no images (.jpg .jpeg .png .webp) in class folder(s): cats',
    );
    await expectDataError(
      loadImageFolder(join(tempDir(), 'absent')),
      join(tempDir(), 'absent'),
      'cannot read image folder',
    );
    const file = join(imagesDir, 'gradients', 'sunset.jpg');
    await expectDataError(loadImageFolder(file), file, 'cannot read image folder');
  });

  it('validates options, naming the one at fault', async () => {
    const file = join(imagesDir, 'gradients', 'sunset.jpg');
    for (const [options, fragment] of [
      [{ resize: 0 }, 'for resize but received 0'],
      [{ crop: 2.5 }, 'for crop but received 2.5'],
      [{ channels: 2 }, 'Expected 1 or 3 for channels but received 2'],
    ] as [ImageOptions, string][]) {
      try {
        await decodeImage(file, options);
        expect.fail('expected a RangeError');
      } catch (err) {
        expect(err).to.be.instanceOf(RangeError);
        expect((err as Error).message).to.contain(fragment);
      }
    }
    try {
      await loadImageFolder(imagesDir, { concurrency: 0 });
      expect.fail('expected a RangeError');
    } catch (err) {
      expect((err as Error).message).to.contain('for concurrency but received 0');
    }
  });
});
