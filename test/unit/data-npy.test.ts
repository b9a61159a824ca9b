// .npy reading and writing against files numpy wrote (test/testdata/npy, scripts/gen_image_fixtures.py),
// round trips, and a strict header parser that turns every malformed or unsupported file into a clear error.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { encodeNpy, NpyWriter, parseNpy, readNpy, toInt32Labels, writeNpy } from '../../src/data/index.js';
import type { NpyData } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { expectDataError } from '../reference/data-errors.js';
import { useTempDir } from '../reference/temp-dir.js';

const fixtures = join(packageRoot, 'test', 'testdata', 'npy');
const arange = (n: number, f: (i: number) => number): number[] => Array.from({ length: n }, (_, i) => f(i));

/** A .npy file with an arbitrary header (padded as numpy pads) and data. */
function npyWithHeader(dict: string, data: Uint8Array = new Uint8Array(0), version = 1): Buffer {
  const lengthBytes = version === 1 ? 2 : 4;
  const pad = (64 - ((8 + lengthBytes + dict.length + 1) % 64)) % 64;
  const header = Buffer.from(`${dict + ' '.repeat(pad)}\n`, 'latin1');
  const pre = Buffer.alloc(8 + lengthBytes);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(pre);
  if (version === 1) pre.writeUInt16LE(header.length, 8);
  else pre.writeUInt32LE(header.length, 8);
  return Buffer.concat([pre, header, data]);
}

describe('data: .npy', () => {
  const tempDir = useTempDir('nfp-data-npy-');

  it('reads every supported dtype as numpy wrote it', () => {
    const f32 = readNpy(join(fixtures, 'float32.npy'));
    expect(f32.dtype).to.equal('float32');
    expect(f32.dims).to.deep.equal([2, 3, 4]);
    expect(f32.data).to.be.instanceOf(Float32Array);
    expect(Array.from(f32.data as Float32Array)).to.deep.equal(arange(24, (i) => i / 8 - 1));

    const f64 = readNpy(join(fixtures, 'float64.npy'));
    expect(f64.dtype).to.equal('float64');
    expect(Array.from(f64.data as Float64Array)).to.deep.equal(arange(24, (i) => i / 3));

    const u8 = readNpy(join(fixtures, 'uint8.npy'));
    expect([u8.dtype, u8.data.constructor]).to.deep.equal(['uint8', Uint8Array]);
    expect(Array.from(u8.data as Uint8Array)).to.deep.equal(arange(24, (i) => i * 10));

    const i32 = readNpy(join(fixtures, 'int32.npy'));
    expect([i32.dtype, i32.data.constructor]).to.deep.equal(['int32', Int32Array]);
    expect(Array.from(i32.data as Int32Array)).to.deep.equal(arange(24, (i) => (i - 12) * 100000));

    const i64 = readNpy(join(fixtures, 'int64-labels.npy'));
    expect([i64.dtype, i64.dims]).to.deep.equal(['int64', [5]]);
    expect(i64.data).to.be.instanceOf(BigInt64Array);
    expect(Array.from(toInt32Labels(i64.data as BigInt64Array, 'int64-labels.npy'))).to.deep.equal([9, 2, 1, 1, 6]);
  });

  it('reads format 2.0, 0-d scalars and empty arrays', () => {
    const v2 = readNpy(join(fixtures, 'v2.npy'));
    expect(v2.dims).to.deep.equal([2, 3, 4]);
    expect(Array.from(v2.data as Float32Array)).to.deep.equal(arange(24, (i) => i / 8 - 1));
    const scalar = readNpy(join(fixtures, 'scalar.npy'));
    expect([scalar.dims, Array.from(scalar.data as Float32Array)]).to.deep.equal([[], [2.5]]);
    const empty = readNpy(join(fixtures, 'empty.npy'));
    expect([empty.dims, empty.data.length]).to.deep.equal([[0, 3], 0]);
  });

  it('writes byte for byte what numpy.save writes', () => {
    for (const name of ['float32', 'float64', 'uint8', 'int32', 'int64-labels', 'scalar', 'empty']) {
      const bytes = readFileSync(join(fixtures, `${name}.npy`));
      expect(Buffer.from(encodeNpy(parseNpy(bytes, name))).equals(bytes), name).to.equal(true);
    }
  });

  it('round-trips through a file, with the data 64-byte aligned', () => {
    const cases: { dims: number[]; data: NpyData }[] = [
      { dims: [4, 1, 2, 2], data: Float32Array.from(arange(16, (i) => Math.sin(i))) },
      { dims: [7], data: Float64Array.from(arange(7, (i) => 1 / (i + 1))) },
      { dims: [3, 2], data: Uint8Array.from([0, 1, 2, 253, 254, 255]) },
      { dims: [2], data: Int32Array.from([-(2 ** 31), 2 ** 31 - 1]) },
      { dims: [3], data: BigInt64Array.from([-(2n ** 63n), 0n, 2n ** 63n - 1n]) },
      { dims: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], data: new Float32Array(1) },
    ];
    for (const [i, array] of cases.entries()) {
      const path = join(tempDir(), `rt${i}.npy`);
      writeNpy(path, array);
      const bytes = readFileSync(path);
      expect((10 + bytes.readUInt16LE(8)) % 64).to.equal(0);
      const back = readNpy(path);
      expect(back.dims).to.deep.equal(array.dims);
      expect(back.data.constructor).to.equal(array.data.constructor);
      expect(Array.from(back.data as ArrayLike<unknown>)).to.deep.equal(Array.from(array.data as ArrayLike<unknown>));
    }
  });

  it('refuses Fortran order and unsupported dtypes with what to do instead', () => {
    expectDataError(
      () => readNpy(join(fixtures, 'fortran.npy')),
      join(fixtures, 'fortran.npy'),
      'Fortran-order arrays are not supported',
    );
    expectDataError(
      () => readNpy(join(fixtures, 'big-endian.npy')),
      join(fixtures, 'big-endian.npy'),
      "unsupported dtype '>f4'",
    );
    expectDataError(() => readNpy(join(fixtures, 'big-endian.npy')), join(fixtures, 'big-endian.npy'), 'big-endian');
    const f2 = npyWithHeader("{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(2));
    expectDataError(() => parseNpy(f2, 'half.npy'), 'half.npy', "unsupported dtype '<f2'");
    const objects = npyWithHeader("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8));
    expectDataError(() => parseNpy(objects, 'pickle.npy'), 'pickle.npy', "unsupported dtype '|O'");
  });

  it('parses headers strictly: anything but the literal numpy writes is an error', () => {
    const ok = (dict: string, size = 4): void => {
      const array = parseNpy(npyWithHeader(dict, new Uint8Array(size)), 'ok.npy');
      expect(array.dtype).to.equal('float32');
    };
    // Accepted: other key orders, double quotes, no trailing comma, Python 2 longs, spaces.
    ok("{'shape': (1,), 'fortran_order': False, 'descr': '<f4'}");
    ok('{"descr": "<f4", "fortran_order": False, "shape": (1, 1,)}');
    ok("{'descr':'<f4','fortran_order':False,'shape':(2L,)}", 8);
    ok("{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 1 , ) , }");

    const bad: [string, string][] = [
      ["{'descr': '<f4', 'shape': (1,), }", "missing key 'fortran_order'"],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'descr': '<f4'}", "duplicate key 'descr'"],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", "unexpected key 'extra'"],
      ["{'descr': '<f4', 'fortran_order': false, 'shape': (1,)}", 'expected True or False'],
      ["{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", 'expected True or False'],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", 'a one-dimensional shape needs a trailing comma'],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", 'expected a non-negative integer'],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}", "expected ',' or ')' in shape"],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (01,)}", "expected ',' or ')' in shape"],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", "expected '('"],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}", 'is too large'],
      [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 100000000, 100000000)}",
        'more elements than any file can',
      ],
      ["{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}", 'structured dtypes are not supported'],
      ["{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", "expected ',' or '}' at offset 17"],
      ["{'descr' '<f4', 'fortran_order': False, 'shape': (1,)}", "expected ':'"],
      ["{'descr': '<f4\\n', 'fortran_order': False, 'shape': (1,)}", 'escapes are not allowed'],
      ["{'descr': __import__('os').system('true'), 'fortran_order': False, 'shape': (1,)}", 'expected a string'],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", 'expected only padding and a newline'],
      ["{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", "expected ',' or '}'"],
      ["['descr', '<f4']", "expected '{'"],
      ["{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}", "expected ',' or '}'"],
    ];
    for (const [dict, fragment] of bad) {
      expectDataError(() => parseNpy(npyWithHeader(dict, new Uint8Array(4)), 'bad.npy'), 'bad.npy', fragment);
    }
    // A header must end in a newline (numpy pads with spaces, then '\n').
    const noNewline = npyWithHeader("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", new Uint8Array(4));
    noNewline[noNewline.length - 5] = 0x20;
    expectDataError(() => parseNpy(noNewline, 'nl.npy'), 'nl.npy', 'expected only padding and a newline');
  });

  it('rejects bad magic, versions, lengths and data sizes', () => {
    const good = readFileSync(join(fixtures, 'float32.npy'));
    const cases: [string, Buffer, string][] = [
      ['magic', Buffer.from('PK\x03\x04 this is a zip, e.g. an .npz', 'latin1'), 'not a .npy file'],
      ['empty', Buffer.alloc(0), 'not a .npy file'],
      ['preamble', good.subarray(0, 7), 'truncated .npy preamble'],
      ['v1-no-length', good.subarray(0, 9), 'truncated .npy preamble'],
      [
        'v3',
        Buffer.concat([good.subarray(0, 6), Buffer.from([3, 0]), good.subarray(8)]),
        'unsupported .npy format version 3.0',
      ],
      [
        'v1.1',
        Buffer.concat([good.subarray(0, 6), Buffer.from([1, 1]), good.subarray(8)]),
        'unsupported .npy format version 1.1',
      ],
      ['cut-header', good.subarray(0, 40), 'truncated: the header says 118 bytes but the file ends first'],
      ['cut-data', good.subarray(0, good.length - 1), 'expected 96 bytes of data for shape (2, 3, 4) <f4 but found 95'],
      [
        'long-data',
        Buffer.concat([good, Buffer.alloc(4)]),
        'expected 96 bytes of data for shape (2, 3, 4) <f4 but found 100',
      ],
      [
        'huge-header',
        npyWithHeader(
          `{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}${' '.repeat(20000)}`,
          new Uint8Array(4),
          2,
        ),
        'exceeds the 10000-byte limit',
      ],
    ];
    for (const [name, bytes, fragment] of cases) {
      const path = join(tempDir(), `${name}.npy`);
      writeFileSync(path, bytes);
      expectDataError(() => readNpy(path), path, fragment);
    }
  });

  it('converts labels to Int32Array only when every value is a valid class index', () => {
    expect(Array.from(toInt32Labels(BigInt64Array.from([0n, 5n, 2147483647n]), 'l'))).to.deep.equal([0, 5, 2147483647]);
    expectDataError(
      () => toInt32Labels(BigInt64Array.from([1n, 2n ** 31n]), 'l.npy'),
      'l.npy',
      'label 1 is 2147483648, expected a non-negative int32',
    );
    expectDataError(() => toInt32Labels(BigInt64Array.from([-1n]), 'l.npy'), 'l.npy', 'label 0 is -1');
    expectDataError(
      () => toInt32Labels(Uint8Array.from([3, 10]), 'l.npy', 10),
      'l.npy',
      'label 1 is 10, expected in [0, 10)',
    );
  });

  it('validates what it is asked to write', () => {
    expect(() => encodeNpy({ dims: [2, 2], data: new Float32Array(3) })).to.throw(RangeError, 'data holds 3');
    expect(() => encodeNpy({ dims: [-1], data: new Float32Array(0) })).to.throw(
      RangeError,
      'non-negative integer dims',
    );
    expect(() => encodeNpy({ dims: [1], data: new Int16Array(1) as unknown as Int32Array })).to.throw(TypeError);
  });

  it('writes a float32 file a batch of rows at a time, into place only when every row is written', async () => {
    const dir = join(tempDir(), 'writer');
    mkdirSync(dir);
    const values = Float32Array.from({ length: 5 * 2 * 3 }, (_, i) => i / 4);
    const path = join(dir, 'rows.npy');
    const writer = await NpyWriter.open(path, [5, 2, 3]);
    await writer.write(values.subarray(0, 12));
    expect(existsSync(path), 'not in place before close').to.equal(false);
    await writer.write(values.subarray(12));
    await writer.close();
    expect(readFileSync(path).equals(Buffer.from(encodeNpy({ dims: [5, 2, 3], data: values })))).to.equal(true);

    const short = await NpyWriter.open(join(dir, 'short.npy'), [5, 2, 3]);
    await short.write(values.subarray(0, 6));
    try {
      await short.close();
      expect.fail('expected a RangeError');
    } catch (err) {
      expect((err as Error).message).to.contain('Expected 30 values for the .npy file but 6 were written');
    }
    const aborted = await NpyWriter.open(join(dir, 'aborted.npy'), [1, 2, 3]);
    await aborted.abort();
    expect(readdirSync(dir).sort()).to.deep.equal(['rows.npy']);
  });
});
