// IDX reading and writing: round trips of every type, the shipped Fashion-MNIST test set, and every kind
// of broken file giving an error that names the file and the problem.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { expect } from 'chai';

import {
  encodeIdx,
  locateFashionMnist,
  parseIdx,
  readIdx,
  readIdxImages,
  readIdxLabels,
  writeIdx,
} from '../../src/data/index.js';
import type { IdxArray } from '../../src/data/index.js';
import { expectDataError } from '../reference/data-errors.js';
import { useTempDir } from '../reference/temp-dir.js';

/** An IDX header by hand, so broken ones can be built. */
function header(typeCode: number, dims: number[]): Buffer {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b[2] = typeCode;
  b[3] = dims.length;
  dims.forEach((d, i) => {
    b.writeUInt32BE(d, 4 + 4 * i);
  });
  return b;
}

describe('data: IDX', () => {
  const tempDir = useTempDir('nfp-data-idx-');

  it('round-trips every IDX type, plain and gzipped', () => {
    const arrays: IdxArray[] = [
      { dtype: 'uint8', dims: [2, 3, 4], data: Uint8Array.from({ length: 24 }, (_, i) => i * 10) },
      { dtype: 'int8', dims: [5], data: Int8Array.from([-128, -1, 0, 1, 127]) },
      { dtype: 'int16', dims: [2, 2], data: Int16Array.from([-32768, -2, 300, 32767]) },
      { dtype: 'int32', dims: [3], data: Int32Array.from([-(2 ** 31), 7, 2 ** 31 - 1]) },
      { dtype: 'float32', dims: [1, 3], data: Float32Array.from([-1.5, 0.1, 3e38]) },
      { dtype: 'float64', dims: [2, 1, 1], data: Float64Array.from([Math.PI, -1e-300]) },
      { dtype: 'uint8', dims: [0, 28, 28], data: new Uint8Array(0) },
    ];
    for (const [i, array] of arrays.entries()) {
      for (const gzip of [false, true]) {
        const path = join(tempDir(), `rt${i}${gzip ? '.gz' : ''}`);
        writeIdx(path, array, { gzip });
        expect(readFileSync(path)[0]).to.equal(gzip ? 0x1f : 0x00);
        const back = readIdx(path);
        expect(back.dtype).to.equal(array.dtype);
        expect(back.dims).to.deep.equal(array.dims);
        expect(Array.from(back.data as ArrayLike<number>)).to.deep.equal(Array.from(array.data as ArrayLike<number>));
        expect(back.data.constructor).to.equal(array.data.constructor);
      }
    }
  });

  it('writes the MNIST byte layout: 00 00 type ndims, big-endian dims and values', () => {
    const bytes = encodeIdx({ dims: [2], data: Int16Array.from([258, -2]) });
    expect(Array.from(bytes)).to.deep.equal([0, 0, 0x0b, 1, 0, 0, 0, 2, 1, 2, 0xff, 0xfe]);
  });

  it('reads the shipped Fashion-MNIST test images and labels', () => {
    const { images, labels: labelsPath } = locateFashionMnist('test');
    const batch = readIdxImages(images);
    expect(batch.dims).to.deep.equal([10000, 1, 28, 28]);
    expect(batch.data).to.be.instanceOf(Float32Array);
    expect(batch.data.length).to.equal(10000 * 28 * 28);
    let min = Infinity,
      max = -Infinity,
      sum = 0;
    for (const v of batch.data) {
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    expect(min).to.equal(0);
    expect(max).to.equal(1);
    expect(sum / batch.data.length).to.be.within(0.25, 0.32); // Fashion-MNIST's mean pixel is about 0.286
    // Every value is a byte / 255.
    for (let i = 0; i < 5000; i++) expect(Math.fround(Math.round(batch.data[i]! * 255) / 255)).to.equal(batch.data[i]!);

    const labels = readIdxLabels(labelsPath);
    expect(labels).to.be.instanceOf(Int32Array);
    expect(labels.length).to.equal(10000);
    expect(Array.from(labels.subarray(0, 5))).to.deep.equal([9, 2, 1, 1, 6]); // ankle boot, pullover, trouser, ...
    const perClass = new Array<number>(10).fill(0);
    for (const l of labels) perClass[l]!++;
    expect(perClass).to.deep.equal(new Array(10).fill(1000));
  });

  it('rejects a truncated data section, naming the file, dims and byte counts', () => {
    const path = join(tempDir(), 't10k.gz');
    writeFileSync(path, gzipSync(Buffer.concat([header(0x08, [10, 28, 28]), Buffer.alloc(7830)])));
    expectDataError(() => readIdx(path), path, 'expected 7840 bytes of data for dims 10x28x28 but found 7830');
  });

  it('rejects trailing bytes after the data', () => {
    const path = join(tempDir(), 'long');
    writeFileSync(path, Buffer.concat([header(0x0c, [3]), Buffer.alloc(13)]));
    expectDataError(() => readIdx(path), path, 'expected 12 bytes of data for dims 3 but found 13');
  });

  it('rejects a wrong magic, an unknown type code, implausible ndims and short headers', () => {
    const cases: [string, Buffer, string | RegExp][] = [
      [
        'png',
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        'not an IDX file: magic starts 89 50, expected 00 00',
      ],
      ['type', Buffer.concat([header(0x07, [1]), Buffer.alloc(1)]), 'unknown IDX type code 07'],
      ['ndims0', Buffer.from([0, 0, 8, 0]), 'implausible number of dimensions 0'],
      ['ndims200', Buffer.from([0, 0, 8, 200]), 'implausible number of dimensions 200'],
      [
        'short-header',
        header(0x08, [10, 28, 28]).subarray(0, 10),
        'truncated header: 3 dims need 16 bytes but the file has 10',
      ],
      ['tiny', Buffer.from([0, 0]), 'too short for an IDX header (2 bytes)'],
      ['empty', Buffer.alloc(0), 'too short for an IDX header (0 bytes)'],
      [
        'overflow',
        header(0x0e, [0xffffffff, 0xffffffff, 0xffffffff]),
        'expected an impossible number of bytes of data',
      ],
    ];
    for (const [name, bytes, fragment] of cases) {
      const path = join(tempDir(), name);
      writeFileSync(path, bytes);
      expectDataError(() => readIdx(path), path, fragment);
      expectDataError(() => parseIdx(bytes, name), name, fragment);
    }
  });

  it('rejects corrupt and truncated gzip', () => {
    const good = gzipSync(Buffer.concat([header(0x08, [100]), Buffer.alloc(100)]));
    const truncated = join(tempDir(), 'cut.gz');
    writeFileSync(truncated, good.subarray(0, good.length - 10));
    expectDataError(() => readIdx(truncated), truncated, 'corrupt gzip data');
    const garbage = join(tempDir(), 'garbage.gz');
    writeFileSync(garbage, Buffer.from([0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]));
    expectDataError(() => readIdx(garbage), garbage, 'corrupt gzip data');
  });

  it('checks that image files hold uint8 [n, h, w] and label files integer [n] >= 0', () => {
    const labelsFile = join(tempDir(), 'labels-idx1');
    writeIdx(labelsFile, { dims: [3], data: Uint8Array.from([1, 2, 3]) });
    expectDataError(
      () => readIdxImages(labelsFile),
      labelsFile,
      'expected uint8 images [n, height, width] but found uint8 [3]',
    );
    const floats = join(tempDir(), 'float-images');
    writeIdx(floats, { dims: [1, 2, 2], data: new Float32Array(4) });
    expectDataError(() => readIdxImages(floats), floats, 'but found float32 [1, 2, 2]');
    expectDataError(() => readIdxLabels(floats), floats, 'expected labels [n] but found dims [1, 2, 2]');
    const floatLabels = join(tempDir(), 'float-labels');
    writeIdx(floatLabels, { dims: [2], data: new Float64Array(2) });
    expectDataError(() => readIdxLabels(floatLabels), floatLabels, 'expected integer labels but found float64');
    const negative = join(tempDir(), 'negative-labels');
    writeIdx(negative, { dims: [3], data: Int8Array.from([0, 4, -1]) });
    expectDataError(() => readIdxLabels(negative), negative, 'label 2 is -1');
    expect(Array.from(readIdxLabels(labelsFile))).to.deep.equal([1, 2, 3]);
  });

  it('reports a missing file with its path', () => {
    const path = join(tempDir(), 'nope.gz');
    expect(() => readIdx(path)).to.throw(/ENOENT.*nope\.gz/);
  });

  it('validates what it is asked to write', () => {
    expect(() => encodeIdx({ dims: [3], data: new Float32Array(2) })).to.throw(RangeError, 'data holds 2');
    expect(() => encodeIdx({ dims: [], data: new Float32Array(1) })).to.throw(RangeError, 'uint32 dims');
    expect(() => encodeIdx({ dims: [1], data: new Uint16Array(1) as unknown as Uint8Array })).to.throw(TypeError);
  });
});
