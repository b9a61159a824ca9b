// Where Fashion-MNIST lives: the test split ships in data/fashion-mnist/, the training split comes from
// Debian's dataset-fashion-mnist package (60,000 images are too many to carry in the repository).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from '../paths.js';
import { DataFormatError } from './errors.js';
import { idxImagesToBatch, readIdx, readIdxLabels } from './idx.js';
import type { NchwBatch } from './image-batch.js';

/** Class names in label order (labels 0-9), as the dataset's authors give them. */
export const fashionMnistClasses: readonly string[] = Object.freeze([
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
]);

export type FashionMnistSplit = 'train' | 'test';

export interface FashionMnist extends NchwBatch {
  labels: Int32Array;
  classes: readonly string[];
}

export const shippedFashionMnistDir: string = join(packageRoot, 'data', 'fashion-mnist');
export const debianFashionMnistDir = '/usr/share/datasets/fashion-mnist';

const prefix: Record<FashionMnistSplit, string> = { train: 'train', test: 't10k' };
const expectedCount: Record<FashionMnistSplit, number> = { train: 60_000, test: 10_000 };

/** First existing of name.gz and name in dir (the upstream files are gzipped; unpacked copies also work). */
function findFile(dir: string, name: string): string | undefined {
  return [`${name}.gz`, name].map((n) => join(dir, n)).find((p) => existsSync(p));
}

/**
 * Paths of a split's image and label files: in `dir` when given, else the repository's data/fashion-mnist/
 * first, then Debian's /usr/share/datasets/fashion-mnist/.
 */
export function locateFashionMnist(
  split: FashionMnistSplit = 'test',
  dir?: string,
): { images: string; labels: string } {
  const dirs = dir !== undefined ? [dir] : [shippedFashionMnistDir, debianFashionMnistDir];
  for (const d of dirs) {
    const images = findFile(d, `${prefix[split]}-images-idx3-ubyte`);
    const labels = findFile(d, `${prefix[split]}-labels-idx1-ubyte`);
    if (images !== undefined && labels !== undefined) return { images, labels };
  }
  const where = dirs.join(' or ');
  // Only the test split ships with the package; Debian packages the training split.
  const hint = split === 'train' ? '; install it with `sudo apt-get install dataset-fashion-mnist`' : '';
  throw new DataFormatError(
    where,
    `Fashion-MNIST ${split} split not found (${prefix[split]}-{images-idx3,labels-idx1}-ubyte[.gz])${hint}`,
  );
}

/** A Fashion-MNIST split as float32 [n, 1, 28, 28] in [0, 1] with Int32 labels 0-9. */
export function loadFashionMnist(options: { split?: FashionMnistSplit; dir?: string } = {}): FashionMnist {
  const split = options.split ?? 'test';
  if (split !== 'train' && split !== 'test')
    throw new RangeError(`Expected 'train' or 'test' for split but received ${String(split)}`);
  const paths = locateFashionMnist(split, options.dir);
  const batch = idxImagesToBatch(readIdx(paths.images), paths.images);
  const labels = readIdxLabels(paths.labels);
  const [n, , h, w] = batch.dims;
  if (n !== expectedCount[split] || h !== 28 || w !== 28) {
    throw new DataFormatError(
      paths.images,
      `expected ${expectedCount[split]} images of 28x28 but found ${n} of ${w}x${h}`,
    );
  }
  if (labels.length !== n) throw new DataFormatError(paths.labels, `has ${labels.length} labels for ${n} images`);
  const bad = labels.findIndex((l) => l >= fashionMnistClasses.length);
  if (bad >= 0) throw new DataFormatError(paths.labels, `label ${bad} is ${labels[bad]}, expected 0-9`);
  return { ...batch, labels, classes: fashionMnistClasses };
}
