// loadTensorFile, behind the CLI's --data: one path that is a .npy file, an IDX file or an image folder.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { expect } from 'chai';

import { loadTensorFile, locateFashionMnist, writeIdx, writeNpy } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { expectDataRejection as expectDataError } from '../reference/data-errors.js';
import { useTempDir } from '../reference/temp-dir.js';

describe('data: loadTensorFile', () => {
  const tempDir = useTempDir('nfp-data-tensor-');

  it('reads float32 .npy batches as they are, and [n, h, w] as one channel', async () => {
    const values = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i / 10);
    writeNpy(join(tempDir(), 'x.npy'), { dims: [2, 3, 2, 2], data: values });
    const nchw = await loadTensorFile(join(tempDir(), 'x.npy'));
    expect([nchw.format, nchw.dims, nchw.labels]).to.deep.equal(['npy', [2, 3, 2, 2], undefined]);
    expect(Array.from(nchw.data)).to.deep.equal(Array.from(values));
    writeNpy(join(tempDir(), 'nhw.npy'), { dims: [3, 2, 4], data: new Float64Array(24).fill(0.25) });
    const nhw = await loadTensorFile(join(tempDir(), 'nhw.npy'));
    expect(nhw.dims).to.deep.equal([3, 1, 2, 4]);
    expect(nhw.data).to.be.instanceOf(Float32Array);
    expect(nhw.data[23]).to.equal(0.25);
  });

  it('scales uint8 .npy images to [0, 1] and reads gzipped .npy', async () => {
    const path = join(tempDir(), 'u8.npy.gz');
    writeNpy(join(tempDir(), 'u8.npy'), { dims: [1, 1, 1, 3], data: Uint8Array.from([0, 51, 255]) });
    writeFileSync(path, gzipSync(readFileSync(join(tempDir(), 'u8.npy'))));
    const batch = await loadTensorFile(path);
    expect(Array.from(batch.data)).to.deep.equal([0, Math.fround(0.2), 1]);
  });

  it('reads IDX images with the MNIST-named labels beside them', async () => {
    const { images } = locateFashionMnist('test');
    const batch = await loadTensorFile(images);
    expect([batch.format, batch.dims]).to.deep.equal(['idx', [10000, 1, 28, 28]]);
    expect(batch.labels?.length).to.equal(10000);
    expect(batch.labels?.[0]).to.equal(9);

    const alone = join(tempDir(), 'alone-idx3-ubyte');
    writeIdx(alone, { dims: [2, 3, 3], data: new Uint8Array(18).fill(255) });
    const noLabels = await loadTensorFile(alone);
    expect([noLabels.dims, noLabels.labels, noLabels.data[0]]).to.deep.equal([[2, 1, 3, 3], undefined, 1]);
  });

  it('checks the companion label count', async () => {
    const imagesPath = join(tempDir(), 'x-images-idx3-ubyte.gz');
    writeIdx(imagesPath, { dims: [2, 2, 2], data: new Uint8Array(8) }, { gzip: true });
    writeIdx(join(tempDir(), 'x-labels-idx1-ubyte.gz'), { dims: [3], data: new Uint8Array(3) }, { gzip: true });
    await expectDataError(
      loadTensorFile(imagesPath),
      join(tempDir(), 'x-labels-idx1-ubyte.gz'),
      'has 3 labels for 2 images',
    );
  });

  it('reads an image folder with labels and classes', async () => {
    const batch = await loadTensorFile(join(packageRoot, 'test', 'testdata', 'images'), { resize: 40, crop: 32 });
    expect(batch.format).to.equal('image-folder');
    expect(batch.dims).to.deep.equal([7, 3, 32, 32]);
    expect(batch.classes).to.deep.equal(['gradients', 'textures']);
    expect(Array.from(batch.labels!)).to.deep.equal([0, 0, 0, 1, 1, 1, 1]);
  });

  it('rejects what is not a batch of images', async () => {
    const png = join(tempDir(), 'photo.png');
    copyFileSync(join(packageRoot, 'test', 'testdata', 'images', 'gradients', 'tall.png'), png);
    await expectDataError(loadTensorFile(png), png, 'not a .npy file, an IDX file or a directory of images');
    const ints = join(tempDir(), 'ints.npy');
    writeNpy(ints, { dims: [1, 1, 1, 1], data: new Int32Array(1) });
    await expectDataError(loadTensorFile(ints), ints, 'expected float32, float64 or uint8 images but found int32');
    const flat = join(tempDir(), 'flat.npy');
    writeNpy(flat, { dims: [4, 784], data: new Float32Array(4 * 784) });
    await expectDataError(
      loadTensorFile(flat),
      flat,
      'expected images [n, c, h, w] or [n, h, w] but found shape (4, 784)',
    );
    const labels = locateFashionMnist('test').labels;
    await expectDataError(
      loadTensorFile(labels),
      labels,
      'expected uint8 images [n, height, width] but found uint8 [10000]',
    );
    await expectDataError(
      loadTensorFile(join(tempDir(), 'missing.npy')),
      join(tempDir(), 'missing.npy'),
      'cannot read',
    );
  });
});
