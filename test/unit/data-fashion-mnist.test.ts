// Locating and loading Fashion-MNIST: the test split shipped in data/fashion-mnist/, the training split from
// Debian's dataset-fashion-mnist package when it is installed, and a useful error when it is not.
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';

import { expect } from 'chai';

import {
  DataFormatError,
  debianFashionMnistDir,
  fashionMnistClasses,
  loadFashionMnist,
  locateFashionMnist,
  shippedFashionMnistDir,
} from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { useTempDir } from '../reference/temp-dir.js';

describe('data: Fashion-MNIST', () => {
  const tempDir = useTempDir('nfp-data-fmnist-');

  it('names its ten classes in label order', () => {
    expect(fashionMnistClasses).to.have.length(10);
    expect(fashionMnistClasses[0]).to.equal('T-shirt/top');
    expect(fashionMnistClasses[9]).to.equal('Ankle boot');
    expect(Object.isFrozen(fashionMnistClasses)).to.equal(true);
  });

  it('finds the test split in the repository before anywhere else', () => {
    expect(shippedFashionMnistDir).to.equal(join(packageRoot, 'data', 'fashion-mnist'));
    const { images, labels } = locateFashionMnist('test');
    expect(images).to.equal(join(shippedFashionMnistDir, 't10k-images-idx3-ubyte.gz'));
    expect(labels).to.equal(join(shippedFashionMnistDir, 't10k-labels-idx1-ubyte.gz'));
  });

  it('loads the test split: 10,000 images [n, 1, 28, 28] in [0, 1], the first an ankle boot', () => {
    const test = loadFashionMnist();
    expect(test.dims).to.deep.equal([10000, 1, 28, 28]);
    expect(test.labels.length).to.equal(10000);
    expect(test.labels[0]).to.equal(9);
    expect(test.classes[test.labels[0]!]).to.equal('Ankle boot');
    // The first image's top-left pixel is background, and some pixel of it is ink.
    expect(test.data[0]).to.equal(0);
    expect(Math.max(...test.data.subarray(0, 784))).to.be.greaterThan(0.9);
  });

  it('reads a split from a given folder, gzipped or not', () => {
    copyFileSync(
      join(shippedFashionMnistDir, 't10k-images-idx3-ubyte.gz'),
      join(tempDir(), 't10k-images-idx3-ubyte.gz'),
    );
    copyFileSync(
      join(shippedFashionMnistDir, 't10k-labels-idx1-ubyte.gz'),
      join(tempDir(), 't10k-labels-idx1-ubyte.gz'),
    );
    const test = loadFashionMnist({ split: 'test', dir: tempDir() });
    expect(test.dims[0]).to.equal(10000);
    const plain = join(tempDir(), 'plain');
    mkdirSync(plain);
    for (const name of ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
      writeFileSync(join(plain, name), gunzipSync(readFileSync(join(shippedFashionMnistDir, `${name}.gz`))));
    }
    expect(locateFashionMnist('test', plain).images).to.equal(join(plain, 't10k-images-idx3-ubyte'));
    const unpacked = loadFashionMnist({ dir: plain });
    expect(Array.from(unpacked.labels.subarray(0, 3))).to.deep.equal(Array.from(test.labels.subarray(0, 3)));
    expect(unpacked.data[400]).to.equal(test.data[400]);
  });

  it('asks for dataset-fashion-mnist when the training split is missing', () => {
    try {
      locateFashionMnist('train', tempDir());
      expect.fail('expected an error');
    } catch (err) {
      expect(err).to.be.instanceOf(DataFormatError);
      expect((err as Error).message).to.contain('Fashion-MNIST train split not found');
      expect((err as Error).message).to.contain('apt-get install dataset-fashion-mnist');
    }
    expect(() => loadFashionMnist({ split: 'validation' as 'train' })).to.throw(
      RangeError,
      "Expected 'train' or 'test' for split",
    );
  });

  const debianTrain = join(debianFashionMnistDir, 'train-images-idx3-ubyte.gz');
  (existsSync(debianTrain) ? it : it.skip)("loads the 60,000-image training split from Debian's package", () => {
    const train = loadFashionMnist({ split: 'train' });
    expect(train.dims).to.deep.equal([60000, 1, 28, 28]);
    expect(train.labels.length).to.equal(60000);
    expect(train.labels[0]).to.equal(9); // the training set also starts with an ankle boot
  });
});
