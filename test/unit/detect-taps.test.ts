// detect() reads the model's tap buffers in place: the native scorer given the tapped outputs as
// ONNX Runtime returned them (`taps`) must score exactly as on the activation matrix they stand for
// (bit for bit: the same values, summed in the same order), reject bad layouts naming the argument,
// and the detector's new path must give the old path's scores, rejections and fail-closed rows.
import { expect } from 'chai';
import { join } from 'node:path';

import type { FingerprintBank } from '../../src/bank/index.js';
import { FingerprintDetector } from '../../src/detect/index.js';
import { Bank } from '../../src/index.js';
import type { TapBuffer } from '../../src/index.js';
import { Classifier, TapActivations, planReadout, readoutOutputName } from '../../src/model/index.js';
import { packageRoot } from '../../src/paths.js';
import { detectScores, packTaps } from '../reference/kernels.js';
import { randomFingerprintBank } from '../reference/random-bank.js';
import { TestRandom, randomBank } from '../reference/random.js';

/** Random tap buffers of `sizes` neurons: some layers sampled (columns into a wider output), each holding `ran` images. */
function randomTaps(rnd: TestRandom, sizes: number[], ran: number): TapBuffer[] {
  return sizes.map((size, i) => {
    const sampled = size > 0 && i % 2 === 1;
    const width = sampled ? size + 1 + rnd.int(5) : size;
    const columns = sampled ? Uint32Array.from(rnd.subsets(1, size, width)).sort() : undefined;
    return { data: rnd.floats(ran * width, -2, 2), width, ...(columns ? { columns } : {}) };
  });
}

function thrown(fn: () => unknown): Error & { code?: string; argument?: string } {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a throw');
}

describe('detectScores on tap buffers', () => {
  const cases = [
    { name: 'one tap, N = 1, batch 1', sizes: [1], rows: 1, k: 1, count: 1 },
    { name: 'one sampled tap', sizes: [0, 40], rows: 3, k: 5, count: 20 },
    { name: 'five taps, batch 32', sizes: [300, 120, 50, 12, 10], rows: 32, k: 10, count: 200 },
    {
      name: 'many taps, some empty',
      sizes: Array.from({ length: 60 }, (_, i) => (i % 7 === 3 ? 0 : 1 + (i % 13))),
      rows: 5,
      k: 3,
      count: 90,
    },
  ];
  for (const c of cases) {
    it(`equals the packed matrix bit for bit and the TypeScript reference: ${c.name}`, () => {
      const rnd = new TestRandom(c.rows * 7 + c.sizes.length);
      const neurons = c.sizes.reduce((a, v) => a + v, 0);
      const spec = randomBank(rnd, neurons, c.k, c.count, 2);
      const bank = new Bank(spec);
      // A padded run (a model's fixed batch) leaves extra images at the end of each buffer.
      const taps = randomTaps(rnd, c.sizes, c.rows + 2);
      const acts = packTaps(taps, c.rows);
      const m = Math.min(c.count, 25);
      const draws = Uint32Array.from({ length: c.rows * m }, () => rnd.int(c.count));
      for (const combine of ['max', 'logsumexp'] as const) {
        const opts = { rows: c.rows, draws, combine, means: true, terms: true };
        const inPlace = bank.detectScoresSync({ ...opts, taps });
        const packed = bank.detectScoresSync({ ...opts, acts });
        for (const key of ['score', 'familyScores', 'means', 'terms'] as const)
          expect(Buffer.from(inPlace[key]!.buffer).equals(Buffer.from(packed[key]!.buffer)), key).to.equal(true);
        const ref = detectScores(spec, acts, c.rows, draws, combine);
        inPlace.score.forEach((v, i) => {
          expect(v).to.be.closeTo(ref.score[i]!, 1e-4 * (1 + Math.abs(ref.score[i]!)));
        });
      }
    });

    it(`scores through a binding made once as through the packed matrix, batch after batch: ${c.name}`, async () => {
      const rnd = new TestRandom(c.rows * 11 + c.sizes.length);
      const neurons = c.sizes.reduce((a, v) => a + v, 0);
      const spec = randomBank(rnd, neurons, c.k, c.count, 2);
      const bank = new Bank(spec);
      const layout = randomTaps(rnd, c.sizes, c.rows + 2);
      const binding = bank.bindTaps({ taps: layout });
      const m = Math.min(c.count, 25);
      for (let batch = 0; batch < 3; batch++) {
        // New outputs of the same layout, as every model run returns.
        const data = layout.map((t) => rnd.floats(t.data.length, -2, 2));
        const acts = packTaps(
          layout.map((t, i) => ({ ...t, data: data[i]! })),
          c.rows,
        );
        const draws = Uint32Array.from({ length: c.rows * m }, () => rnd.int(c.count));
        const opts = { rows: c.rows, draws, combine: 'logsumexp' as const, means: true, terms: true };
        const bound =
          batch === 1 ? binding.detectScoresSync({ ...opts, data }) : await binding.detectScores({ ...opts, data });
        const packed = bank.detectScoresSync({ ...opts, acts });
        for (const key of ['score', 'familyScores', 'means', 'terms'] as const)
          expect(Buffer.from(bound[key]!.buffer).equals(Buffer.from(packed[key]!.buffer)), key).to.equal(true);
      }
    });
  }

  it('binds a layout once, keeping its own copy of the columns, and refuses bad layouts and buffers', () => {
    const rnd = new TestRandom(10);
    const bank = new Bank(randomBank(rnd, 30, 2, 10, 1));
    const taps = randomTaps(rnd, [10, 15, 5], 2);
    const draws = new Uint32Array([0, 1, 2, 3]);
    const columns = taps[1]!.columns!;
    const binding = bank.bindTaps({ taps: taps.map((t) => ({ width: t.width, columns: t.columns })) });
    const data = taps.map((t) => t.data);
    const before = binding.detectScoresSync({ data, rows: 2, draws }).score;
    const saved = columns.slice();
    columns.fill(0);
    expect(Array.from(binding.detectScoresSync({ data, rows: 2, draws }).score)).to.deep.equal(Array.from(before));
    columns.set(saved);
    let e = thrown(() => bank.bindTaps({ taps: taps.slice(0, 2) }));
    expect(e.message).to.match(/Expected taps of 30 neurons in all \(the bank's\) but received 25/);
    e = thrown(() =>
      bank.bindTaps({ taps: [taps[0]!, { ...taps[1]!, columns: columns.slice().fill(2 ** 31, 3, 4) }, taps[2]!] }),
    );
    expect(e).to.be.instanceOf(RangeError);
    expect(e.message).to.match(/columns < \d+ .* for taps\[1\] but received 2147483648 at columns\[3\]/);
    e = thrown(() => bank.bindTaps({ taps: [taps[0]!, { ...taps[1]!, width: -1 }, taps[2]!] }));
    expect(e.message).to.match(/for taps\[1\]\.width/);
    e = thrown(() => bank.bindTaps({ taps: 'all' } as never));
    expect(e).to.be.instanceOf(TypeError);
    e = thrown(() => binding.detectScoresSync({ data: data.slice(0, 2), rows: 2, draws }));
    expect(e.message).to.match(/Expected 3 buffers \(one per tap of the binding\) for data but received 2/);
    e = thrown(() => binding.detectScoresSync({ data: [data[0]!, data[1]!.subarray(1), data[2]!], rows: 2, draws }));
    expect(e.message).to.match(/for data\[1\] but received/);
    e = thrown(() => binding.detectScoresSync({ data: [data[0]!, data[1]!, data[2]!.subarray(0, 5)], rows: 2, draws }));
    expect(e.message).to.match(/at least rows \(2\) of them, for data\[2\]/);
    e = thrown(() =>
      binding.detectScoresSync({ data: [new Float64Array(20), data[1]!, data[2]!] as never, rows: 2, draws }),
    );
    expect(e).to.be.instanceOf(TypeError);
    expect(e.message).to.match(/Float32Array for data\[0\]/);
    e = thrown(() => binding.detectScoresSync({ data, rows: 2, draws: new Uint32Array([0, 1, 2, 10]) }));
    expect(e.message).to.match(/values < 10 for draws/);
    e = thrown(() => binding.detectScoresSync({ data, rows: 2, draws: new Uint32Array(3) }));
    expect(e.message).to.match(/multiple of rows \(2\) elements for draws/);
    // The class is reachable from an instance; one made that way has no bank and says how to get one.
    const Made = (binding as unknown as { constructor: new () => typeof binding }).constructor;
    e = thrown(() => new Made().detectScoresSync({ data, rows: 2, draws }));
    expect(e.message).to.match(/made by Bank\.bindTaps/);
  });

  it('rejects bad layouts, huge columns and draws, naming the argument; reports non-finite activations', async () => {
    const rnd = new TestRandom(9);
    const bank = new Bank(randomBank(rnd, 30, 2, 10, 1));
    const taps = randomTaps(rnd, [10, 15, 5], 2);
    const draws = new Uint32Array([0, 1, 2, 3]);
    expect(bank.detectScoresSync({ taps, rows: 2, draws }).score).to.have.length(2);
    const huge = taps.map((t, i) => (i === 1 ? { ...t, columns: t.columns!.slice().fill(2 ** 31, 3, 4) } : t));
    let e = thrown(() => bank.detectScoresSync({ taps: huge, rows: 2, draws }));
    expect(e).to.be.instanceOf(RangeError);
    expect(e.message).to.match(/columns < \d+ .* for taps\[1\] but received 2147483648 at columns\[3\]/);
    e = thrown(() => bank.detectScoresSync({ taps: taps.slice(0, 2), rows: 2, draws }));
    expect(e.message).to.match(/Expected taps of 30 neurons in all \(the bank's\) but received 25/);
    e = thrown(() =>
      bank.detectScoresSync({
        taps: [taps[0]!, { ...taps[1]!, data: taps[1]!.data.subarray(1) }, taps[2]!],
        rows: 2,
        draws,
      }),
    );
    expect(e.message).to.match(/for taps\[1\]\.data but received/);
    e = thrown(() =>
      bank.detectScoresSync({ taps: [taps[0]!, { ...taps[1]!, width: 2.5 }, taps[2]!], rows: 2, draws }),
    );
    expect(e.message).to.match(/for taps\[1\]\.width/);
    e = thrown(() =>
      bank.detectScoresSync({ taps: [{ data: new Float64Array(20), width: 10 }] as never, rows: 2, draws }),
    );
    expect(e).to.be.instanceOf(TypeError);
    expect(e.message).to.match(/Float32Array for taps\[0\]\.data/);
    e = thrown(() => bank.detectScoresSync({ taps, acts: new Float32Array(60), rows: 2, draws } as never));
    expect(e.message).to.match(/for acts/);
    e = thrown(() => bank.detectScoresSync({ taps, rows: 2, draws: new Uint32Array([0, 1, 2, 2 ** 32 - 1]) }));
    expect(e.message).to.match(/values < 10 for draws/);
    const nan = taps.map((t) => ({ ...t, data: t.data.slice().fill(Number.NaN, t.width) }));
    e = await bank.detectScores({ taps: nan, rows: 2, draws }).then(
      () => new Error('no throw'),
      (error: Error) => error,
    );
    expect(e.code).to.equal('NFP_NON_FINITE');
    expect(e.message).to.match(/row 1/);
  });
});

describe('detect() on tap buffers vs the activation matrix', () => {
  const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
  const rnd = new TestRandom(4);

  /** A random bank over the classifier's taps; class 3 holds fewer fingerprints than a draw, class 7 none. */
  const bankFor = (c: Classifier): FingerprintBank =>
    randomFingerprintBank(rnd, c, { k: 3, perClass: (cls) => (cls === 3 ? 6 : cls === 7 ? 0 : 60) });

  // 'wide' taps under a small budget sample the larger layers (columns); batch 8 splits 21 rows into three runs.
  for (const [name, taps, batchSize] of [
    ['three named taps, one run', ['/features/pool3/MaxPool_output_0', '/classifier/relu/Relu_output_0', 'logits'], 32],
    ['wide taps, sampled, three runs', 'wide', 8],
    ["the card's taps, read out (only the bank's neurons fetched)", 'default', 32],
  ] as const) {
    it(`gives the old path's scores, labels and rejections exactly: ${name}`, async () => {
      const classifier = await Classifier.load(modelPath, {
        taps: taps as never,
        batchSize,
        ...(taps === 'wide' ? { neuronBudget: 3000, tapSeed: 1 } : {}),
      });
      const bank = bankFor(classifier);
      await classifier.release();
      if (taps === 'wide') expect(bank.header.taps.some((t) => t.sample !== undefined)).to.equal(true);
      const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 3, batchSize });
      try {
        const rows = 21;
        const data = rnd.floats(rows * 784, 0, 1);
        data[5 * 784 + 3] = Number.NaN; // a non-finite pixel: rejected before scoring
        data[9 * 784 + 3] = 1.5; // outside the input range
        const images = { data, dims: [rows, 1, 28, 28] };
        const found = await det.detect(images, { explain: true });
        // The old path: one activation matrix, scored by the same seeded draws.
        const out = await det.classifier.run(images);
        const old = await det.scoreActivations(out.activations, out.labels, { explain: true, logits: out.logits });
        expect(found.map((d) => d.label)).to.deep.equal(Array.from(out.labels));
        found.forEach((d, i) => {
          if (i === 5 || i === 9) {
            expect(d.attacked).to.equal(true);
            expect(d.rejected).to.match(i === 5 ? /non-finite pixel/ : /outside the model's input range/);
            return;
          }
          if (d.label === 7) expect(d.unscored).to.match(/no fingerprints/);
          else expect(d.score).to.equal(old.scores[i]);
          expect(d.fingerprints).to.deep.equal(old.draws[i] ?? []);
        });
        expect(new Set(found.map((d) => d.label)).size).to.be.above(taps === 'default' ? 1 : 2);
        if (taps === 'default') {
          // A readout: the bank's neurons alone come back, no tapped layer whole.
          const fetched = det.classifier.fetchedPerImage;
          expect(fetched).to.be.at.most(new Set(bank.arrays.indices).size);
          expect(
            det.classifier.tapOutputs.some((o) => det.classifier.taps.some((t) => t.tensor === o && o !== 'logits')),
          ).to.equal(false);
        }
      } finally {
        await det.release();
      }
    });
  }

  it("fetches only the bank's neurons where that is a quarter of the values or less, with the same detections", async () => {
    const card = await Classifier.load(modelPath, { taps: 'default' });
    const bank = randomFingerprintBank(rnd, card, { k: 1, perClass: () => 100 });
    await card.release();
    const [readout, whole] = await Promise.all(
      [true, false].map((r) => FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 5, readout: r })),
    );
    try {
      const values = (d: FingerprintDetector) => d.classifier.fetchedPerImage;
      expect(values(readout)).to.equal(new Set(bank.arrays.indices).size);
      expect(values(whole)).to.equal(54602);
      const images = { data: rnd.floats(40 * 784, 0, 1), dims: [40, 1, 28, 28] };
      const [a, b] = [await readout.detect(images, { explain: true }), await whole.detect(images, { explain: true })];
      expect(a).to.deep.equal(b);
      // run() still returns every neuron (its session made again on first use), the same as without a readout.
      const [ra, rb] = [await readout.classifier.run(images), await whole.classifier.run(images)];
      expect(Buffer.from(ra.activations.buffer).equals(Buffer.from(rb.activations.buffer))).to.equal(true);
      // The readout's matrix holds the bank's neurons, 0 elsewhere.
      for await (const run of readout.classifier.runTaps(images)) {
        const m = run.taps.matrix();
        const used = new Set(bank.arrays.indices);
        for (let r = 0; r < run.rows; r++)
          for (let n = 0; n < 54602; n += 97)
            expect(m[r * 54602 + n]).to.equal(used.has(n) ? rb.activations[(run.start + r) * 54602 + n] : 0);
      }
    } finally {
      await Promise.all([readout.release(), whole.release()]);
    }
    // A bank over nearly every neuron reads the layers whole: gathering them in the graph costs more.
    const three = await Classifier.load(modelPath, { taps: ['/features/pool3/MaxPool_output_0', 'logits'] });
    const dense = randomFingerprintBank(rnd, three, { k: 5, perClass: () => 200 });
    await three.release();
    const det = await FingerprintDetector.load({ model: modelPath, bank: dense, threshold: 0 });
    try {
      expect(det.classifier.tapReads.map((r) => r.output)).to.deep.equal([
        '/features/pool3/MaxPool_output_0',
        'logits',
      ]);
    } finally {
      await det.release();
    }
  });

  it('a readout of the logits alone (nothing gathered) loads and runs: the logits, no tapped layer', async () => {
    const full = await Classifier.load(modelPath, { taps: 'default' });
    const logits = full.taps.find((t) => t.tensor === 'logits')!;
    const read = await Classifier.load(modelPath, {
      taps: 'default',
      readout: Uint32Array.from({ length: logits.size }, (_, j) => logits.offset + j),
    });
    try {
      // The logits tap alone: its 10 values per image.
      expect(read.fetchedPerImage).to.equal(logits.size);
      const images = { data: rnd.floats(6 * 784, 0, 1), dims: [6, 1, 28, 28] };
      const whole = await full.run(images);
      for await (const run of read.runTaps(images)) {
        expect(Array.from(run.logits)).to.deep.equal(Array.from(whole.logits.subarray(0, 6 * 10)));
        const m = run.taps.matrix();
        for (let r = 0; r < run.rows; r++)
          for (let j = 0; j < logits.size; j++)
            expect(m[r * full.neurons + logits.offset + j]).to.equal(
              whole.activations[r * full.neurons + logits.offset + j],
            );
      }
    } finally {
      await Promise.all([full.release(), read.release()]);
    }
  });

  it('plans a readout: a gather per tap holding wanted neurons, the logits whole, a stand-in for the others', () => {
    const taps = [
      { tensor: 'a', offset: 0, size: 4, shape: [4], fullSize: 4 },
      { tensor: 'b', offset: 4, size: 3, shape: [10], fullSize: 10, indices: Uint32Array.of(1, 5, 8) },
      { tensor: 'c', offset: 7, size: 2, shape: [2], fullSize: 2 },
      { tensor: 'logits', offset: 9, size: 3, shape: [3], fullSize: 3 },
    ];
    const { reads, gathers } = planReadout(taps, Uint32Array.of(1, 3, 5, 6, 10), 'logits');
    expect(gathers.map((g) => [g.tensor, Array.from(g.indices)])).to.deep.equal([
      ['a', [1, 3]],
      ['b', [5, 8]],
    ]);
    expect(reads[0]).to.deep.include({ output: readoutOutputName('a'), width: 2 });
    expect(Array.from(reads[0]!.columns!)).to.deep.equal([0, 0, 0, 1]);
    expect(Array.from(reads[1]!.columns!)).to.deep.equal([0, 0, 1]);
    expect(Array.from(reads[1]!.held!)).to.deep.equal([1, 2]);
    expect(reads[2]).to.deep.include({ output: undefined, width: 1 });
    expect(reads[3]).to.deep.equal({ output: 'logits', width: 3 });
    expect(() => planReadout(taps, Uint32Array.of(12), 'logits')).to.throw(
      /readout neuron 12 is outside the taps' 12 neurons/,
    );
  });

  it('gathers sampled layers in the graph: the activations of whole layers sampled afterwards, fewer values per run', async () => {
    const options = { taps: 'wide' as const, neuronBudget: 3000, tapSeed: 1, batchSize: 8 };
    // The CNN's sampled layers are under gatherSamplesFrom: 'auto' would not gather, so ask.
    const gathered = await Classifier.load(modelPath, { ...options, gatherSamples: true });
    const whole = await Classifier.load(modelPath, options); // 'auto': whole, as gatherSamples: false
    try {
      const sampled = gathered.taps.filter((t) => t.indices !== undefined);
      expect(sampled.length).to.be.above(0);
      const images = { data: rnd.floats(21 * 784, 0, 1), dims: [21, 1, 28, 28] };
      const [a, b] = [await gathered.run(images), await whole.run(images)];
      expect(Buffer.from(a.activations.buffer).equals(Buffer.from(b.activations.buffer))).to.equal(true);
      expect(Array.from(a.logits)).to.deep.equal(Array.from(b.logits));
      const runs = async (c: Classifier) => {
        const out = [];
        for await (const run of c.runTaps(images)) out.push(run);
        return out;
      };
      const [g, w] = [await runs(gathered), await runs(whole)];
      expect(g).to.have.length(3);
      g.forEach((run, i) => {
        expect(Buffer.from(run.taps.matrix().buffer).equals(Buffer.from(w[i]!.taps.matrix().buffer))).to.equal(true);
        expect(run.taps.buffers.map((x) => ({ width: x.width, columns: x.columns }))).to.deep.equal(
          gathered.tapShapes.map((x) => ({ width: x.width, columns: x.columns })),
        );
      });
      // A sampled layer comes back as its sample alone: its size per image, no columns.
      gathered.taps.forEach((t, i) => {
        const shape = gathered.tapShapes[i]!;
        expect(shape.width).to.equal(t.indices !== undefined ? t.size : t.fullSize);
        expect(shape.columns).to.equal(undefined);
        expect(whole.tapShapes[i]!.width).to.equal(t.fullSize);
      });
      const values = (c: Classifier) => c.tapShapes.reduce((n, x) => n + x.width, 0);
      expect(values(gathered)).to.equal(gathered.neurons);
      expect(values(whole)).to.be.above(2 * values(gathered));
    } finally {
      await Promise.all([gathered.release(), whole.release()]);
    }
  });

  it('leaves rows with non-finite tapped activations unscored, as on the matrix, and scores the others', async () => {
    const taps = ['/features/pool3/MaxPool_output_0', '/classifier/relu/Relu_output_0', 'logits'];
    const classifier = await Classifier.load(modelPath, { taps });
    const bank = bankFor(classifier);
    await classifier.release();
    const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 2 });
    try {
      const rows = 6;
      const images = { data: rnd.floats(rows * 784, 0, 1), dims: [rows, 1, 28, 28] };
      const runs = [];
      for await (const run of det.classifier.runTaps(images)) runs.push(run);
      expect(runs).to.have.length(1);
      const run = runs[0]!;
      // Row 2's every tapped value NaN, in fresh buffers laid out as ONNX Runtime's (the readout of
      // the bank's neurons: taps without any are not fetched).
      const reads = det.classifier.tapReads;
      const result = Object.fromEntries(
        reads.flatMap((read, i) => {
          if (read.output === undefined) return [];
          const data = run.taps.buffers[i]!.data.slice();
          data.fill(Number.NaN, 2 * read.width, 3 * read.width);
          return [[read.output, { data }]];
        }),
      );
      const view = new TapActivations(result as never, det.classifier.taps, rows, det.classifier.neurons, rows, reads);
      const inPlace = await det.scoreActivations(view, run.labels);
      const matrix = await det.scoreActivations(view.matrix(), run.labels);
      expect(inPlace.rejected).to.deep.equal(matrix.rejected);
      expect(Array.from(inPlace.scores)).to.deep.equal(Array.from(matrix.scores));
      if (run.labels[2] !== 7) expect(inPlace.rejected[2]).to.match(/^non-finite activations \(NaN at \d+\)/);
      expect(Number.isNaN(inPlace.scores[2]!)).to.equal(true);
    } finally {
      await det.release();
    }
  });
});
