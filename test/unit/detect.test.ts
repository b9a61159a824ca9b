// The randomized detector on the committed CNN with a small bank fitted in the test: draws are
// fresh per input (seeded: reproducible; unseeded: different), scores equal the plain TypeScript
// Gaussian LLR of the drawn fingerprints, calibration meets its false-positive rate on held-out
// clean images, every input form is accepted, concurrent calls equal serial ones, and a bank of
// another model is refused.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';

import { DeepFool, PGD } from '../../src/attacks/index.js';
import { GradientModel } from '../../src/autodiff/index.js';
import { FingerprintBank, buildBank } from '../../src/bank/index.js';
import { loadFashionMnist } from '../../src/data/index.js';
import {
  CryptoDraws,
  DetectorError,
  FingerprintDetector,
  SeededDraws,
  combineConfidence,
  confidenceStatistic,
  drawDistinct,
  fitConfidence,
  logitMargins,
  thresholdFor,
} from '../../src/detect/index.js';
import { rowsWithinReference } from '../../src/detect/screen-inputs.js';
import { auc, rateAbove, tprAtFpr } from '../../src/eval/index.js';
import { rowsWithin } from '../../src/kernels.js';
import { packageRoot } from '../../src/paths.js';
import { TestRandom } from '../reference/random.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const taps = ['/features/pool3/MaxPool_output_0', '/classifier/relu/Relu_output_0', 'logits'];

describe('draws and thresholds', () => {
  for (const [count, kind] of [
    [20, 'seeded'],
    [12, 'seeded'],
    [20, 'crypto'],
    [3000, 'crypto'],
  ] as const) {
    it(
      `draws m distinct fingerprints of the class, uniformly (5 ` +
        `of ${count}, ${kind}: ${count >= 20 ? 'redraw on repeat' : 'partial shuffle'})`,
      () => {
        const source = kind === 'seeded' ? new SeededDraws(1) : new CryptoDraws();
        const counts = new Array(count).fill(0);
        const out = new Uint32Array(5);
        const trials = count > 100 ? 60000 : 8000;
        let repeats = 0;
        let outside = 0;
        for (let t = 0; t < trials; t++) {
          drawDistinct(source, 100, count, 5, out, 0);
          if (new Set(out).size !== 5) repeats++;
          for (const v of out) {
            if (v < 100 || v >= 100 + count) outside++;
            else counts[v - 100]++;
          }
        }
        expect({ repeats, outside }).to.deep.equal({ repeats: 0, outside: 0 });
        // Within 5 standard deviations of a binomial count (10% at 8,000 trials of 5 of 20).
        const expected = (trials * 5) / count;
        const spread = 5 * Math.sqrt(expected);
        for (const c of counts) expect(c).to.be.within(expected - spread, expected + spread);
      },
    );
  }

  it('draws every fingerprint when m equals the class size, and nothing for m = 0', () => {
    drawDistinct(new CryptoDraws(), 0, 7, 0, new Uint32Array(0), 0);
    const all = new Uint32Array(7);
    drawDistinct(new CryptoDraws(), 0, 7, 7, all, 0);
    expect([...all].sort()).to.deep.equal([0, 1, 2, 3, 4, 5, 6]);
  });

  it('checks input rows natively as the TypeScript reference does: bounds, NaN, +-Infinity, every length', () => {
    const rnd = new TestRandom(21);
    const lo = -1e-6;
    const hi = 1 + 1e-6;
    const specials = [0, 1, Math.fround(lo), Math.fround(hi), 1.0000011, -0.0000011, NaN, Infinity, -Infinity, 0.5];
    for (const per of [1, 7, 63, 64, 65, 784]) {
      const rows = 30;
      const data = rnd.floats(rows * per, 0.1, 0.9);
      for (let r = 1; r < rows; r++) data[r * per + rnd.int(per)] = specials[r % specials.length]!;
      for (const [a, b] of [
        [lo, hi],
        [-Number.MAX_VALUE, Number.MAX_VALUE],
        [-Infinity, Infinity],
        [0.25, 0.75],
      ] as const) {
        expect(Array.from(rowsWithin({ data, rows, lo: a, hi: b })), `${per} ${a} ${b}`).to.deep.equal(
          Array.from(rowsWithinReference(data, rows, a, b)),
        );
      }
    }
    expect(rowsWithin({ data: new Float32Array(0), rows: 0, lo: 0, hi: 1 })).to.have.length(0);
    expect(() => rowsWithin({ data: new Float32Array(5), rows: 2, lo: 0, hi: 1 })).to.throw(
      RangeError,
      /multiple of rows \(2\) elements for data/,
    );
    expect(() => rowsWithin({ data: new Float32Array(4), rows: 2, lo: NaN, hi: 1 })).to.throw(TypeError, /for lo/);
    expect(() => rowsWithin({ data: new Float64Array(4) as never, rows: 2, lo: 0, hi: 1 })).to.throw(
      TypeError,
      /Float32Array for data/,
    );
  });

  it('crypto draws are unbiased over a range that does not divide 2^32', () => {
    const source = new CryptoDraws();
    const counts = [0, 0, 0];
    for (let i = 0; i < 30000; i++) counts[source.below(3)]!++;
    for (const c of counts) expect(c).to.be.within(9500, 10500);
  });

  it('thresholds let at most the target share of clean scores through', () => {
    const scores = Array.from({ length: 1000 }, (_, i) => i);
    const t = thresholdFor(scores, 0.05);
    expect(rateAbove(scores, t)).to.equal(0.05);
    expect(thresholdFor([1, 1, 1, 1], 0.5)).to.equal(1);
    expect(auc([0, 1, 2], [3, 4])).to.equal(1);
    expect(auc([0, 1], [0, 1])).to.equal(0.5);
    expect(tprAtFpr([0, 1, 2, 3], [2.5, 3.5], 0.25)).to.equal(1);
    expect(tprAtFpr([0, 1, 2, 3], [2.5, 3.5], 0)).to.equal(0.5);
  });
});

describe('confidence term', () => {
  it('takes top-1 minus top-2 logit, with ties and a single class', () => {
    const logits = Float32Array.from([1, 5, 3, /**/ 2, 2, 0, /**/ -1, -4, -2]);
    expect(Array.from(logitMargins(logits, 3))).to.deep.equal([2, 0, 1]);
    expect(Array.from(logitMargins(Float32Array.from([4, 7]), 2))).to.deep.equal([Infinity, Infinity]);
    const q = confidenceStatistic(logits, 3);
    expect(q[1]).to.equal(-Math.log(1e-12)); // a zero margin saturates instead of reaching Infinity
    expect(q[0]).to.be.closeTo(-Math.log(2), 1e-12);
  });

  it(
    'standardizes each family and the margin per class on the upper tail, falls back to all classes when a class ' +
      'has few images, and takes the largest z',
    () => {
      const labels = Int32Array.from([0, 0, 0, 0, 0, 1]);
      // Two families, [rows x 2]. A long negative tail (-1000) must not widen the scale: only the
      // median and the 95% quantile count.
      const reps = [
        Float64Array.from([-1000, 10, 1, 20, 2, 30, 3, 40, 4, 50, 50, 0]),
        Float64Array.from([2, 10, 2, 10, 2, 10, 2, 10, 2, 10, 50, 0]),
      ];
      const q = Float64Array.from([0, 1, 2, 3, 4, 9]);
      const cal = fitConfidence(labels, reps, 2, q, 3, 2);
      // Class 0, family 0 sorted: -1000, 1, 2 x 6, 3, 4: median 2, 95% quantile 3.55.
      expect(cal.fingerprint[0]![0]![0]).to.equal(2);
      expect(cal.fingerprint[0]![0]![1]).to.be.closeTo(1.55 / 1.6448536269514722, 1e-12);
      // Family 1: 10 x 6, 20, 30, 40, 50: median 10, 95% quantile 45.5.
      expect(cal.fingerprint[0]![1]![0]).to.equal(10);
      expect(cal.fingerprint[0]![1]![1]).to.be.closeTo(35.5 / 1.6448536269514722, 1e-12);
      expect(cal.margin[0]![0]).to.equal(2);
      expect(cal.margin[0]![1]).to.be.closeTo(1.8 / 1.6448536269514722, 1e-12);
      // Class 1 has one image and class 2 none: both take the pooled statistics.
      expect(cal.margin[1]).to.deep.equal(cal.margin[2]);
      expect(cal.fingerprint[1]).to.deep.equal(cal.fingerprint[2]);
      expect(cal.margin[1]![0]).to.equal(2.5);
      const [[, s0], [, s1]] = cal.fingerprint[0]! as [[number, number], [number, number]];
      const sq = cal.margin[0]![1];
      expect(combineConfidence(cal, 0, [2, 10], 2 + 3 * sq)).to.be.closeTo(3, 1e-12); // the margin decides
      expect(combineConfidence(cal, 0, [2 + 5 * s0, 10], 2)).to.be.closeTo(5, 1e-12); // family 0 decides
      expect(combineConfidence(cal, 0, [2, 10 + 4 * s1], 2)).to.be.closeTo(4, 1e-12); // family 1 decides
    },
  );
});

describe('FingerprintDetector on the committed CNN', function () {
  this.timeout(300000);
  const dir = useTempDir('nfp-detect-');
  let bank: FingerprintBank;
  let test: Awaited<ReturnType<typeof loadFashionMnist>>;
  let model: GradientModel;
  const slice = (from: number, to: number) => ({
    data: test.data.slice(from * 784, to * 784),
    dims: [to - from, 1, 28, 28],
  });

  before(async () => {
    test = await loadFashionMnist({ split: 'test' });
    model = await GradientModel.load(modelPath, { taps, batchSize: 128 });
    bank = await buildBank({
      model,
      images: slice(0, 2000),
      labels: test.labels.slice(0, 2000),
      families: [{ name: 'pgd', attack: new PGD({ eps: 0.1, steps: 5 }), settings: { eps: 0.1, steps: 5 } }],
      cleanPerClass: 80,
      attackedPerClass: 80,
      attackMode: 'untargeted',
      screen: { candidates: 4000, k: 5, topK: 200 },
      seed: 1,
    });
  });
  after(async () => model.release());

  it('fits every class, with per-family counts and the model and taps recorded', () => {
    expect(bank.header.model.sha256).to.equal(model.classifier.sha256);
    expect(bank.header.taps.map((t) => t.tensor)).to.deep.equal(taps);
    expect(bank.header.neurons).to.equal(1290);
    for (const c of bank.header.classes) {
      expect(c.fitted).to.equal(true);
      expect(c.count).to.be.greaterThan(0);
      expect(c.clean).to.equal(80);
    }
  });

  // 25 draws: every class has enough fingerprints. The largest class's count: the others draw all of
  // theirs, so the full-size group is scored in place among rows of short classes.
  for (const draws of [25, 'largest class'] as const) {
    it(`scores equal the TypeScript Gaussian LLR of the drawn fingerprints (explain; ${draws} draws)`, async () => {
      const m = draws === 25 ? 25 : Math.max(...bank.header.classes.map((c) => c.count));
      const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 3, draws: m });
      try {
        const batch = slice(3000, draws === 25 ? 3008 : 3040);
        const out = await det.detect(batch, { explain: true });
        const acts = (await model.classifier.run(batch)).activations;
        const n = bank.header.neurons,
          k = bank.header.k;
        if (draws !== 25) {
          const short = out.filter((d) => bank.header.classes[d.label]!.count < m).length;
          expect(short, 'rows of short classes').to.be.within(1, out.length - 1);
          expect(
            out.some((d) => bank.header.classes[d.label]!.count === m),
            'rows of the largest class',
          ).to.equal(true);
        }
        out.forEach((d, r) => {
          const { start } = bank.range(d.label);
          expect(d.fingerprints!.length).to.equal(Math.min(m, bank.header.classes[d.label]!.count));
          expect(new Set(d.fingerprints).size).to.equal(d.fingerprints!.length);
          let sum = 0;
          d.fingerprints!.forEach((local, j) => {
            const id = start + local;
            let mean = 0;
            for (let q = 0; q < k; q++) mean += acts[r * n + bank.arrays.indices[id * k + q]!]!;
            mean /= k;
            const logN = (mu: number, sd: number) => -0.5 * ((mean - mu) / sd) ** 2 - Math.log(sd);
            const term =
              logN(bank.arrays.mu1[id]!, bank.arrays.sd1[id]!) - logN(bank.arrays.mu0[id]!, bank.arrays.sd0[id]!);
            expect(d.terms![j]).to.be.closeTo(term, 1e-3 * (1 + Math.abs(term)));
            sum += term;
          });
          expect(d.score).to.be.closeTo(sum, 1e-3 * (1 + Math.abs(sum)));
        });
      } finally {
        await det.release();
      }
    });
  }

  it(
    "scores a short class's row that is non-finite outside its own fingerprints, next to a full-size " + 'group',
    async () => {
      const counts = bank.header.classes.map((c) => c.count);
      const m = Math.max(...counts);
      const full = counts.indexOf(m);
      const short = counts.findIndex((c) => c < m && c > 0);
      const n = bank.header.neurons,
        k = bank.header.k;
      const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 4, draws: m });
      try {
        const acts = new Float32Array(2 * n);
        for (let i = 0; i < n; i++) acts[i] = (i % 7) / 7;
        acts.fill(NaN, n);
        const { start, count } = bank.range(short);
        for (let id = start; id < start + count; id++)
          for (let q = 0; q < k; q++) acts[n + bank.arrays.indices[id * k + q]!] = 0.5;
        const scored = await det.scoreActivations(acts, Int32Array.from([full, short]), { explain: true });
        expect(scored.draws[1]).to.have.length(count);
        expect(Number.isFinite(scored.scores[0]!) && Number.isFinite(scored.scores[1]!)).to.equal(true);
      } finally {
        await det.release();
      }
    },
  );

  it('reproduces a seeded detector exactly; unseeded detectors draw differently', async () => {
    const batch = slice(3000, 3032);
    const run = async (seed?: number) => {
      const det = await FingerprintDetector.load({
        model: modelPath,
        bank,
        threshold: 0,
        ...(seed === undefined ? {} : { seed }),
      });
      try {
        return (await det.detect(batch, { explain: true })).map((d) => [d.score, ...d.fingerprints!]);
      } finally {
        await det.release();
      }
    };
    expect(await run(7)).to.deep.equal(await run(7));
    expect(await run()).to.not.deep.equal(await run());
    // Within one detector, the same input gets a fresh draw every time.
    const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0 });
    const first = (await det.detect(slice(3000, 3001), { explain: true }))[0]!;
    const second = (await det.detect(slice(3000, 3001), { explain: true }))[0]!;
    await det.release();
    expect(first.fingerprints).to.not.deep.equal(second.fingerprints);
  });

  it('calibrates to its false-positive rate on held-out clean images and separates PGD from clean', async () => {
    const det = await FingerprintDetector.load({ model: modelPath, bank, seed: 11 });
    try {
      const cal = await det.calibrate(slice(2000, 4500), { fpr: 0.05, drawsPerImage: 4 });
      expect(cal.perClass.filter((t) => t !== null).length).to.equal(10); // 250 images a class
      const held = slice(4500, 6000);
      const clean = await det.detect(held);
      const fpr = clean.filter((d) => d.attacked).length / clean.length;
      expect(fpr).to.be.within(0.05 - 0.025, 0.05 + 0.025);
      const labels = test.labels.slice(4500, 4700);
      const attack = await new PGD({ eps: 0.1, steps: 10 }).run(
        model,
        { data: held.data.slice(0, 200 * 784), dims: [200, 1, 28, 28] },
        { labels, seed: 2 },
      );
      const ok = [...attack.success.keys()].filter((i) => attack.success[i]);
      const adv = new Float32Array(ok.length * 784);
      ok.forEach((r, i) => {
        adv.set(attack.adv.subarray(r * 784, (r + 1) * 784), i * 784);
      });
      const attacked = await det.detect({ data: adv, dims: [ok.length, 1, 28, 28] });
      const margin = (d: { score: number; threshold: number }) => d.score - d.threshold;
      expect(auc(clean.map(margin), attacked.map(margin))).to.be.greaterThan(0.85);
      expect(attacked.filter((d) => d.attacked).length / attacked.length).to.be.greaterThan(0.4);
      // The calibration travels with the bank.
      const path = join(dir(), 'calibrated.nfp');
      det.save(path);
      const again = await FingerprintDetector.load({ model: modelPath, bank: path, seed: 11, fpr: 0.05 });
      expect(again.bank.header.calibration).to.deep.equal(cal);
      await again.detect({ data: held.data.subarray(0, 784), dims: [1, 1, 28, 28] });
      await again.release();
      const otherRate = await FingerprintDetector.load({ model: modelPath, bank: path, fpr: 0.01 });
      let error: unknown;
      try {
        await otherRate.detect({ data: held.data.subarray(0, 784), dims: [1, 1, 28, 28] });
      } catch (e) {
        error = e;
      }
      await otherRate.release();
      expect((error as Error).message).to.match(/calibrated for a false-positive rate of 0.05, not 0.01/);
    } finally {
      await det.release();
    }
  });

  it(
    'gives a class its own threshold from minPerClass clean images and its own confidence statistics from ' +
      'minPerClassConfidence',
    async () => {
      const det = await FingerprintDetector.load({ model: modelPath, bank, seed: 13, confidence: true });
      try {
        const images = slice(2000, 2800);
        const defaults = await det.calibrate(images, { drawsPerImage: 2 });
        // About 80 images a class: below both defaults (100 and 200), so everything is pooled.
        expect(defaults.perClass.every((t) => t === null)).to.equal(true);
        const pooled = JSON.stringify(defaults.confidence!.margin[0]);
        expect(defaults.confidence!.margin.every((m) => JSON.stringify(m) === pooled)).to.equal(true);
        const split = await det.calibrate(images, { drawsPerImage: 2, minPerClass: 50, minPerClassConfidence: 10_000 });
        const own = split.perClass.filter((t) => t !== null).length;
        expect(own).to.be.within(8, 10);
        expect(
          split.confidence!.margin.every((m) => JSON.stringify(m) === JSON.stringify(split.confidence!.margin[0])),
        ).to.equal(true);
        const perClass = await det.calibrate(images, {
          drawsPerImage: 2,
          minPerClass: 10_000,
          minPerClassConfidence: 50,
        });
        expect(perClass.perClass.every((t) => t === null)).to.equal(true);
        expect(new Set(perClass.confidence!.margin.map((m) => JSON.stringify(m))).size).to.be.above(5);
      } finally {
        await det.release();
      }
    },
  );

  it(
    'adds the confidence term: meets its false-positive rate, catches DeepFool that fingerprints alone miss, and ' +
      'travels with the bank',
    async () => {
      const det = await FingerprintDetector.load({ model: modelPath, bank, seed: 12, confidence: true });
      try {
        const cal = await det.calibrate(slice(2000, 4500), { fpr: 0.05, drawsPerImage: 4 });
        expect(cal.confidence?.fingerprint).to.have.length(10);
        expect(cal.confidence!.margin.every(([, sd]) => sd > 0)).to.equal(true);
        const held = slice(4500, 6000);
        const clean = await det.score(held);
        const cleanAlarms = await det.detect(held);
        expect(cleanAlarms.filter((d) => d.attacked).length / cleanAlarms.length).to.be.within(0.025, 0.075);
        const labels = test.labels.slice(4500, 4600);
        const attack = await new DeepFool().run(
          model,
          { data: held.data.slice(0, 100 * 784), dims: [100, 1, 28, 28] },
          { labels, seed: 3 },
        );
        const ok = [...attack.success.keys()].filter((i) => attack.success[i] && labels[i] === clean.labels[i]);
        const adv = new Float32Array(ok.length * 784);
        ok.forEach((r, i) => {
          adv.set(attack.adv.subarray(r * 784, (r + 1) * 784), i * 784);
        });
        const attacked = await det.score({ data: adv, dims: [ok.length, 1, 28, 28] });
        const combinedAuc = auc(clean.scores, attacked.scores);
        const fingerprintAuc = auc(clean.fingerprint!, attacked.fingerprint!);
        expect(combinedAuc).to.be.greaterThan(0.95);
        expect(combinedAuc).to.be.greaterThan(fingerprintAuc + 0.03);
        // Saved and loaded, the bank's calibration switches the term on; asking for a detector without
        // it, or scoring without logits, is refused.
        const path = join(dir(), 'confidence.nfp');
        det.save(path);
        const again = await FingerprintDetector.load({ model: modelPath, bank: path, seed: 12 });
        expect(again.confidence).to.equal(true);
        expect((await again.detect({ data: adv.subarray(0, 784), dims: [1, 1, 28, 28] }))[0]!.threshold).to.equal(
          again.thresholdOf(attacked.labels[0]!),
        );
        let missing: unknown;
        try {
          await again.scoreActivations(new Float32Array(1290), Int32Array.from([0]));
        } catch (e) {
          missing = e;
        }
        expect(missing)
          .to.be.instanceOf(DetectorError)
          .with.property('message')
          .that.matches(/pass the images' logits/);
        await again.release();
        const without = await FingerprintDetector.load({ model: modelPath, bank: path, confidence: false });
        let refused: unknown;
        try {
          await without.detect({ data: adv.subarray(0, 784), dims: [1, 1, 28, 28] });
        } catch (e) {
          refused = e;
        }
        await without.release();
        expect((refused as Error).message).to.match(/calibrated with the confidence term/);
      } finally {
        await det.release();
      }
    },
  );

  it('accepts a Tensor, {data, dims}, [C,H,W], an image path, image bytes and a mixed batch', async () => {
    const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 1 });
    try {
      const one = slice(5000, 5001);
      const png = await sharp(Buffer.from(Uint8Array.from(one.data, (v) => Math.round(v * 255))), {
        raw: { width: 28, height: 28, channels: 1 },
      })
        .png()
        .toBuffer();
      const path = join(dir(), 'x.png');
      await sharp(png).toFile(path);
      const forms = [
        new ort.Tensor('float32', one.data, [1, 1, 28, 28]),
        one,
        { data: one.data, dims: [1, 28, 28] },
        path,
        png,
      ];
      const labels = await Promise.all(forms.map(async (f) => (await det.detect(f))[0]!.label));
      expect(new Set(labels).size).to.equal(1);
      const mixed = await det.detect([forms[0]!, path, png, slice(5001, 5004)]);
      expect(mixed.length).to.equal(6);
      expect(mixed[1]!.label).to.equal(labels[0]);
      for (const bad of [
        { data: new Float32Array(10), dims: [1, 1, 28, 28] },
        { data: new Float64Array(784) as unknown as Float32Array, dims: [1, 1, 28, 28] },
        { data: one.data, dims: [1, 28, 28, 1] },
      ]) {
        let error: unknown;
        try {
          await det.detect(bad);
        } catch (e) {
          error = e;
        }
        expect(error).to.be.instanceOf(TypeError);
        expect((error as Error).message).to.match(/for input/);
      }
      // Bytes that are no image fail their own row only, flagged with the reason.
      const [notImage, fine] = await det.detect([Buffer.from('not an image'), one]);
      expect(notImage).to.include({ label: -1, attacked: true });
      expect(notImage!.rejected).to.match(/^input\[0\]: not decoded: /);
      expect(Number.isNaN(notImage!.score)).to.equal(true);
      expect(fine!.rejected).to.equal(undefined);
      expect(fine!.label).to.equal(labels[0]);
    } finally {
      await det.release();
    }
  });

  it('gives concurrent detect() calls the same results as serial ones', async () => {
    const batches = Array.from({ length: 12 }, (_, i) => slice(6000 + i * 7, 6000 + i * 7 + 1 + (i % 4)));
    const serialDet = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0 });
    const concurrentDet = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0 });
    try {
      // Draws are random, so compare what does not depend on them: labels, and scores with every fingerprint drawn.
      const serial: Array<Awaited<ReturnType<FingerprintDetector['detect']>>> = [];
      for (const b of batches) serial.push(await serialDet.detect(b, { explain: true }));
      const concurrent = await Promise.all(batches.map((b) => concurrentDet.detect(b, { explain: true })));
      concurrent.forEach((res, i) => {
        expect(res.map((d) => d.label)).to.deep.equal(serial[i]!.map((d) => d.label));
        res.forEach((d) => {
          const sum = d.terms!.reduce((a, v) => a + v, 0);
          expect(d.score).to.be.closeTo(sum, 1e-3 * (1 + Math.abs(sum)));
        });
      });
    } finally {
      await Promise.all([serialDet.release(), concurrentDet.release()]);
    }
  });

  describe('fails closed on inputs it cannot judge', () => {
    it('flags NaN, +Inf, -Inf and +-1e30 at every pixel position, never failing the good images beside them', async () => {
      const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 1 });
      try {
        const good = slice(7000, 7001).data;
        const bad = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1e30, -1e30];
        const rows = 784 * bad.length + 2;
        const data = new Float32Array(rows * 784);
        data.set(good, 0);
        bad.forEach((v, b) => {
          for (let p = 0; p < 784; p++) {
            const row = 1 + b * 784 + p;
            data.set(good, row * 784);
            data[row * 784 + p] = v;
          }
        });
        data.set(good, (rows - 1) * 784);
        const results = await det.detect({ data, dims: [rows, 1, 28, 28] });
        expect(results[0]!.rejected).to.equal(undefined);
        expect(results[rows - 1]!.rejected).to.equal(undefined);
        expect(Number.isFinite(results[rows - 1]!.score)).to.equal(true);
        for (let r = 1; r < rows - 1; r++) {
          const d = results[r]!;
          expect(d.attacked, `row ${r}`).to.equal(true);
          expect(Number.isNaN(d.score)).to.equal(true);
          expect(d.rejected).to.match(
            r <= 3 * 784 ? /^input row \d+: 1 non-finite pixel value/ : /outside the model's input range \[0, 1\]/,
          );
        }
      } finally {
        await det.release();
      }
    });

    it("flags pixels outside the model's range (0-255 into a [0, 1] model) unless told any range is fine", async () => {
      const image = slice(7001, 7002);
      const scaled = { data: image.data.map((v) => v * 255), dims: image.dims };
      const strict = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0 });
      const lax = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, inputRange: 'any' });
      try {
        const [d] = await strict.detect(scaled);
        expect(d).to.include({ attacked: true });
        expect(d!.rejected).to.match(/^input: pixel values in \[0, 255\] outside the model's input range \[0, 1\]/);
        const [e] = await lax.detect(scaled);
        expect(e!.rejected).to.equal(undefined);
        expect(Number.isFinite(e!.score)).to.equal(true);
      } finally {
        await Promise.all([strict.release(), lax.release()]);
      }
    });

    it('flags inputs of a class without fingerprints by default, passes them only when told to', async () => {
      const fitted = new Map(
        Array.from({ length: 9 }, (_, c) => [
          c,
          { fingerprints: bank.classFingerprints(c), clean: 80, attacked: [80] },
        ]),
      );
      const { classes: _c, calibration: _k, ...header } = bank.header;
      const partial = FingerprintBank.fromClasses(header, fitted);
      const boot = [...test.labels.keys()].filter((i) => test.labels[i] === 9 && i >= 8000).slice(0, 5);
      const images = {
        data: Float32Array.from(boot.flatMap((i) => [...test.data.subarray(i * 784, (i + 1) * 784)])),
        dims: [5, 1, 28, 28],
      };
      const flagging = await FingerprintDetector.load({ model: modelPath, bank: partial, threshold: 0 });
      const passing = await FingerprintDetector.load({
        model: modelPath,
        bank: partial,
        threshold: 0,
        unscoredClasses: 'pass',
      });
      try {
        const flagged = (await flagging.detect(images)).filter((d) => d.label === 9);
        expect(flagged.length).to.be.above(0);
        for (const d of flagged)
          expect(d).to.include({ attacked: true, unscored: 'class 9 has no fingerprints in this bank' });
        for (const d of (await passing.detect(images)).filter((x) => x.label === 9)) expect(d.attacked).to.equal(false);
      } finally {
        await Promise.all([flagging.release(), passing.release()]);
      }
    });

    it('leaves rows with non-finite drawn activations unscored, and scores the others', async () => {
      const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 2 });
      try {
        const out = await det.classifier.run(slice(7100, 7106));
        const acts = out.activations.slice();
        acts.fill(Number.NaN, 2 * det.classifier.neurons, 3 * det.classifier.neurons);
        const scored = await det.scoreActivations(acts, out.labels);
        expect(scored.rejected[2]).to.match(/^non-finite activations \(NaN at 0\)/);
        expect(Number.isNaN(scored.scores[2]!)).to.equal(true);
        for (const r of [0, 1, 3, 4, 5]) {
          expect(scored.rejected[r]).to.equal(undefined);
          expect(Number.isFinite(scored.scores[r]!)).to.equal(true);
        }
      } finally {
        await det.release();
      }
    });

    it('draws by input position when seeded: 200 concurrent calls give what a serial run gives', async () => {
      const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, seed: 1 });
      try {
        const inputs = Array.from({ length: 200 }, (_, i) => slice(7200 + i, 7201 + i));
        const serial: number[][] = [];
        for (const x of inputs) serial.push((await det.detect(x, { explain: true }))[0]!.fingerprints!);
        const concurrent = await Promise.all(inputs.map((x) => det.detect(x, { explain: true })));
        expect(concurrent.map((r) => r[0]!.fingerprints)).to.deep.equal(serial);
      } finally {
        await det.release();
      }
    });
  });

  it('refuses an uncalibrated bank, a bank of another model and bad options, with clear errors', async () => {
    const uncalibrated = await FingerprintDetector.load({ model: modelPath, bank });
    try {
      let error: unknown;
      try {
        await uncalibrated.detect(slice(0, 1));
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(DetectorError);
      expect((error as Error).message).to.match(/not calibrated/);
    } finally {
      await uncalibrated.release();
    }
    const resnet = readFileSync(join(packageRoot, 'models', 'fmnist-resnet.onnx'));
    let error: unknown;
    try {
      await FingerprintDetector.load({ model: resnet, bank });
    } catch (e) {
      error = e;
    }
    // The resnet has none of the CNN's layers: the message names the mismatch, not just an unknown tap.
    expect(error).to.be.instanceOf(DetectorError);
    expect((error as Error).message).to.match(
      /fitted on model .*fmnist-cnn\.onnx \(sha256 [0-9a-f]{12}…\) and taps \/features\/pool3.*which the model given does not have/,
    );
    const foreign = new FingerprintBank(
      { ...bank.header, model: { ...bank.header.model, sha256: '0'.repeat(64) } },
      bank.arrays,
    );
    error = undefined;
    try {
      await FingerprintDetector.load({ model: modelPath, bank: foreign });
    } catch (e) {
      error = e;
    }
    expect(error).to.be.instanceOf(DetectorError);
    expect((error as Error).message).to.match(/sha256 000000000000.*allowModelMismatch/);
    await (await FingerprintDetector.load({ model: modelPath, bank: foreign, allowModelMismatch: true })).release();
    for (const [options, message] of [
      [{ draws: 0 }, /draws/],
      [{ combine: 'mean' }, /combine/],
      [{ scorer: 'knn' }, /scorer/],
      [{ threshold: NaN }, /threshold/],
      [{ fpr: 1 }, /fpr/],
    ] as const) {
      let e: unknown;
      try {
        await FingerprintDetector.load({ model: modelPath, bank, ...(options as object) });
      } catch (err) {
        e = err;
      }
      expect(e).to.be.instanceOf(RangeError);
      expect((e as Error).message).to.match(message);
    }
  });

  it('says detect() was called after release(), and release() twice is harmless', async () => {
    const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0 });
    expect(await det.detect(slice(0, 1))).to.have.length(1);
    await det.release();
    await det.release();
    for (const call of [
      () => det.detect(slice(0, 1)),
      () => det.score(slice(0, 1)),
      () => det.calibrate(slice(0, 1)),
    ]) {
      let error: unknown;
      try {
        await call();
      } catch (e) {
        error = e;
      }
      expect(error).to.be.instanceOf(DetectorError);
      expect((error as Error).message).to.match(/called after release\(\): load a new detector/);
    }
  });

  it('offers the vote and clean-likelihood scorers for comparison', async () => {
    for (const scorer of ['vote', 'likelihood'] as const) {
      const det = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0, scorer, seed: 1 });
      const out = await det.detect(slice(3000, 3010));
      await det.release();
      for (const d of out) {
        expect(Number.isFinite(d.score)).to.equal(true);
        if (scorer === 'vote') expect(d.score).to.be.within(0, 1);
      }
    }
  });
});
