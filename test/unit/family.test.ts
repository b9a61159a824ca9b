// The detector family: distinct candidates and fingerprints, the 'wide' default taps with a neuron
// budget and recorded samples, and the family metrics (distinct fingerprints and neurons, spread
// over layers, number of draws, redundancy) that `nfp bank info` and the reports show.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';
import * as ort from 'onnxruntime-node';

import { GradientModel } from '../../src/autodiff/index.js';
import {
  FingerprintBank,
  FingerprintColumns,
  classFamily,
  decodeBank,
  describeBank,
  drawCandidates,
  encodeBank,
  fitClass,
  log10Binomial,
  meanAbsCorrelation,
  readBank,
  subsetCount,
} from '../../src/bank/index.js';
import type { ClassFingerprints } from '../../src/bank/index.js';
import { registerBankCommand } from '../../src/cli/bank.js';
import { registerFitCommand } from '../../src/cli/fit.js';
import { writeNpy } from '../../src/data/index.js';
import { FingerprintDetector } from '../../src/detect/index.js';
import { Classifier, allocateBudget, decodeModel, wideTapTensors } from '../../src/model/index.js';
import type { TapRequest } from '../../src/model/index.js';
import { packageRoot } from '../../src/paths.js';
import { SeededRandom } from '../../src/random.js';
import { runCommands } from '../reference/cli.js';
import { largestDifference } from '../reference/compare.js';
import { TestRandom } from '../reference/random.js';
import { useTempDir } from '../reference/temp-dir.js';
import { balancedTinyClassifier, tinyClassifier, tinyWideSizes, tinyWideTaps } from '../reference/tiny-classifier.js';

const screen = { pMax: 1e-3, dMin: 1.5, minFingerprints: 5, maxCorrelation: 1 };

function subsets(c: Uint32Array, k: number): string[] {
  return Array.from({ length: c.length / k }, (_, i) => [...c.subarray(i * k, (i + 1) * k)].join(','));
}

function expectDistinctAscending(c: Uint32Array, k: number, neurons: number): void {
  const keys = subsets(c, k);
  expect(new Set(keys).size, 'distinct subsets').to.equal(keys.length);
  for (let i = 0; i < c.length / k; i++) {
    for (let j = 0; j < k; j++) {
      expect(c[i * k + j]).to.be.below(neurons);
      if (j > 0) expect(c[i * k + j]).to.be.above(c[i * k + j - 1]!);
    }
  }
}

describe('distinct candidates', () => {
  it('k = 1 over N = 74: every neuron once when C >= N, C distinct neurons otherwise', () => {
    const all = drawCandidates(100_000, 1, 74, new SeededRandom(1));
    expect([...all]).to.deep.equal(Array.from({ length: 74 }, (_, i) => i));
    const some = drawCandidates(30, 1, 74, new SeededRandom(1));
    expect(some.length).to.equal(30);
    expectDistinctAscending(some, 1, 74);
  });

  it('k = 2 over small N enumerates every subset without repeats, or samples distinct ones', () => {
    const all = drawCandidates(1000, 2, 10, new SeededRandom(2));
    expect(all.length / 2).to.equal(45);
    expectDistinctAscending(all, 2, 10);
    expect(subsets(all, 2).slice(0, 3)).to.deep.equal(['0,1', '0,2', '0,3']);
    for (const count of [30, 10]) {
      const some = drawCandidates(count, 2, 10, new SeededRandom(3));
      expect(some.length / 2).to.equal(count);
      expectDistinctAscending(some, 2, 10);
    }
  });

  it('k = 3 over N = 60 samples distinct subsets, reproducibly by seed', () => {
    const a = drawCandidates(3000, 3, 60, new SeededRandom(4));
    expect(a.length / 3).to.equal(3000);
    expectDistinctAscending(a, 3, 60);
    expect([...drawCandidates(3000, 3, 60, new SeededRandom(4))]).to.deep.equal([...a]);
  });

  it('handles N = 1, k = N and very many neurons', () => {
    expect([...drawCandidates(5, 1, 1, new SeededRandom(1))]).to.deep.equal([0]);
    expect([...drawCandidates(5, 4, 4, new SeededRandom(1))]).to.deep.equal([0, 1, 2, 3]);
    const wide = drawCandidates(1000, 1, 2 ** 31 - 1, new SeededRandom(5));
    expectDistinctAscending(wide, 1, 2 ** 31 - 1);
    expect(() => drawCandidates(5, 5, 4, new SeededRandom(1))).to.throw(RangeError, /k/);
    expect(subsetCount(10, 2)).to.equal(45);
    expect(subsetCount(100_000, 50)).to.equal(Number.POSITIVE_INFINITY);
  });
});

describe('fingerprints', () => {
  const rows = 200;
  const planted = (neurons: number, shift: (j: number) => number, rnd: TestRandom, copyOf?: (j: number) => number) => {
    const acts = new Float32Array(rows * neurons);
    for (let r = 0; r < rows; r++) {
      for (let j = 0; j < neurons; j++) acts[r * neurons + j] = rnd.normal() + shift(j);
      if (copyOf) for (let j = 0; j < neurons; j++) acts[r * neurons + j] = acts[r * neurons + copyOf(j)]!;
    }
    return { acts, rows };
  };

  it('k = 1 over N = 74 keeps at most 74 fingerprints per class, all distinct, however many candidates', async () => {
    const rnd = new TestRandom(11);
    const fp = await fitClass(
      planted(74, () => 0, rnd),
      [planted(74, (j) => (j < 60 ? 3 : 0), rnd)],
      74,
      { ...screen, candidates: 100_000, k: 1, topK: 2000 },
      new SeededRandom(1),
    );
    expect(fp.mu0.length).to.equal(60);
    expect(new Set(fp.indices).size).to.equal(fp.mu0.length);
    expect(Math.max(...fp.indices)).to.be.below(60);
  });

  it('records the redundancy of the kept fingerprints, and a correlation cap keeps one of each copied pair', async () => {
    // Neurons 20-39 copy neurons 0-19 exactly; 0-19 (and so 20-39) move under attack.
    const copy = (j: number) => (j >= 20 && j < 40 ? j - 20 : j);
    const clean = planted(50, () => 0, new TestRandom(12), copy);
    const attacked = [planted(50, (j) => (j < 20 ? 3 : 0), new TestRandom(13), copy)];
    const settings = { ...screen, candidates: 1000, k: 1, topK: 100 };
    const all = await fitClass(clean, attacked, 50, settings, new SeededRandom(1));
    expect(all.mu0.length).to.equal(40);
    const capped = await fitClass(clean, attacked, 50, { ...settings, maxCorrelation: 0.9 }, new SeededRandom(1));
    expect(capped.mu0.length).to.equal(20);
    const kept = new Set([...capped.indices].map((j) => j % 20));
    expect(kept.size).to.equal(20);
    expect(capped.redundancy).to.be.below(all.redundancy!);
  });

  it('mean |correlation|: 1 for copies, near 0 for independent neurons, sampled pairs close to all pairs', () => {
    const rnd = new TestRandom(14);
    const n = 60;
    const independent = { acts: Float32Array.from({ length: 500 * n }, () => rnd.normal()), rows: 500 };
    const ids = Uint32Array.from({ length: n }, (_, i) => i);
    const columns = new FingerprintColumns(independent, n, ids, 1);
    const exact = meanAbsCorrelation(columns, n)!;
    expect(exact).to.be.below(0.06);
    expect(meanAbsCorrelation(columns, n, 300)).to.be.closeTo(exact, 0.01);
    const same = new Uint32Array(10).fill(3);
    expect(meanAbsCorrelation(new FingerprintColumns(independent, n, same, 1), 10)).to.be.closeTo(1, 1e-9);
    expect(meanAbsCorrelation(columns, 1)).to.equal(null);
  });
});

describe('family metrics', () => {
  function bankWith(indices: number[][], neurons = 12): FingerprintBank {
    const fitted = new Map<number, { fingerprints: ClassFingerprints; clean: number; attacked: number[] }>();
    indices.forEach((list, c) => {
      const F = list.length;
      fitted.set(c, {
        fingerprints: {
          indices: Uint32Array.from(list),
          mu0: new Float32Array(F),
          sd0: new Float32Array(F).fill(1),
          mu1: new Float32Array(F).fill(2),
          sd1: new Float32Array(F).fill(1),
          effect: new Float32Array(F).fill(2),
          passed: F,
        },
        clean: 10,
        attacked: [10],
      });
    });
    return FingerprintBank.fromClasses(
      {
        model: { sha256: 'cd'.repeat(32), source: 'x.onnx', inputShape: [1, 8, 8], classes: indices.length },
        taps: [
          { tensor: 'a', size: 8 },
          { tensor: 'logits', size: neurons - 8 },
        ],
        neurons,
        k: 1,
        families: ['pgd'],
        fit: { candidates: 100, k: 1, topK: 10, ...screen, attacks: { pgd: {} } },
        created: '2026-12-01T00:00:00.000Z',
      },
      fitted,
    );
  }

  it('a bank with repeated fingerprints (as banks fitted before distinct candidates) loads and is reported', () => {
    const bank = decodeBank(
      encodeBank(
        bankWith([
          [5, 5, 5, 9],
          [1, 2, 3],
        ]),
      ),
    );
    const d = describeBank(bank);
    expect(d.duplicates).to.equal(2);
    expect(d.classes[0]!.family).to.include({ fingerprints: 4, distinct: 2, neurons: 2 });
    expect(d.classes[0]!.family.perTap).to.deep.equal([1, 1]);
    expect(d.classes[1]!.family).to.include({ distinct: 3, neurons: 3 });
    expect(d.classes[1]!.family.log10Draws).to.equal(0); // 3 of 3, with 25 draws
    expect(d.taps.map((t) => t.used)).to.deep.equal([4, 1]);
    expect(classFamily(bank, 0, 1).log10Draws).to.be.closeTo(Math.log10(2), 1e-12);
  });

  it('log10 of the number of draws', () => {
    expect(log10Binomial(10, 3)).to.be.closeTo(Math.log10(120), 1e-12);
    expect(log10Binomial(2000, 25)).to.be.closeTo(57.27, 0.01);
    expect(log10Binomial(5, 6)).to.equal(Number.NEGATIVE_INFINITY);
  });

  describe('nfp bank info', () => {
    const dir = useTempDir('nfp-family-');
    it('warns about repeated fingerprints and shows the family columns', async () => {
      const path = join(dir(), 'dup.nfp');
      writeFileSync(
        path,
        encodeBank(
          bankWith([
            [5, 5, 5, 9],
            [1, 2, 3],
          ]),
        ),
      );
      const text = await runCommands([registerBankCommand], ['bank', 'info', path]);
      expect(text).to.match(/warning: 2 fingerprints repeat another of their class/);
      expect(text).to.match(/distinct\s+neurons\s+log10 draws of 25\s+redundancy/);
      const json = JSON.parse(await runCommands([registerBankCommand], ['bank', 'info', path, '--json']));
      expect(json.duplicates).to.equal(2);
      expect(json.classes[0].family.distinct).to.equal(2);
    });
  });
});

describe("'wide' taps", () => {
  const bytes = tinyClassifier();
  const rnd = new TestRandom(21);
  const images = { data: rnd.floats(12 * 64, 0, 1), dims: [12, 1, 8, 8] };

  it('find every activation (ReLU, GELU, SiLU) and pooling output, the penultimate features and the logits', () => {
    expect(wideTapTensors(decodeModel(bytes, 'tiny').graph, 'logits')).to.deep.equal(tinyWideTaps);
  });

  it("take a stem that no activation follows (a ViT's patch embedding), never a CNN's first convolution", () => {
    const wide = (path: string) => {
      const graph = decodeModel(new Uint8Array(readFileSync(path)), path).graph;
      return wideTapTensors(graph, graph.output![0]!.name!);
    };
    const models = join(packageRoot, 'models');
    const fixtures = join(packageRoot, 'test', 'testdata', 'gradients');
    // The patch embedding (Conv -> Reshape -> Transpose -> + position -> LayerNorm and the residual) is linear
    // up to the first block's MLP: taken, first in graph order.
    for (const vit of [join(models, 'fmnist-vit.onnx'), join(fixtures, 'mini-vit.onnx')])
      expect(wide(vit)[0], vit).to.equal('/patch_embed/Conv_output_0');
    // Convolutions feeding a ReLU directly, through a BatchNorm (ResNet, MobileNet with ReLU6) or a SiLU gate:
    // their activation is tapped, the convolution's own output is not.
    for (const cnn of [
      join(models, 'fmnist-cnn.onnx'),
      join(models, 'fmnist-resnet.onnx'),
      join(fixtures, 'mini-mobilenet.onnx'),
      join(fixtures, 'mini-resnet.onnx'),
      join(fixtures, 'mini-zoo.op13.onnx'),
      join(fixtures, 'mini-zoo-nhwc-b1.op13.onnx'),
    ])
      expect(
        wide(cnn).filter((t) => /Conv_output/.test(t)),
        cnn,
      ).to.deep.equal([]);
  });

  it('are the default for a model without a card, whole within the budget', async () => {
    const c = await Classifier.load(bytes);
    try {
      expect(c.taps.map((t) => t.tensor)).to.deep.equal(tinyWideTaps);
      expect(c.taps.map((t) => t.size)).to.deep.equal(tinyWideSizes);
      expect(c.tapPlan).to.include({ rule: 'wide', sampled: 0, fullNeurons: 495 });
    } finally {
      await c.release();
    }
  });

  it('share a neuron budget by water-filling, the logits whole', () => {
    expect(allocateBudget(tinyWideSizes, 200, [false, false, false, false, false, false, true])).to.deep.equal([
      47, 46, 46, 46, 6, 6, 3,
    ]);
    expect(allocateBudget([10, 20], 1000)).to.deep.equal([10, 20]);
    expect(allocateBudget([100, 100], 3)).to.deep.equal([2, 1]);
  });

  it('sample large layers under a budget, and a bank that records the samples taps the same neurons', async () => {
    const whole = await Classifier.load(bytes, { taps: 'wide' });
    const sampled = await Classifier.load(bytes, { taps: 'wide', neuronBudget: 200, tapSeed: 9 });
    try {
      expect(sampled.neurons).to.equal(200);
      expect(sampled.tapPlan.sampled).to.equal(4);
      const full = await whole.run(images);
      const part = await sampled.run(images);
      for (const tap of sampled.taps) {
        const w = whole.taps.find((t) => t.tensor === tap.tensor)!;
        const indices = tap.indices ?? Uint32Array.from({ length: tap.size }, (_, i) => i);
        for (let r = 0; r < 12; r++) {
          for (let j = 0; j < tap.size; j++) {
            expect(part.activations[r * 200 + tap.offset + j]).to.equal(
              full.activations[r * whole.neurons + w.offset + indices[j]!],
            );
          }
        }
      }
      // Replayed from the record alone (as a bank stores it): the same neurons.
      const requests: TapRequest[] = sampled.taps.map((t) => ({
        tensor: t.tensor,
        ...(t.sample ? { sample: t.sample } : {}),
      }));
      const replayed = await Classifier.load(bytes, { taps: requests });
      try {
        expect([...(await replayed.run(images)).activations]).to.deep.equal([...part.activations]);
      } finally {
        await replayed.release();
      }
      const tampered = requests.map((t) => (t.sample ? { ...t, sample: { ...t.sample, seed: t.sample.seed + 1 } } : t));
      await Classifier.load(bytes, { taps: tampered }).then(
        () => expect.fail('loaded'),
        (e: Error) =>
          expect(e.message).to.match(/recorded neuron sample of tap 'relu1'.*does not reproduce its digest/),
      );
    } finally {
      await Promise.all([whole.release(), sampled.release()]);
    }
  });

  it("a tap seed on sampled layers gives the gradient of the whole layers' seed, zero off the sample", async () => {
    const sampled = await GradientModel.load(bytes, { taps: 'wide', neuronBudget: 200, tapSeed: 9 });
    const whole = await GradientModel.load(bytes, { taps: 'wide' });
    try {
      const seed = rnd.floats(12 * 200, -1, 1);
      const spread = new Float32Array(12 * whole.neurons);
      for (const tap of sampled.taps) {
        const w = whole.taps.find((t) => t.tensor === tap.tensor)!;
        for (let r = 0; r < 12; r++) {
          for (let j = 0; j < tap.size; j++) {
            spread[r * whole.neurons + w.offset + (tap.indices?.[j] ?? j)] = seed[r * 200 + tap.offset + j]!;
          }
        }
      }
      const a = await sampled.gradient(images, { tapSeed: seed });
      const b = await whole.gradient(images, { tapSeed: spread });
      const { difference: worst, scale } = largestDifference(a.grad, b.grad);
      expect(scale).to.be.above(0);
      expect(worst / scale).to.be.below(1e-5);
    } finally {
      await Promise.all([sampled.release(), whole.release()]);
    }
  });
});

describe('nfp fit with no taps named', () => {
  const dir = useTempDir('nfp-wide-fit-');

  async function fitTiny(name: string, extra: string[] = []): Promise<FingerprintBank> {
    const modelPath = join(dir(), `${name}.onnx`);
    const rnd = new TestRandom(31);
    const rows = 600;
    const data = rnd.floats(rows * 64, 0, 1);
    writeFileSync(modelPath, await balancedTinyClassifier(data));
    const session = await ort.InferenceSession.create(modelPath);
    const logits = (await session.run({ x: new ort.Tensor('float32', data, [rows, 1, 8, 8]) })).logits!
      .data as Float32Array;
    await session.release();
    // Labels are the model's own predictions, so every image counts as correctly classified.
    const labels = Int32Array.from({ length: rows }, (_, r) => {
      const z = logits.subarray(r * 3, r * 3 + 3);
      return z.indexOf(Math.max(...z));
    });
    writeNpy(join(dir(), 'x.npy'), { dims: [rows, 1, 8, 8], data });
    writeNpy(join(dir(), 'y.npy'), { dims: [rows], data: labels });
    const out = join(dir(), `${name}.nfp`);
    await runCommands(
      [registerFitCommand],
      [
        'fit',
        '--model',
        modelPath,
        '--data',
        join(dir(), 'x.npy'),
        '--labels',
        join(dir(), 'y.npy'),
        '--attacks',
        'pgd',
        '--eps',
        '0.5',
        '--steps',
        '3',
        '--clean-per-class',
        '20',
        '--attacked-per-class',
        '20',
        '--calibrate-share',
        '0',
        '--seed',
        '1',
        '--out',
        out,
        ...extra,
      ],
    );
    return readBank(out);
  }

  it('taps the wide set of a model without a card, and every fingerprint of a class is distinct', async () => {
    const bank = await fitTiny('nocard');
    expect(bank.header.taps.map((t) => t.tensor)).to.deep.equal(tinyWideTaps);
    for (let c = 0; c < 3; c++) {
      const f = classFamily(bank, c, 25);
      expect(f.fingerprints).to.be.above(0);
      expect(f.distinct).to.equal(f.fingerprints);
    }
  });

  it("takes the card's taps when the model has a card, and samples under a small activation memory", async () => {
    writeFileSync(join(dir(), 'carded.json'), JSON.stringify({ detectorTaps: { tensors: ['pool1', 'logits'] } }));
    const carded = await fitTiny('carded');
    expect(carded.header.taps.map((t) => t.tensor)).to.deep.equal(['pool1', 'logits']);
    // 0.01 MiB for 40 rows: a budget of 65 neurons.
    const small = await fitTiny('small', ['--taps', 'wide', '--activation-memory', '0.01']);
    expect(small.header.neurons).to.equal(65);
    expect(small.header.taps.filter((t) => t.sample !== undefined).length).to.be.above(0);
    expect(small.header.fit.activationBytes).to.equal(10485);
    // The detector replays the recorded samples.
    const detector = await FingerprintDetector.load({ model: join(dir(), 'small.onnx'), bank: small, threshold: 0 });
    try {
      expect(detector.classifier.neurons).to.equal(65);
      const [d] = await detector.detect({ data: new Float32Array(64).fill(0.5), dims: [1, 1, 8, 8] });
      expect(d!.score).to.be.a('number');
    } finally {
      await detector.release();
    }
  });
});
