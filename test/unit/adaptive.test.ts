// Adaptive attacks on the committed CNN with the small test bank: the expectation term's gradient is
// the mean over single-fingerprint draws, the static-draw attack takes the targeted draw's score under
// its threshold, and rejection sampling never sends a candidate its local copies flag.
import { join } from 'node:path';

import { expect } from 'chai';

import { PGD } from '../../src/attacks/index.js';
import {
  AdaptivePGD,
  DetectorTerm,
  drawnCopy,
  expectationCopy,
  rejectionSample,
  tappedModel,
} from '../../src/attacks/adaptive/index.js';
import type { TappedAttackModel } from '../../src/attacks/adaptive/index.js';
import { GradientModel } from '../../src/autodiff/index.js';
import { FingerprintBank, readBank } from '../../src/bank/index.js';
import type { ConfidenceCalibration } from '../../src/bank/index.js';
import { loadFashionMnist } from '../../src/data/index.js';
import { confidenceStatistic } from '../../src/detect/confidence.js';
import { FingerprintDetector } from '../../src/detect/index.js';
import { packageRoot } from '../../src/paths.js';
import { randomFingerprintBank } from '../reference/random-bank.js';
import { largestDifference } from '../reference/compare.js';
import { TestRandom } from '../reference/random.js';
import { writeSmallBank } from '../reference/small-bank.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');

describe('adaptive attacks', function () {
  this.timeout(120_000);
  const temp = useTempDir('nfp-adaptive-');
  let bank: FingerprintBank;
  let grad: GradientModel;
  let model: TappedAttackModel;
  // Six held-out images the model classifies correctly (rows past the bank's 600).
  let images: { data: Float32Array; dims: number[] };
  let labels: Int32Array;

  before(async () => {
    const path = join(temp(), 'small.nfp');
    await writeSmallBank(modelPath, path);
    bank = readBank(path);
    grad = await GradientModel.load(modelPath, { taps: bank.tapRequests });
    model = tappedModel(grad);
    const test = loadFashionMnist({ split: 'test' });
    const pool = { data: test.data.subarray(700 * 784, 760 * 784), dims: [60, 1, 28, 28] };
    const { logits } = await model.forward(pool);
    const keep: number[] = [];
    for (let i = 0; i < 60 && keep.length < 6; i++) {
      const row = logits.subarray(i * 10, i * 10 + 10);
      if (row.indexOf(Math.max(...row)) === test.labels[700 + i]) keep.push(i);
    }
    images = { data: new Float32Array(keep.length * 784), dims: [keep.length, 1, 28, 28] };
    keep.forEach((i, at) => {
      images.data.set(pool.data.subarray(i * 784, (i + 1) * 784), at * 784);
    });
    labels = Int32Array.from(keep, (i) => test.labels[700 + i]!);
  });

  after(async () => {
    await grad?.release();
  });

  it('the expectation term and its gradient are m times the mean over single-fingerprint draws', async () => {
    const { activations } = await model.forward(images);
    const n = bank.header.neurons;
    const m = 5;
    const term = DetectorTerm.expectation(bank, { draws: m, combine: 'max', threshold: () => 0 });
    const got = await term.evaluate(activations, labels);
    for (let r = 0; r < labels.length; r++) {
      const { start, count } = bank.range(labels[r]!);
      const acts = activations.subarray(r * n, (r + 1) * n);
      const sum = new Float64Array(n);
      let value = 0;
      for (let j = start; j < start + count; j++) {
        const one = { acts, rows: 1, draws: Uint32Array.of(j), combine: 'max' as const };
        value += (await bank.native.detectScores(one)).score[0]!;
        const g = await bank.native.scoreGradient(one);
        for (let i = 0; i < n; i++) sum[i] += g[i]!;
      }
      expect(got.value[r]).to.be.closeTo((m * value) / count, 1e-3 * Math.max(1, Math.abs(value)));
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < n; i++) {
        worst = Math.max(worst, Math.abs(got.seed![r * n + i]! - (m * sum[i]!) / count));
        scale = Math.max(scale, Math.abs(sum[i]!) / count);
      }
      expect(worst).to.be.at.most(1e-4 * Math.max(1, m * scale));
    }
  });

  it('with the confidence term, the term is the largest standardized family expectation or margin statistic', async () => {
    const { two, cal } = twoFamilies(bank);
    const { logits, activations } = await model.forward(images);
    const n = two.header.neurons;
    const rows = labels.length;
    const m = 5;
    const term = DetectorTerm.expectation(two, { draws: m, combine: 'max', threshold: () => 1, confidence: cal });
    const got = await term.evaluate(activations, labels, true, logits);
    const margins = confidenceStatistic(logits, rows);
    const fingerprintsAlone = await term.evaluate(activations, labels, false);
    for (let r = 0; r < rows; r++) {
      const c = labels[r]!;
      const { start, count } = two.range(c);
      const all = Uint32Array.from({ length: count }, (_, j) => start + j);
      const acts = activations.subarray(r * n, (r + 1) * n);
      const { familyScores } = await two.native.detectScores({ acts, rows: 1, draws: all, combine: 'max' });
      const z = cal.fingerprint[c]!.map(([center, spread], f) => ((m / count) * familyScores[f]! - center) / spread);
      const fp = Math.max(...z);
      const expected = Math.max(fp, (margins[r]! - cal.margin[c]![0]) / cal.margin[c]![1]);
      expect(got.value[r]).to.be.closeTo(expected, 1e-3 * Math.max(1, Math.abs(expected)));
      expect(got.slack[r]).to.be.closeTo(expected - 1, 1e-3 * Math.max(1, Math.abs(expected)));
      expect(fingerprintsAlone.value[r]).to.be.closeTo(fp, 1e-3 * Math.max(1, Math.abs(fp)));
      // The seed is the gradient of the fingerprint part: a central difference along a random direction.
      const direction = Float32Array.from({ length: n }, (_, i) => ((i * 7919) % 13) / 13 - 0.5);
      const h = 1e-3;
      const at = async (sign: number) => {
        const moved = activations.slice();
        for (let i = 0; i < n; i++) moved[r * n + i] = moved[r * n + i]! + sign * h * direction[i]!;
        return (await term.evaluate(moved, labels, false)).value[r]!;
      };
      const numeric = ((await at(1)) - (await at(-1))) / (2 * h);
      let analytic = 0;
      for (let i = 0; i < n; i++) analytic += got.seed![r * n + i]! * direction[i]!;
      expect(analytic).to.be.closeTo(numeric, 1e-2 * Math.max(1, Math.abs(numeric)));
    }
  });

  it('a quadratic tap seed gives the term and its gradient in the gradient run itself', async () => {
    const { two, cal } = twoFamilies(bank);
    const { activations } = await model.forward(images);
    const marginLabels = labels;
    for (const [name, b, confidence] of [
      ['one family', bank, undefined],
      ['two families, standardized', two, cal],
    ] as const) {
      const term = DetectorTerm.expectation(b, {
        draws: 5,
        combine: 'max',
        threshold: () => 0,
        ...(confidence !== undefined ? { confidence } : {}),
      });
      const want = await term.evaluate(activations, labels, true);
      const seeded = await grad.gradient(images, { tapSeed: want.seed!, marginLabels, activations: false });
      const fused = await grad.gradient(images, {
        tapQuadratic: term.quadraticRequest(labels),
        marginLabels,
        activations: false,
      });
      for (let r = 0; r < labels.length; r++)
        expect(fused.tapValue![r], `${name} row ${r}`).to.be.closeTo(
          want.value[r]!,
          1e-3 * Math.max(10, Math.abs(want.value[r]!)),
        );
      let dot = 0;
      let aa = 0;
      let bb = 0;
      for (let i = 0; i < seeded.grad.length; i++) {
        dot += seeded.grad[i]! * fused.grad[i]!;
        aa += seeded.grad[i]! ** 2;
        bb += fused.grad[i]! ** 2;
      }
      expect(dot / Math.sqrt(aa * bb), name).to.be.above(0.9999);
      expect(Math.sqrt(bb / aa), name).to.be.closeTo(1, 1e-3);
      expect(Array.from(fused.logits)).to.deep.equal(Array.from(seeded.logits));
    }
    const request = DetectorTerm.expectation(bank, { draws: 5, combine: 'max', threshold: () => 0 }).quadraticRequest(
      labels,
    );
    const refused = await grad
      .gradient(images, { tapQuadratic: { ...request, rows: new Int32Array(labels.length).fill(99) } })
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(refused?.message).to.match(/tapQuadratic.rows/);
  });

  it('the quadratic tap seed maps sampled layers (wide taps under a small budget) to their columns', async () => {
    const wide = await GradientModel.load(modelPath, { taps: 'wide', neuronBudget: 3000, tapSeed: 1 });
    try {
      expect(wide.classifier.tapPlan.sampled).to.be.greaterThan(0);
      const random = randomFingerprintBank(new TestRandom(5), wide.classifier, {
        k: 1,
        perClass: (c) => (c === 4 ? 0 : 40),
      });
      const term = DetectorTerm.expectation(random, { draws: 5, combine: 'max', threshold: () => 0 });
      const { activations } = await tappedModel(wide).forward(images);
      const want = await term.evaluate(activations, labels, true);
      const seeded = await wide.gradient(images, { tapSeed: want.seed!, activations: false });
      const fused = await wide.gradient(images, { tapQuadratic: term.quadraticRequest(labels), activations: false });
      // Class 4 has no fingerprints: no term (NaN) in evaluate, a zero value and no seed in the run.
      for (let r = 0; r < labels.length; r++)
        if (labels[r] === 4) expect([want.value[r], fused.tapValue![r]]).to.deep.equal([Number.NaN, 0]);
        else expect(fused.tapValue![r]).to.be.closeTo(want.value[r]!, 1e-3 * Math.max(10, Math.abs(want.value[r]!)));
      const { difference: worst, scale: largest } = largestDifference(fused.grad, seeded.grad);
      expect(largest).to.be.greaterThan(0);
      expect(worst).to.be.at.most(1e-3 * largest);
    } finally {
      await wide.release();
    }
  });

  it('the static-draw attack takes the targeted draw under its threshold where plain PGD does not', async () => {
    const m = 10;
    // Per class, the highest static score of 200 clean images the model puts in it: every one passes.
    const probe = DetectorTerm.staticDraw(bank, { draws: m, combine: 'max', threshold: () => 0 });
    const test = loadFashionMnist({ split: 'test' });
    const pool = { data: test.data.subarray(800 * 784, 1000 * 784), dims: [200, 1, 28, 28] };
    const out = await model.forward(pool);
    const poolLabels = Int32Array.from({ length: 200 }, (_, i) => argmaxOf(out.logits.subarray(i * 10, i * 10 + 10)));
    const clean = await probe.evaluate(out.activations, poolLabels, false);
    const highest = new Float64Array(10).fill(Number.NEGATIVE_INFINITY);
    poolLabels.forEach((c, i) => {
      highest[c] = Math.max(highest[c]!, clean.value[i]!);
    });
    const term = DetectorTerm.staticDraw(bank, { draws: m, combine: 'max', threshold: (c) => highest[c]! });
    const judge = async (adv: Float32Array) => {
      const { logits, activations } = await model.forward({ data: adv, dims: images.dims });
      const predicted = Int32Array.from(labels, (_, i) => argmaxOf(logits.subarray(i * 10, i * 10 + 10)));
      return { predicted, ...(await term.evaluate(activations, predicted, false)) };
    };
    const plain = await new PGD({ eps: 0.1, steps: 20 }).run(model, images, { labels, seed: 1 });
    const seen = await judge(plain.adv);
    const plainPassed = labels.filter((y, i) => seen.predicted[i] !== y && seen.slack[i]! < 0).length;
    // Both ways of running it: a forward, the term and a seeded gradient per step, or one fused run.
    for (const fused of [false, true]) {
      const adaptive = await new AdaptivePGD(term, { eps: 0.1, steps: 100, weight: 1, kappa: 1, fused }).run(
        model,
        images,
        { labels, seed: 1 },
      );
      const got = await judge(adaptive.adv);
      const passed = labels.filter((y, i) => got.predicted[i] !== y && got.slack[i]! < 0).length;
      expect(passed, `fused: ${fused}`).to.be.greaterThan(plainPassed);
      expect(passed, `fused: ${fused}`).to.be.at.least(labels.length - 1);
      for (let i = 0; i < labels.length; i++) expect(adaptive.norms.linf[i]).to.be.at.most(0.1 + 1e-6);
    }
  });

  it('rejection sampling never sends a candidate that a local copy flags or the model still gets right', async () => {
    const detector = await FingerprintDetector.load({ model: modelPath, bank, draws: 5, threshold: 0 });
    try {
      const term = DetectorTerm.expectation(bank, { draws: 5, combine: 'max', threshold: () => 0 });
      const copies = [0, 1, 2].map((c) => drawnCopy(detector, 7, c));
      copies.push(expectationCopy(term));
      const candidates: Float32Array[] = [];
      for (const seed of [1, 2, 3])
        candidates.push((await new PGD({ eps: 0.1, steps: 10 }).run(model, images, { labels, seed })).adv);
      const result = await rejectionSample(model, images, labels, candidates, copies);
      const n = labels.length;
      for (let i = 0; i < n; i++) {
        const c = result.chosen[i]!;
        if (c < 0) continue;
        const one = { data: result.adv.slice(i * 784, (i + 1) * 784), dims: [1, 1, 28, 28] };
        expect(Array.from(one.data)).to.deep.equal(Array.from(candidates[c]!.subarray(i * 784, (i + 1) * 784)));
        const { logits, activations } = await model.forward(one);
        const label = logits.indexOf(Math.max(...logits));
        expect(label).to.not.equal(labels[i]);
        for (const copy of copies) {
          const f = await copy.flags(activations, Int32Array.of(label), Int32Array.of(c * n + i));
          expect(f[0], `${copy.name} on image ${i}`).to.equal(0);
        }
      }
      expect(Math.max(...result.misclassified)).to.be.greaterThan(0);
      expect(Array.from(result.passed)).to.deep.equal(Array.from(result.chosen, (c) => (c >= 0 ? 1 : 0)));
    } finally {
      await detector.release();
    }
  });
});

function argmaxOf(row: Float32Array): number {
  return row.indexOf(Math.max(...row));
}

/**
 * The bank with a second family over the same fingerprints (attacked means half a clean sd higher,
 * wider), and a confidence calibration of made-up centers and spreads for it.
 */
function twoFamilies(bank: FingerprintBank): { two: FingerprintBank; cal: ConfidenceCalibration } {
  const { sd0, mu1, sd1 } = bank.arrays;
  const second = (a: Float32Array, f: (v: number, i: number) => number) => {
    const out = new Float32Array(a.length * 2);
    out.set(a);
    a.forEach((v, i) => {
      out[a.length + i] = f(v, i);
    });
    return out;
  };
  const two = new FingerprintBank(
    { ...bank.header, families: ['fgsm', 'other'] },
    {
      ...bank.arrays,
      mu1: second(mu1, (v, i) => v + 0.5 * sd0[i]!),
      sd1: second(sd1, (v) => 1.5 * v),
    },
  );
  const cal: ConfidenceCalibration = {
    fingerprint: Array.from({ length: 10 }, (_, c) => [
      [-3 - c, 2],
      [1, 0.5 + 0.1 * c],
    ]),
    margin: Array.from({ length: 10 }, () => [-1.5, 1.2] as [number, number]),
  };
  return { two, cal };
}
