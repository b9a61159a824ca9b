// The fingerprint bank: fitting recovers planted separating neurons; the .nfp file round-trips and
// rejects 1,000+ corrupted files with a clean BankFormatError (bit flips, truncation at every
// section boundary and elsewhere, wrong version, huge counts, indices >= N, mangled header fields);
// shards merge.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { expect } from 'chai';

import { SeededRandom } from '../../src/random.js';
import {
  BankFormatError,
  FingerprintBank,
  decodeBank,
  describeBank,
  encodeBank,
  fitClass,
  generateSigningKeys,
  keyId,
  readBank,
  writeBank,
} from '../../src/bank/index.js';
import type { AttackFamily, BankHeader, ClassFingerprints } from '../../src/bank/index.js';
import { buildBank, cleanShare, drawCandidates } from '../../src/bank/index.js';
import { FGSM } from '../../src/attacks/index.js';
import { GradientModel } from '../../src/autodiff/index.js';
import { loadFashionMnist } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { TestRandom } from '../reference/random.js';
import { useTempDir } from '../reference/temp-dir.js';
import { runCommands } from '../reference/cli.js';
import { registerBankCommand } from '../../src/cli/bank.js';

const families = ['pgd', 'cw'];

function randomFingerprints(rnd: TestRandom, count: number, k: number, neurons: number): ClassFingerprints {
  const sd = (n: number) => Float32Array.from({ length: n }, () => rnd.uniform(0.05, 1));
  return {
    indices: rnd.subsets(count, k, neurons),
    mu0: rnd.floats(count),
    sd0: sd(count),
    mu1: rnd.floats(families.length * count),
    sd1: sd(families.length * count),
    effect: Float32Array.from({ length: count }, () => rnd.uniform(1.5, 4)),
    passed: count * 3,
  };
}

function syntheticBank(seed = 1, classes = 4, fittedClasses = [0, 1, 2, 3], neurons = 300, k = 5): FingerprintBank {
  const rnd = new TestRandom(seed);
  const fitted = new Map(
    fittedClasses.map((c) => [
      c,
      { fingerprints: randomFingerprints(rnd, 3 + c * 2, k, neurons), clean: 100, attacked: [90, 80] },
    ]),
  );
  if (fittedClasses.includes(2))
    fitted.get(2)!.fingerprints = { ...fitted.get(2)!.fingerprints, relaxed: 'test relaxation' };
  return FingerprintBank.fromClasses(
    {
      model: { sha256: 'ab'.repeat(32), source: 'synthetic.onnx', inputShape: [1, 28, 28], classes },
      taps: [
        { tensor: 'features', size: neurons - 10 },
        { tensor: 'logits', size: 10 },
      ],
      neurons,
      k,
      families,
      fit: {
        candidates: 1000,
        k,
        pMax: 1e-3,
        dMin: 1.5,
        topK: 50,
        minFingerprints: 3,
        maxCorrelation: 1,
        attacks: { pgd: { eps: 0.1 }, cw: {} },
        seed: 7,
      },
      created: '2026-11-25T00:00:00.000Z',
    },
    fitted,
  );
}

/** Recomputes the trailing SHA-256, as an attacker who edits a bank would. */
function resign(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out.set(
    createHash('sha256')
      .update(out.subarray(0, out.length - 32))
      .digest(),
    out.length - 32,
  );
  return out;
}

/** The file with its header JSON replaced (arrays kept, padding redone, checksum recomputed). */
function withHeader(bytes: Uint8Array, mutate: (h: Record<string, unknown>) => unknown): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const length = view.getUint32(12, true);
  const header = JSON.parse(Buffer.from(bytes.subarray(16, 16 + length)).toString('utf8')) as Record<string, unknown>;
  const returned = mutate(header);
  const changed = returned === undefined ? header : returned;
  // A string returned is the header's JSON text as it is.
  const json = Buffer.from(typeof changed === 'string' ? changed : JSON.stringify(changed), 'utf8');
  const arrays = bytes.subarray(Math.ceil((16 + length) / 4) * 4, bytes.length - 32);
  const start = Math.ceil((16 + json.length) / 4) * 4;
  const out = new Uint8Array(start + arrays.length + 32);
  out.set(bytes.subarray(0, 12));
  new DataView(out.buffer).setUint32(12, json.length, true);
  out.set(json, 16);
  out.set(arrays, start);
  return resign(out);
}

function rejects(bytes: Uint8Array, what: string, message?: RegExp): void {
  let error: unknown;
  try {
    decodeBank(bytes, 'fuzz.nfp');
  } catch (e) {
    error = e;
  }
  expect(error, what).to.be.instanceOf(BankFormatError);
  if (message) expect((error as Error).message, what).to.match(message);
}

describe('bank file (.nfp)', () => {
  const dir = useTempDir('nfp-bank-');

  it('round-trips every field and array', () => {
    const bank = syntheticBank();
    const back = decodeBank(encodeBank(bank));
    expect(back.header).to.deep.equal(bank.header);
    for (const key of ['indices', 'mu0', 'sd0', 'mu1', 'sd1', 'effect'] as const)
      expect([...back.arrays[key]]).to.deep.equal([...bank.arrays[key]]);
    expect(back.range(2)).to.deep.equal(bank.range(2));
    expect(back.header.classes[2]!.relaxed).to.equal('test relaxation');
  });

  it('writes atomically and reads back; a failed write leaves no file behind', () => {
    const path = join(dir(), 'a.nfp');
    writeBank(path, syntheticBank());
    expect(readBank(path).fingerprints).to.equal(syntheticBank().fingerprints);
    expect(readdirSync(dir()).filter((f) => f.includes('.tmp-'))).to.deep.equal([]);
    expect(() => writeBank(join(dir(), 'missing', 'b.nfp'), syntheticBank())).to.throw();
    expect(existsSync(join(dir(), 'missing'))).to.equal(false);
    expect(() => readBank(join(dir(), 'nope.nfp'))).to.throw(BankFormatError, /cannot read/);
  });

  it('rejects 1,000+ corrupted files with a BankFormatError, never a crash or a hang', () => {
    const good = encodeBank(syntheticBank());
    const rnd = new TestRandom(99);
    const started = performance.now();
    let cases = 0;
    // Bit flips anywhere: the checksum catches them.
    for (let i = 0; i < 500; i++, cases++) {
      const bad = good.slice();
      const at = rnd.int(bad.length);
      bad[at] = bad[at]! ^ (1 << rnd.int(8));
      rejects(bad, `bit flip at ${at}`);
    }
    // Truncation at every section boundary and around it, and at random lengths.
    const length = new DataView(good.buffer).getUint32(12, true);
    const headerEnd = Math.ceil((16 + length) / 4) * 4;
    const bank = syntheticBank();
    const F = bank.fingerprints;
    const sizes = [F * 5, F, F, 2 * F, 2 * F, F].map((n) => n * 4);
    const boundaries = [0, 4, 8, 12, 16, 16 + length, headerEnd];
    let at = headerEnd;
    for (const s of sizes) {
      at += s;
      boundaries.push(at);
    }
    boundaries.push(good.length - 32, good.length - 1);
    for (const b of boundaries) {
      for (const delta of [-1, 0, 1]) {
        const cut = b + delta;
        if (cut < 0 || cut >= good.length) continue;
        rejects(good.subarray(0, cut), `truncated at ${cut}`);
        rejects(resign(good.subarray(0, Math.max(cut, 48))), `truncated at ${cut}, re-signed`);
        cases += 2;
      }
    }
    for (let i = 0; i < 100; i++, cases++) rejects(good.subarray(0, rnd.int(good.length)), 'random truncation');
    // Appended bytes.
    rejects(resign(new Uint8Array([...good, 0, 0, 0, 0])), 'appended bytes', /fingerprint arrays/);
    // Wrong magic and version (re-signed, so only the field itself is wrong).
    const magic = good.slice();
    magic[0] = 0x4d;
    rejects(resign(magic), 'bad magic', /bad magic/);
    for (const v of [0, 3, 255, 2 ** 32 - 1]) {
      const bad = good.slice();
      new DataView(bad.buffer).setUint32(8, v, true);
      rejects(resign(bad), `version ${v}`, /unsupported bank format version/);
      cases++;
    }
    // Version 2 (signed) without a valid signature trailer.
    const unsignedAsSigned = good.slice();
    new DataView(unsignedAsSigned.buffer).setUint32(8, 2, true);
    rejects(resign(unsignedAsSigned), 'version 2 without a signature', /signature trailer is malformed/);
    cases++;
    for (const h of [2 ** 32 - 1, 2 ** 30, good.length]) {
      const bad = good.slice();
      new DataView(bad.buffer).setUint32(12, h, true);
      rejects(resign(bad), `header length ${h}`, /header length/);
      cases++;
    }
    // Indices >= N and non-finite or non-positive statistics, re-signed.
    const indexAt = headerEnd + 4 * rnd.int(F * 5);
    const big = good.slice();
    new DataView(big.buffer).setUint32(indexAt, 300, true);
    rejects(resign(big), 'index = N', /out of range for 300 neurons/);
    const huge = good.slice();
    new DataView(huge.buffer).setUint32(indexAt, 2 ** 32 - 1, true);
    rejects(resign(huge), 'index 2^32-1', /out of range/);
    const sd0At = headerEnd + sizes[0]! + sizes[1]!;
    for (const v of [0, -1, NaN, Infinity]) {
      const bad = good.slice();
      new DataView(bad.buffer).setFloat32(sd0At, v, true);
      rejects(resign(bad), `sd0 ${v}`, /sd0\[0\]/);
      cases++;
    }
    // Header fields: huge and negative counts, wrong types, missing fields, inconsistent sizes.
    const mutations: Array<[string, (h: Record<string, unknown>) => unknown]> = [
      [
        'huge count',
        (h) => {
          (h.classes as Array<Record<string, unknown>>)[0]!.count = 2 ** 31;
        },
      ],
      [
        'count 2^53',
        (h) => {
          (h.classes as Array<Record<string, unknown>>)[1]!.count = 2 ** 53;
        },
      ],
      [
        'negative count',
        (h) => {
          (h.classes as Array<Record<string, unknown>>)[0]!.count = -1;
        },
      ],
      [
        'fractional count',
        (h) => {
          (h.classes as Array<Record<string, unknown>>)[0]!.count = 1.5;
        },
      ],
      [
        'count off by one',
        (h) => {
          (h.classes as Array<Record<string, unknown>>)[0]!.count = 4;
        },
      ],
      [
        'k 0',
        (h) => {
          h.k = 0;
        },
      ],
      [
        'k huge',
        (h) => {
          h.k = 1e9;
        },
      ],
      [
        'k > neurons',
        (h) => {
          h.k = 301;
        },
      ],
      [
        'neurons 0',
        (h) => {
          h.neurons = 0;
        },
      ],
      [
        'neurons string',
        (h) => {
          h.neurons = '300';
        },
      ],
      [
        'tap sizes disagree',
        (h) => {
          (h.taps as Array<Record<string, unknown>>)[0]!.size = 1;
        },
      ],
      [
        'no families',
        (h) => {
          h.families = [];
        },
      ],
      [
        'too many families',
        (h) => {
          h.families = Array.from({ length: 65 }, (_, i) => `f${i}`);
        },
      ],
      [
        'family count mismatch',
        (h) => {
          (h.classes as Array<Record<string, unknown>>)[0]!.attacked = [1];
        },
      ],
      [
        'classes mismatch',
        (h) => {
          (h.model as Record<string, unknown>).classes = 5;
        },
      ],
      [
        'bad sha',
        (h) => {
          (h.model as Record<string, unknown>).sha256 = 'xyz';
        },
      ],
      [
        'missing model',
        (h) => {
          delete h.model;
        },
      ],
      [
        'missing fit',
        (h) => {
          delete h.fit;
        },
      ],
      [
        'fitted not boolean',
        (h) => {
          (h.classes as Array<Record<string, unknown>>)[0]!.fitted = 'yes';
        },
      ],
      [
        'classes not array',
        (h) => {
          h.classes = {};
        },
      ],
      ['header is an array', () => [1, 2, 3]],
      ['header is null', () => null],
      [
        'calibration perClass short',
        (h) => {
          h.calibration = {
            fpr: 0.05,
            draws: 25,
            combine: 'max',
            global: 1,
            perClass: [1],
            images: 10,
            drawsPerImage: 1,
          };
        },
      ],
      [
        'calibration combine',
        (h) => {
          h.calibration = {
            fpr: 0.05,
            draws: 25,
            combine: 'mean',
            global: 1,
            perClass: [1, 2, 3, 4],
            images: 10,
            drawsPerImage: 1,
          };
        },
      ],
      ...(
        [
          'sd 0',
          'sd negative',
          'one class short',
          'not a pair',
          'mean string',
          'family missing',
          'not an object',
        ] as const
      ).map((what): [string, (h: Record<string, unknown>) => unknown] => [
        `calibration confidence ${what}`,
        (h) => {
          const pairs = (): unknown[] => [
            [0, 1],
            [0, 1],
            [0, 1],
            [0, 1],
          ];
          const perFamily = (): unknown[] => pairs().map((p) => (h.families as unknown[]).map(() => p));
          const confidence: Record<string, unknown> = { fingerprint: perFamily(), margin: pairs() };
          if (what === 'sd 0') (confidence.margin as unknown[])[2] = [0, 0];
          if (what === 'sd negative') (confidence.fingerprint as unknown[][])[0]![0] = [0, -1];
          if (what === 'one class short') confidence.margin = pairs().slice(1);
          if (what === 'not a pair') (confidence.margin as unknown[])[1] = [0, 1, 2];
          if (what === 'mean string') (confidence.fingerprint as unknown[][])[3]![0] = ['0', 1];
          if (what === 'family missing') (confidence.fingerprint as unknown[][])[1] = [];
          h.calibration = {
            fpr: 0.05,
            draws: 25,
            combine: 'max',
            global: 1,
            perClass: [1, 2, 3, 4],
            images: 10,
            drawsPerImage: 1,
            confidence: what === 'not an object' ? 7 : confidence,
          };
        },
      ]),
      [
        'created missing',
        (h) => {
          delete h.created;
        },
      ],
    ];
    for (const [what, mutate] of mutations) {
      rejects(withHeader(good, mutate), what);
      cases++;
    }
    // Random JSON values in random header fields.
    const values: unknown[] = [null, -1, 0, 1e308, 'x', [], {}, true, 2 ** 31, NaN];
    for (let i = 0; i < 300; i++) {
      const bad = withHeader(good, (h) => {
        const keys = ['neurons', 'k', 'families', 'classes', 'taps', 'model', 'fit', 'created'];
        const key = keys[rnd.int(keys.length)]!;
        h[key] = values[rnd.int(values.length)];
      });
      let error: unknown;
      try {
        decodeBank(bad, 'fuzz');
      } catch (e) {
        error = e;
      }
      // Some replacements keep the header valid (e.g. created: 'x'); every other one must be rejected cleanly.
      if (error !== undefined) expect(error).to.be.instanceOf(BankFormatError);
      cases++;
    }
    // Not JSON, and invalid UTF-8.
    const notJson = good.slice();
    notJson[16] = 0x7b;
    notJson[17] = 0x7b;
    rejects(resign(notJson), 'not JSON', /not valid JSON/);
    const notUtf8 = good.slice();
    notUtf8[20] = 0xff;
    rejects(resign(notUtf8), 'invalid UTF-8', /not valid JSON/);
    expect(cases).to.be.at.least(1000);
    expect(performance.now() - started).to.be.below(20000);
  });
});

describe('bank fitting', () => {
  /** An FGSM attack family named `name` at `eps`. */
  const fgsmFamily = (name: string, eps: number): AttackFamily => ({
    name,
    attack: new FGSM({ eps }),
    settings: { eps },
  });

  /** A bank of the committed CNN's dense ReLU and logits, fitted on the first 300 test images with `families`. */
  async function fitOnFirst300(families: AttackFamily[]): Promise<{ bank: FingerprintBank; labels: Int32Array }> {
    const test = loadFashionMnist({ split: 'test' });
    const model = await GradientModel.load(join(packageRoot, 'models', 'fmnist-cnn.onnx'), {
      taps: ['/classifier/relu/Relu_output_0', 'logits'],
    });
    try {
      const labels = test.labels.subarray(0, 300);
      const bank = await buildBank({
        model,
        images: { data: test.data.subarray(0, 300 * 784), dims: [300, 1, 28, 28] },
        labels,
        families,
        attackedPerClass: 20,
        screen: { k: 1, candidates: 200, topK: 20 },
        seed: 1,
      });
      return { bank, labels };
    } finally {
      await model.release();
    }
  }

  it('draws candidate subsets of distinct neurons, uniformly', () => {
    const rng = new SeededRandom(3);
    const c = drawCandidates(20000, 5, 40, rng);
    const counts = new Array(40).fill(0);
    for (let i = 0; i < 20000; i++) {
      const s = new Set(c.subarray(i * 5, (i + 1) * 5));
      expect(s.size).to.equal(5);
      for (const v of s) counts[v]++;
    }
    for (const n of counts) expect(n).to.be.within(2200, 2800); // 2,500 expected
    expect([...drawCandidates(3, 40, 40, rng).subarray(0, 40)].sort((a, b) => a - b)).to.deep.equal([
      ...Array(40).keys(),
    ]);
    expect(() => drawCandidates(1, 41, 40, rng)).to.throw(RangeError, /for k/);
  });

  it('finds the planted separating neurons and keeps each family apart', async () => {
    const rnd = new TestRandom(5);
    const neurons = 60;
    const n0 = 300,
      n1 = 300;
    // Neurons 0-9 shift by +3 under family A; neurons 10-19 shift by -3 under family B; the rest are noise.
    const make = (rows: number, shift: (j: number) => number) => {
      const a = new Float32Array(rows * neurons);
      for (let r = 0; r < rows; r++) for (let j = 0; j < neurons; j++) a[r * neurons + j] = rnd.normal() + shift(j);
      return { acts: a, rows };
    };
    const clean = make(n0, () => 0);
    const famA = make(n1, (j) => (j < 10 ? 3 : 0));
    const famB = make(n1, (j) => (j >= 10 && j < 20 ? -3 : 0));
    const fp = await fitClass(
      clean,
      [famA, famB],
      neurons,
      { candidates: 4000, k: 2, pMax: 1e-3, dMin: 1.5, topK: 100, minFingerprints: 5, maxCorrelation: 1 },
      new SeededRandom(1),
    );
    expect(fp.mu0.length).to.be.greaterThan(20);
    for (let i = 0; i < fp.mu0.length; i++) {
      const subset = [...fp.indices.subarray(i * 2, i * 2 + 2)];
      // Each kept subset holds at least one planted neuron, and its family stats show the planted shift.
      expect(subset.some((j) => j < 20)).to.equal(true);
      const F = fp.mu0.length;
      const shiftA = fp.mu1[i]! - fp.mu0[i]!;
      const shiftB = fp.mu1[F + i]! - fp.mu0[i]!;
      const inA = subset.filter((j) => j < 10).length,
        inB = subset.filter((j) => j >= 10 && j < 20).length;
      expect(shiftA).to.be.closeTo((3 * inA) / 2, 0.5);
      expect(shiftB).to.be.closeTo((-3 * inB) / 2, 0.5);
      expect(fp.effect[i]).to.be.at.least(1.5);
      if (i > 0) expect(fp.effect[i]).to.be.at.most(fp.effect[i - 1]!);
    }
    expect(fp.relaxed).to.equal(undefined);
  });

  it('shares the fingerprint budget among families, so a subtle attack keeps fingerprints of its own', async () => {
    const rnd = new TestRandom(8);
    const neurons = 40,
      rows = 300;
    const make = (shift: (j: number) => number) => ({
      acts: Float32Array.from({ length: rows * neurons }, (_, i) => rnd.normal() + shift(i % neurons)),
      rows,
    });
    // Family A moves neurons 0-9 by 6 sd; family B moves neurons 10-19 by 2 sd.
    const fp = await fitClass(
      make(() => 0),
      [make((j) => (j < 10 ? 6 : 0)), make((j) => (j >= 10 && j < 20 ? 2 : 0))],
      neurons,
      { candidates: 3000, k: 1, pMax: 1e-3, dMin: 1.5, topK: 10, minFingerprints: 5, maxCorrelation: 1 },
      new SeededRandom(4),
    );
    // Ranked by |d| alone, family A's ten neurons would take the whole budget of ten.
    const neuronsKept = [...fp.indices];
    expect(new Set(neuronsKept).size).to.equal(10);
    expect(neuronsKept.filter((j) => j < 10).length).to.equal(5);
    expect(neuronsKept.filter((j) => j >= 10 && j < 20).length).to.equal(5);
  });

  it('relaxes, and says so, when too few fingerprints pass', async () => {
    const rnd = new TestRandom(6);
    const rows = 200,
      neurons = 30;
    const noise = () => ({ acts: Float32Array.from({ length: rows * neurons }, () => rnd.normal()), rows });
    const fp = await fitClass(
      noise(),
      [noise()],
      neurons,
      { candidates: 500, k: 3, pMax: 1e-3, dMin: 1.5, topK: 100, minFingerprints: 10, maxCorrelation: 1 },
      new SeededRandom(2),
    );
    expect(fp.mu0.length).to.equal(10);
    expect(fp.relaxed).to.match(/candidates reached/);
    for (const v of fp.sd0) expect(v).to.be.greaterThan(0);
  });

  it('keeps a quarter of each class for attacks when the data holds fewer images than the clean count', async () => {
    expect([0, 1, 3, 4, 8, 100, 533, 534, 5000].map((n) => cleanShare(n, 400))).to.deep.equal([
      0, 1, 3, 3, 6, 75, 399, 400, 400,
    ]);
    expect(cleanShare(100, 20)).to.equal(20);
    // 300 images (about 27 correct per class) and the default 400 clean per class: before, every image
    // went to clean, nothing was left to attack and the fit failed on class 0.
    const { bank, labels } = await fitOnFirst300([fgsmFamily('fgsm', 0.1)]);
    bank.header.classes.forEach((c, k) => {
      expect(c.fitted, `class ${k}`).to.equal(true);
      const labelled = labels.filter((y) => y === k).length;
      expect(c.clean, `class ${k}`).to.be.within(2, 0.75 * labelled);
      expect(c.attacked[0], `class ${k}`).to.be.at.least(2);
    });
  });

  it("lets a family that reached no image of a class borrow the other families' attacked images, not the clean ones", async () => {
    // A second family with an eps too small to flip anything. Borrowing the clean images made its
    // term exactly 0, and with the 'max' combination that floored every score of the class at 0.
    const { bank } = await fitOnFirst300([fgsmFamily('fgsm', 0.1), fgsmFamily('nudge', 1e-7)]);
    let checked = 0;
    bank.header.classes.forEach((c, k) => {
      if (c.attacked[1]! >= 2) return;
      checked++;
      expect(c.relaxed, `class ${k}`).to.match(/for nudge \(fgsm attacked images stand in\)/);
      const f = bank.classFingerprints(k);
      const count = f.mu0.length;
      // The borrowed family's statistics are the lender's, and differ from the clean ones.
      expect([...f.mu1.subarray(count, 2 * count)], `class ${k}`).to.deep.equal([...f.mu1.subarray(0, count)]);
      expect([...f.sd1.subarray(count, 2 * count)], `class ${k}`).to.deep.equal([...f.sd1.subarray(0, count)]);
      expect([...f.mu1.subarray(0, count)], `class ${k}`).to.not.deep.equal([...f.mu0]);
    });
    expect(checked).to.be.greaterThan(5);
  });

  it('merges class shards and refuses overlapping or mismatched ones', () => {
    const a = syntheticBank(1, 4, [0, 1]);
    const b = syntheticBank(2, 4, [2, 3]);
    const merged = FingerprintBank.merge([a, b]);
    expect(merged.header.classes.map((c) => c.fitted)).to.deep.equal([true, true, true, true]);
    expect([...merged.classFingerprints(2).mu0]).to.deep.equal([...b.classFingerprints(2).mu0]);
    expect([...merged.classFingerprints(1).sd1]).to.deep.equal([...a.classFingerprints(1).sd1]);
    expect(decodeBank(encodeBank(merged)).fingerprints).to.equal(a.fingerprints + b.fingerprints);
    expect(() => FingerprintBank.merge([a, syntheticBank(3, 4, [1])])).to.throw(RangeError, /class 1 is fitted in two/);
    const other: BankHeader = { ...b.header, k: 4 };
    expect(() => FingerprintBank.merge([a, new FingerprintBank(other, b.arrays)])).to.throw(RangeError, /same model/);
  });
});

describe('hostile banks', () => {
  const dir = useTempDir('nfp-hostile-bank-');

  it('refuse header strings with control characters (terminal escapes, bidirectional overrides)', () => {
    const good = encodeBank(syntheticBank());
    for (const bad of ['\u001b[31mred', 'a\u0007b', 'x\u202ey', 'tab\there']) {
      rejects(
        withHeader(good, (h) => {
          (h.model as Record<string, unknown>).source = bad;
        }),
        JSON.stringify(bad),
        /model\.source holds control characters/,
      );
    }
  });

  it('refuse a header nested deeper than a header needs, before parsing it', () => {
    const good = encodeBank(syntheticBank());
    const marked = withHeader(good, (h) => {
      (h.fit as Record<string, unknown>).attacks = { pgd: 'DEEP' };
    });
    // JSON.stringify itself would overflow on this: splice the text in.
    const deep = `${'['.repeat(100_000)}1${']'.repeat(100_000)}`;
    rejects(
      withHeader(marked, (h) => JSON.stringify(h).replace('"DEEP"', deep)),
      'deep',
      /nests deeper than 32 levels/,
    );
  });

  it('refuse a calibration false-positive rate outside (0, 1)', () => {
    const bank = syntheticBank();
    const calibrated = bank.withCalibration({
      fpr: 0.05,
      draws: 5,
      combine: 'max',
      global: 1,
      perClass: bank.header.classes.map(() => null),
      images: 10,
      drawsPerImage: 2,
    });
    const good = encodeBank(calibrated);
    expect(decodeBank(good).header.calibration?.fpr).to.equal(0.05);
    for (const fpr of [5, -1, 0, 1]) {
      rejects(
        withHeader(good, (h) => {
          (h.calibration as Record<string, unknown>).fpr = fpr;
        }),
        `fpr ${fpr}`,
        /calibration\.fpr must be in \(0, 1\)/,
      );
    }
  });

  it('describe and print a bank of 130,000 classes without overflowing the stack', async () => {
    const classes = 130_000;
    const fitted = new Map([
      [7, { fingerprints: randomFingerprints(new TestRandom(5), 4, 5, 300), clean: 10, attacked: [9, 8] }],
    ]);
    const bank = FingerprintBank.fromClasses(
      { ...syntheticBank().header, model: { ...syntheticBank().header.model, classes } },
      fitted,
    );
    const path = join(dir(), 'wide.nfp');
    writeBank(path, bank);
    const back = readBank(path);
    expect(describeBank(back).classes).to.have.length(classes);
    const text = await runCommands([registerBankCommand], ['bank', 'info', path]);
    expect(text.split('\n').length).to.be.above(2 * classes);
  });

  it('remove temporary files of writers that died, and keep those of live ones', () => {
    const path = join(dir(), 'tmp.nfp');
    const dead = `${path}.tmp-${2 ** 22 + 12345}-1`;
    const alive = `${path}.tmp-${process.ppid}-1`;
    writeFileSync(dead, 'half a bank');
    writeFileSync(alive, 'being written');
    writeBank(path, syntheticBank());
    expect(existsSync(dead)).to.equal(false);
    expect(existsSync(alive)).to.equal(true);
    expect(readdirSync(dir()).filter((f) => f.startsWith('tmp.nfp.tmp-'))).to.deep.equal([basename(alive)]);
  });

  describe('signatures', () => {
    const keys = generateSigningKeys();
    const other = generateSigningKeys();

    it("a signed bank loads with its public key; unsigned, altered, or another key's banks do not", () => {
      const bank = syntheticBank();
      const signed = encodeBank(bank, { privateKey: keys.privateKey });
      const loaded = decodeBank(signed, 'signed.nfp', { publicKey: keys.publicKey });
      expect(loaded.signature).to.deep.equal({
        keyId: Buffer.from(keyId(keys.publicKey)).toString('hex'),
        verified: true,
      });
      expect(decodeBank(signed).signature?.verified).to.equal(false);
      expect(() => decodeBank(encodeBank(bank), 'plain.nfp', { publicKey: keys.publicKey })).to.throw(
        BankFormatError,
        /not signed, but a public key was given/,
      );
      expect(() => decodeBank(signed, 'signed.nfp', { publicKey: other.publicKey })).to.throw(
        BankFormatError,
        /signed by key [0-9a-f]{16}…, not by the given key/,
      );
      // An attacker swaps two equal-size taps' names and fixes the checksum: the signature catches it.
      const view = new DataView(signed.buffer, signed.byteOffset);
      const length = view.getUint32(12, true);
      const content = signed.slice(0, signed.length - 104);
      const json = Buffer.from(content.subarray(16, 16 + length)).toString('utf8');
      const swapped = Buffer.from(json.replace('"features"', '"logitz"'.padEnd('"features"'.length, ' ')), 'utf8');
      content.set(swapped, 16);
      const tampered = new Uint8Array(signed.length);
      tampered.set(resign(content));
      tampered.set(signed.subarray(signed.length - 104), signed.length - 104);
      expect(() => decodeBank(tampered, 'tampered.nfp', { publicKey: keys.publicKey })).to.throw(
        BankFormatError,
        /does not match the file: it was altered after signing/,
      );
    });

    it('nfp bank keygen and sign; nfp detect refuses a bank that its key did not sign', async () => {
      const bankPath = join(dir(), 'deploy.nfp');
      writeBank(bankPath, syntheticBank());
      const made = JSON.parse(await runCommands([registerBankCommand], ['bank', 'keygen', '--out', join(dir(), 'k')]));
      expect(statSync(made.privateKey).mode & 0o777).to.equal(0o600);
      const signed = JSON.parse(
        await runCommands(
          [registerBankCommand],
          ['bank', 'sign', '--key', made.privateKey, bankPath, '--out', bankPath],
        ),
      );
      expect(readBank(bankPath, { publicKey: readFileSync(made.publicKey) }).signature?.verified).to.equal(true);
      expect(signed.keyId).to.match(/^[0-9a-f]{64}$/);
      const otherPub = join(dir(), 'other.pub');
      writeFileSync(otherPub, other.publicKey);
      expect(() => readBank(bankPath, { publicKey: readFileSync(otherPub) })).to.throw(
        BankFormatError,
        /not by the given key/,
      );
    });
  });
});
