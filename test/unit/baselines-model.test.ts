// The peer detectors through a real ONNX model (the tests' tiny classifier, random weights): the
// Mahalanobis input pre-processing moves each image down its layer's distance by the first-order
// amount eps * ||grad||_1 (the gradient taken by finite differences here, by the library's autodiff
// through a tap seed in the detector), channel means as the authors take them, and
// evaluateBaselines' figures for all three detectors (threshold, measured FPR, costs, AUCs).
import { expect } from 'chai';

import { GradientModel } from '../../src/autodiff/index.js';
import {
  MahalanobisDetector,
  TiedGaussians,
  baselineTable,
  channelLayers,
  channelMeans,
  evaluateBaselines,
  spreadChannelGradient,
} from '../../src/baselines/index.js';
import type { ImageBatch } from '../../src/model/index.js';
import { TestRandom } from '../reference/random.js';
import { balancedTinyClassifier } from '../reference/tiny-classifier.js';

const taps = ['relu1', 'silu', 'features', 'logits'];

describe('baselines on a model', () => {
  let model: GradientModel;
  let clean: ImageBatch;
  let labels: Int32Array;
  let noisy: ImageBatch;
  const rows = 600;

  before(async () => {
    const rnd = new TestRandom(41);
    // Black-and-white images, and as the "attack" the same images with noise of up to 0.3 per pixel, which
    // 1-bit depth reduction removes exactly.
    const data = Float32Array.from({ length: rows * 64 }, () => (rnd.next() < 0.5 ? 0 : 1));
    model = await GradientModel.load(await balancedTinyClassifier(data), { taps, batchSize: 64 });
    clean = { data, dims: [rows, 1, 8, 8] };
    labels = (await model.classifier.run(clean)).labels;
    noisy = {
      data: data.map((v) => Math.min(1, Math.max(0, v + rnd.uniform(-0.3, 0.3)))),
      dims: [rows, 1, 8, 8],
    };
  });

  after(async () => {
    await model.release();
  });

  const batch = (images: ImageBatch, from: number, to: number): ImageBatch => ({
    data: images.data.subarray(from * 64, to * 64),
    dims: [to - from, 1, 8, 8],
  });

  it('takes channel means as the authors (a [C, H, W] tap averaged over H x W, a flat tap as is)', async () => {
    const layers = channelLayers(model.taps);
    expect(layers.map((l) => l.channels)).to.deep.equal([4, 6, 6, 3]);
    const out = await model.classifier.run(batch(clean, 0, 2));
    const relu1 = channelMeans(layers[0]!, out.activations, 2, model.neurons);
    // relu1 is [4, 8, 8]: channel 2 of image 1 is the mean of its 64 values.
    const start = model.neurons + 2 * 64;
    const expected = out.activations.subarray(start, start + 64).reduce((a, v) => a + v, 0) / 64;
    expect(relu1[4 + 2]).to.be.closeTo(expected, 1e-6);
    const logits = channelMeans(layers[3]!, out.activations, 2, model.neurons);
    expect(Array.from(logits.subarray(0, 3))).to.deep.equal(Array.from(out.logits.subarray(0, 3)));
  });

  it('pre-processes each input down its distance by eps * ||grad_x M / 2||_1 (the gradient through a tap seed)', async () => {
    const detector = new MahalanobisDetector(model, { magnitudes: [0], regressionImages: 100, seed: 1 });
    await detector.fit({ clean: { images: clean, labels }, attacked: { noise: batch(noisy, 0, 200) } });
    const probe = batch(clean, 300, 316);
    const eps = 1e-3;
    const before = await detector.layerScores(probe, 0);
    const after = await detector.layerScores(probe, eps);
    // Finite differences of S(x) = -min_c M_c(f_l(x)) / 2 pixel by pixel give the first-order change.
    const layers = channelLayers(model.taps);
    const out = await model.classifier.run(clean);
    const gaussians = layers.map((layer) =>
      TiedGaussians.fit(channelMeans(layer, out.activations, rows, model.neurons), rows, layer.channels, labels, 3),
    );
    const h = 1e-3;
    let agree = 0;
    let total = 0;
    for (let r = 0; r < 16; r++) {
      const x = batch(probe, r, r + 1);
      const shifted = new Float32Array(64 * 128);
      for (let p = 0; p < 64; p++) {
        shifted.set(x.data, 2 * p * 64);
        shifted.set(x.data, (2 * p + 1) * 64);
        shifted[2 * p * 64 + p]! += h;
        shifted[(2 * p + 1) * 64 + p]! -= h;
      }
      const runs = await model.classifier.run({ data: shifted, dims: [128, 1, 8, 8] });
      const base = await model.classifier.run(x);
      for (const [l, layer] of layers.entries()) {
        const c = gaussians[l]!.nearest(channelMeans(layer, base.activations, 1, model.neurons), 1).label[0]!;
        const f = channelMeans(layer, runs.activations, 128, model.neurons);
        const m = gaussians[l]!.distances(f, 128);
        const fd = Array.from({ length: 64 }, (_, p) => (m[2 * p * 3 + c]! - m[(2 * p + 1) * 3 + c]!) / (4 * h));
        const l1 = fd.reduce((a, v) => a + Math.abs(v), 0);
        if (r === 0) {
          // The gradient itself, through the tap seed: P (f - mu_c) spread over each channel's neurons.
          const f0 = channelMeans(layer, base.activations, 1, model.neurons);
          const seed = new Float32Array(model.neurons);
          spreadChannelGradient(layer, gaussians[l]!.halfDistanceGradient(f0, 0, c), seed, 0, model.neurons);
          const { grad } = await model.gradient(x, { tapSeed: seed, activations: false });
          const dot = fd.reduce((a, v, p) => a + v * grad[p]!, 0);
          const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, u) => a + u * u, 0));
          expect(dot / (norm(fd) * norm(grad))).to.be.above(0.99);
          expect(norm(grad) / norm(fd)).to.be.closeTo(1, 0.05);
        }
        const predicted = eps * l1;
        const measured = after.data[r * layers.length + l]! - before.data[r * layers.length + l]!;
        total++;
        if (Math.abs(measured - predicted) <= 0.2 * predicted + 1e-6) agree++;
      }
    }
    // Kinks of ReLU and max pooling within eps of a few inputs may break the first-order picture there.
    expect(agree / total).to.be.above(0.9);
  });

  it('evaluates all three detectors side by side: thresholds, measured FPR, costs, AUC per attack', async () => {
    const evaluation = await evaluateBaselines({
      model,
      baselines: ['mahalanobis', 'lid', 'squeeze'],
      settings: {
        mahalanobis: { magnitudes: [0, 0.01], regressionImages: 150 },
        lid: { regressionImages: 200, batchSize: 50, k: 10 },
        squeeze: { squeezers: [{ kind: 'bitDepth', bits: 1 }] },
      },
      fit: {
        clean: { images: batch(clean, 0, 300), labels: labels.subarray(0, 300) },
        attacked: { noise: batch(noisy, 0, 300) },
      },
      calibration: batch(clean, 300, 450),
      heldOut: {
        clean: batch(clean, 300, 450),
        attacked: { noise: batch(noisy, 450, 600), same: batch(clean, 450, 600) },
      },
      fpr: 0.1,
    });
    expect(evaluation.schema).to.equal('nfp-baselines/1');
    expect(evaluation.baselines.map((b) => b.name)).to.deep.equal(['mahalanobis', 'lid', 'squeeze']);
    for (const b of evaluation.baselines) {
      // The held-out clean images are the calibration images: deterministic scores give FPR <= 10% exactly.
      if (b.name !== 'lid') expect(b.fprAtThreshold).to.be.at.most(0.1);
      expect(b.cost.scoredImages).to.equal(450);
      expect(b.cost.scoreSecondsPerImage).to.be.above(0);
      expect(b.attacks.map((a) => a.attack)).to.deep.equal(['noise', 'same']);
      const [noise, same] = b.attacks;
      // Clean images of the same kind are no attack: AUC near 0.5.
      expect(same!.auc).to.be.within(0.35, 0.65);
      expect(noise!.adversarial).to.equal(150);
      expect(noise!.tprAt1).to.be.at.most(noise!.tprAt5);
    }
    const [mahalanobis, lid, squeeze] = evaluation.baselines;
    // The noise moves the channel means off the clean Gaussians; 1-bit depth undoes it exactly, and leaves the
    // black-and-white clean images as they are (score 0: no false positive at all).
    expect(mahalanobis!.attacks[0]!.auc).to.be.above(0.75);
    expect(squeeze!.attacks[0]!.auc).to.equal(1);
    expect(squeeze!.fprAtThreshold).to.equal(0);
    expect(mahalanobis!.cost.fitImages).to.equal(300 + 150);
    expect(mahalanobis!.settings.magnitude).to.be.oneOf([0, 0.01]);
    expect(lid!.cost.fitImages).to.equal(200 + 200);
    expect(squeeze!.cost.fitImages).to.equal(0);
    expect(baselineTable(evaluation).split('\n')).to.have.length(2 + 6 + 1);
  });
});
