// openTensorFile: tensor files a batch at a time (the same values as reading them whole), sizes checked
// from the header before any row is read, gzip inflated as a stream and capped, and whole-file loads in
// the memory of their float32 result.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { expect } from 'chai';

import {
  encodeIdx,
  encodeNpy,
  loadImageFolder,
  loadLabelFile,
  loadTensorFile,
  openTensorFile,
  readIdx,
} from '../../src/data/index.js';
import type { TensorBatch } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { expectDataError, expectDataRejection } from '../reference/data-errors.js';
import { gzipBomb, idxWithHeader, npyWithHeader } from '../reference/hostile-inputs.js';
import { useTempDir } from '../reference/temp-dir.js';

async function collect(batches: AsyncGenerator<TensorBatch>): Promise<TensorBatch[]> {
  const out: TensorBatch[] = [];
  for await (const b of batches) out.push(b);
  return out;
}

describe('data: openTensorFile', () => {
  const tempDir = useTempDir('nfp-tensor-reader-');

  it('reads .npy and IDX files, gzipped or not, in batches equal to the whole file', async () => {
    const n = 23;
    const u8 = Uint8Array.from({ length: n * 2 * 3 * 4 }, (_, i) => (i * 37) & 0xff);
    const files: Record<string, Uint8Array> = {
      'u8.npy': encodeNpy({ dims: [n, 2, 3, 4], data: u8 }),
      'f32.npy': encodeNpy({ dims: [n, 2, 3, 4], data: Float32Array.from(u8, (v) => v / 7) }),
      'f64-nhw.npy': encodeNpy({ dims: [n, 6, 4], data: Float64Array.from(u8, (v) => v / 3) }),
      'images-idx3-ubyte': encodeIdx({ dims: [n, 6, 4], data: u8 }),
    };
    for (const [name, bytes] of Object.entries(files)) {
      for (const gz of [false, true]) {
        const path = join(tempDir(), gz ? `${name}.gz` : name);
        writeFileSync(path, gz ? gzipSync(bytes) : bytes);
        const whole = await loadTensorFile(path);
        const reader = await openTensorFile(path);
        expect(reader.dims).to.deep.equal(whole.dims);
        const per = whole.data.length / n;
        for (const [size, from, to] of [
          [5, 0, n],
          [64, 0, n],
          [4, 3, 17],
          [1, 22, 23],
          [7, 9, 9],
        ] as const) {
          const batches = await collect(reader.batches(size, { from, to }));
          expect(batches.map((b) => b.from)).to.deep.equal(
            Array.from({ length: Math.ceil((to - from) / size) }, (_, i) => from + i * size),
          );
          const joined = new Float32Array(batches.reduce((a, b) => a + b.data.length, 0));
          let at = 0;
          for (const b of batches) {
            expect(b.dims.slice(1)).to.deep.equal(whole.dims.slice(1));
            joined.set(b.data, at);
            at += b.data.length;
          }
          expect(Array.from(joined), `${path} [${from}, ${to}) by ${size}`).to.deep.equal(
            Array.from(whole.data.subarray(from * per, to * per)),
          );
        }
      }
    }
  });

  it('reads image folders a batch at a time, as loadImageFolder does', async () => {
    const root = join(packageRoot, 'test', 'testdata', 'images');
    const whole = await loadImageFolder(root, { resize: 40, crop: 32 });
    const reader = await openTensorFile(root, { resize: 40, crop: 32 });
    expect([reader.format, reader.dims, reader.classes]).to.deep.equal(['image-folder', whole.dims, whole.classes]);
    expect(Array.from(reader.labels!)).to.deep.equal(Array.from(whole.labels));
    const batches = await collect(reader.batches(3, { from: 1 }));
    expect(batches.map((b) => b.dims[0])).to.deep.equal([3, 3]);
    const per = 3 * 32 * 32;
    expect(Array.from(batches[1]!.data)).to.deep.equal(Array.from(whole.data.subarray(4 * per, 7 * per)));
  });

  it('checks a file against its header before reading a row: lying sizes, huge shapes, wrong types', async () => {
    const cases: [string, Uint8Array, string | RegExp][] = [
      [
        'npy-lies.npy',
        npyWithHeader(
          "{'descr': '|u1', 'fortran_order': False, 'shape': (1000000000, 3, 224, 224), }",
          new Uint8Array(10),
        ),
        'expected 150528000000000 bytes of data for shape (1000000000, 3, 224, 224) |u1 but found 10',
      ],
      [
        'npy-ints.npy',
        npyWithHeader("{'descr': '<i4', 'fortran_order': False, 'shape': (1, 1, 1, 1), }", new Uint8Array(4)),
        'expected float32, float64 or uint8 images but found int32',
      ],
      [
        'npy-flat.npy',
        npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", new Uint8Array(24)),
        'expected images [n, c, h, w] or [n, h, w] but found shape (2, 3)',
      ],
      [
        'npy-header.npy',
        npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'evil': __import__('os') }"),
        "bad .npy header (unexpected key 'evil')",
      ],
      [
        'idx-lies',
        idxWithHeader([60000, 28, 28], new Uint8Array(100)),
        'expected 47040000 bytes of data for dims 60000x28x28 but found 100',
      ],
      [
        'idx-huge',
        idxWithHeader([0xffffffff, 0xffffffff, 0xffffffff]),
        'expected an impossible number of bytes of data for dims 4294967295x4294967295x4294967295 but found 0',
      ],
      ['idx-truncated-header', idxWithHeader([5, 28, 28]).subarray(0, 9), 'truncated header: 3 dims need 16 bytes'],
      ['empty', new Uint8Array(0), 'not a .npy file, an IDX file or a directory of images'],
    ];
    for (const [name, bytes, fragment] of cases) {
      const path = join(tempDir(), name);
      writeFileSync(path, bytes);
      await expectDataRejection(openTensorFile(path), path, fragment);
    }
  });

  it('refuses a gzip bomb from its header, and a gzip stream longer than its header as it inflates', async () => {
    // 4 KB claiming 5,600,000 images (4.4 GB): refused before inflating past the header.
    const claim = join(tempDir(), 'bomb-idx3-ubyte.gz');
    writeFileSync(claim, gzipBomb(idxWithHeader([5_600_000, 28, 28]), 1 << 20));
    await expectDataRejection(
      openTensorFile(claim),
      claim,
      'gzip data declares 4.1 GiB (5600000x1x28x28 uint8), past the 1 GiB decompression limit (maxGunzipBytes)',
    );
    await expectDataRejection(loadTensorFile(claim), claim, 'past the 1 GiB decompression limit');
    // A header that declares 10 images in front of 64 MiB of zeros: stopped at the first chunk past them.
    const longer = join(tempDir(), 'longer.gz');
    writeFileSync(longer, gzipBomb(idxWithHeader([10, 28, 28]), 64 * 2 ** 20));
    const reader = await openTensorFile(longer);
    expect(reader.dims).to.deep.equal([10, 1, 28, 28]);
    const started = performance.now();
    await expectDataRejection(
      collect(reader.batches(4)),
      longer,
      'gzip data inflates past the 7856 bytes its header declares (10x1x28x28 uint8): a decompression bomb',
    );
    expect(performance.now() - started, 'stopped early, not after 64 MiB').to.be.below(2000);
    // The first rows are still readable: only reading to the end finds the excess.
    expect((await collect(reader.batches(4, { to: 8 }))).length).to.equal(2);
  });

  it('refuses truncated and corrupt gzip data, and honours maxGunzipBytes', async () => {
    const idx = encodeIdx({ dims: [100, 4, 4], data: new Uint8Array(1600).fill(9) });
    const truncated = join(tempDir(), 'truncated.gz');
    writeFileSync(truncated, gzipSync(idx.subarray(0, 800)));
    const reader = await openTensorFile(truncated);
    await expectDataRejection(
      collect(reader.batches(32)),
      truncated,
      'gzip data ends after 800 of the 1616 bytes its header declares (100x1x4x4 uint8)',
    );
    const corrupt = join(tempDir(), 'corrupt.gz');
    const noisy = encodeIdx({
      dims: [100, 4, 4],
      data: Uint8Array.from({ length: 1600 }, (_, i) => (i * i * 7919) >>> 3),
    });
    const gz = gzipSync(noisy);
    gz.fill(0x55, gz.length >> 1, (gz.length >> 1) + 20);
    writeFileSync(corrupt, gz);
    await expectDataRejection(loadTensorFile(corrupt), corrupt, 'corrupt gzip data');
    const small = join(tempDir(), 'small.gz');
    writeFileSync(small, gzipSync(idx));
    await expectDataRejection(
      openTensorFile(small, { maxGunzipBytes: 1000 }),
      small,
      'gzip data declares 1.6 KiB (100x1x4x4 uint8), past the 1000 bytes decompression limit',
    );
    expect((await loadTensorFile(small, { maxGunzipBytes: 1616 })).dims).to.deep.equal([100, 1, 4, 4]);
  });

  it('caps the whole-file readers too: readIdx and loadLabelFile stop inflating at the limit', () => {
    const bomb = join(tempDir(), 'labels-bomb.gz');
    writeFileSync(bomb, gzipBomb(idxWithHeader([8 * 2 ** 20]), 8 * 2 ** 20));
    expectDataError(
      () => readIdx(bomb, { maxGunzipBytes: 2 ** 20 }),
      bomb,
      'gzip data inflates further, past the 1 MiB decompression limit (maxGunzipBytes)',
    );
    expectDataError(() => loadLabelFile(bomb, { maxGunzipBytes: 2 ** 20 }), bomb, 'past the 1 MiB decompression limit');
    expect(loadLabelFile(bomb).length).to.equal(8 * 2 ** 20);
  });

  it('loads a uint8 .npy in the memory of its float32 values (no intermediate array on the heap)', function () {
    this.timeout(60_000);
    // 24 MB of uint8 images; with a 64 MB heap, Float32Array.from(data, fn) ran out of heap and aborted.
    const path = join(tempDir(), 'u8-many.npy');
    const n = 30_000;
    writeFileSync(path, encodeNpy({ dims: [n, 1, 28, 28], data: new Uint8Array(n * 784).fill(51) }));
    const script =
      `import { loadTensorFile } from ${JSON.stringify(join(packageRoot, 'src', 'data', 'index.ts'))};` +
      `const t = await loadTensorFile(${JSON.stringify(path)});` +
      'console.log(JSON.stringify({ dims: t.dims, last: t.data[t.data.length - 1] }));';
    const child = spawnSync(
      process.execPath,
      ['--max-old-space-size=64', '--import', 'tsx', '--input-type=module', '-e', script],
      { encoding: 'utf8', cwd: packageRoot },
    );
    expect(child.status, child.stderr.slice(-2000)).to.equal(0);
    expect(JSON.parse(child.stdout)).to.deep.equal({ dims: [n, 1, 28, 28], last: Math.fround(0.2) });
  });
});
