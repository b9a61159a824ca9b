// The ImageNet-scale figures that need ResNet-50 (models/cache/resnet50-224.onnx, random weights; no
// ImageNet is reachable here), part of bench/scale.ts:
//   detect: detect() with the synthetic 1,000-class bank (2,000 fingerprints per class, k = 1, two
//           families) over the model's default taps ('wide', no model card) vs bare ONNX Runtime
//           inference with the same tapped outputs in the same runs (the tap memory bound splits a
//           batch of 32 into runs of a few images), interleaved, best of `reps` (goal: <= 3%).
//   fit:    the stages of `nfp fit`'s per-class work at its defaults (PGD and FGSM at eps 0.03, targeted
//           attacks, 'wide' taps under the fit's neuron budget, memory-bounded batches of fitBatchSize
//           images, 100,000 candidates, k = 1), each timed here on a few images: activations per image,
//           each attack per image, and one screen of 400 clean vs 400 attacked rows at the full width.
//           A whole fit cannot run on this model: with random weights it predicts class 713 for every
//           input, so no other class has correctly classified images and targeted attacks no sources.
//   projection: per class = 400 activations + per family (400 attacks + 400 activations + one screen);
//           an ImageNet-size fit = 1,000 classes x that + classifying the 800,000 fit images once (every
//           pod does this), on one machine and on N pods (the classes split among them). A projection
//           from the stages, not a measured fit.
import { readFile } from 'node:fs/promises';

import * as ort from 'onnxruntime-node';

import { createAttack } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { defaultImagesPerClass, defaultScreenSettings } from '../src/bank/index.js';
import { FingerprintDetector } from '../src/detect/index.js';
import { fitBatchSize } from '../src/experiment/index.js';
import { screen } from '../src/index.js';
import {
  Classifier,
  defaultActivationBytes,
  neuronBudget,
  sampleOutputName,
  tapRead,
  tapRunRows,
} from '../src/model/index.js';
import { withExtraOutputs, withSampleGathers } from '../src/model/onnx.js';
import { SeededRandom } from '../src/random.js';
import { resnet50 } from './detect.js';
import type { ScaleFigure, ScaleSettings } from './scale.js';
import { syntheticBank } from './scale.js';

export interface ResnetScale {
  figures: ScaleFigure[];
  /** What each figure rests on, for the JSON and the table's notes. */
  details: {
    detect: {
      batch: number;
      runRows: number;
      wholeRunRows: number;
      neurons: number;
      bareS: number;
      detectS: number;
      /** Bare inference fetching the sampled layers whole, in the runs that needed. */
      wholeS: number;
      reps: number;
    };
    fit: {
      images: number;
      batch: number;
      neurons: number;
      activationS: number;
      attackS: Record<string, number>;
      forwardS: number;
      screenS: number;
      perClassS: number;
    };
    pods: number[];
  };
}

const eps = 0.03;
const families = ['pgd', 'fgsm'] as const;

function randomImages(rng: SeededRandom, rows: number, shape: number[]): { data: Float32Array; dims: number[] } {
  const per = shape.reduce((a, b) => a * b, 1);
  return { data: Float32Array.from({ length: rows * per }, () => rng.next()), dims: [rows, ...shape] };
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const out = await fn();
  return [(performance.now() - t0) / 1000, out];
}

/** detect() with the synthetic bank vs bare inference of the same runs, interleaved. */
async function detectOverhead(reps: number): Promise<ResnetScale['details']['detect']> {
  const batch = 32;
  const classifier = await Classifier.load(resnet50, { tapSeed: 1, batchSize: batch });
  const neurons = classifier.neurons;
  const settings: ScaleSettings = { classes: 1000, perClass: 2000, neurons, shards: 1 };
  const { bank } = syntheticBank(settings, {
    model: {
      sha256: classifier.sha256,
      source: classifier.source,
      inputShape: classifier.inputShape,
      classes: classifier.classes,
      inputRange: [0, 1],
    },
    taps: classifier.taps.map((t) => ({ tensor: t.tensor, size: t.size, ...(t.sample ? { sample: t.sample } : {}) })),
  });
  // Bare inference with the outputs detect() fetches: the whole unsampled taps and, gathered in the graph,
  // the sampled ones' samples, in runs of the same size. Also timed: the whole layers in the runs they
  // needed (what detect() fetched before the graph gathered the samples).
  const bytes = new Uint8Array(await readFile(resnet50));
  const sampled = classifier.taps.filter((t) => t.indices !== undefined);
  const wholeTaps = classifier.taps.filter((t) => t.indices === undefined).map((t) => t.tensor);
  const runRows = tapRunRows(classifier.taps, batch, true);
  const wholeRunRows = tapRunRows(classifier.taps, batch);
  const outputs = [classifier.logitsName, ...classifier.taps.map((t) => tapRead(t, true).output)];
  const wholeOutputs = [classifier.logitsName, ...classifier.taps.map((t) => t.tensor)];
  const extra = (names: string[]) => [...new Set(names)].filter((t) => t !== classifier.logitsName);
  const options = { executionProviders: ['cpu'], graphOptimizationLevel: 'all' } as const;
  const session = await ort.InferenceSession.create(
    withSampleGathers(
      bytes,
      extra(wholeTaps),
      sampled.map((t) => ({ tensor: t.tensor, output: sampleOutputName(t.tensor), indices: t.indices! })),
    ),
    options,
  );
  const wholeSession = await ort.InferenceSession.create(withExtraOutputs(bytes, extra(wholeOutputs)), options);
  await classifier.release();
  const images = randomImages(new SeededRandom(1), batch, classifier.inputShape);
  const per = images.data.length / batch;
  const feedsOf = (rows: number) =>
    Array.from({ length: Math.ceil(batch / rows) }, (_, i) => {
      const n = Math.min(rows, batch - i * rows);
      const data = images.data.subarray(i * rows * per, (i * rows + n) * per);
      return { [classifier.inputName]: new ort.Tensor('float32', data, [n, ...classifier.inputShape]) };
    });
  const feeds = feedsOf(runRows);
  const wholeFeeds = feedsOf(wholeRunRows);
  const detector = await FingerprintDetector.load({ model: resnet50, bank, threshold: 0, batchSize: batch });
  const bare = async () => {
    for (const f of feeds) await session.run(f, outputs);
  };
  const bareWhole = async () => {
    for (const f of wholeFeeds) await wholeSession.run(f, wholeOutputs);
  };
  let bareS = Number.POSITIVE_INFINITY;
  let detectS = Number.POSITIVE_INFINITY;
  let wholeS = Number.POSITIVE_INFINITY;
  try {
    await bare();
    await bareWhole();
    await detector.detect(images);
    for (let r = 0; r < reps; r++) {
      bareS = Math.min(bareS, (await timed(bare))[0]);
      detectS = Math.min(detectS, (await timed(() => detector.detect(images)))[0]);
      wholeS = Math.min(wholeS, (await timed(bareWhole))[0]);
    }
  } finally {
    await Promise.all([detector.release(), session.release(), wholeSession.release()]);
  }
  return { batch, runRows, wholeRunRows, neurons, bareS, detectS, wholeS, reps };
}

/** The per-image and per-class costs of a fit's stages at nfp fit's defaults. */
async function fitStages(images: number): Promise<ResnetScale['details']['fit']> {
  const screenRows = defaultImagesPerClass.clean + families.length * defaultImagesPerClass.attacked;
  const batch = fitBatchSize([3, 224, 224]);
  const model = await GradientModel.load(resnet50, {
    taps: 'default',
    neuronBudget: neuronBudget(screenRows, defaultActivationBytes),
    tapSeed: 1,
    batchSize: batch,
  });
  const rng = new SeededRandom(2);
  try {
    const x = randomImages(rng, images, model.classifier.inputShape);
    const neurons = model.classifier.neurons;
    await model.classifier.run(randomImages(rng, 1, model.classifier.inputShape));
    const [forwardS, out] = await timed(() => model.classifier.run(x, { activations: false }));
    const [activationS] = await timed(() => model.classifier.run(x));
    const labels = out.labels;
    const targets = labels.map((l) => (l + 1) % model.classes);
    const attackS: Record<string, number> = {};
    for (const name of families) {
      const attack = createAttack(name, { eps });
      const [s] = await timed(() => attack.run(model, x, { labels, targets, batchSize: batch, seed: 1 }));
      attackS[name] = s / images;
    }
    // One screen of a class and family at full size; timing does not depend on the values.
    const n0 = defaultImagesPerClass.clean;
    const n1 = defaultImagesPerClass.attacked;
    const C = defaultScreenSettings.candidates;
    const clean = Float32Array.from({ length: n0 * neurons }, () => rng.next());
    const attacked = Float32Array.from({ length: n1 * neurons }, () => rng.next());
    const candidates = Uint32Array.from({ length: C }, (_, i) => i % neurons);
    const [screenS] = await timed(() =>
      screen({ clean, cleanRows: n0, attacked, attackedRows: n1, neurons, candidates, k: 1 }),
    );
    const act = activationS / images;
    const perClassS =
      defaultImagesPerClass.clean * act +
      families.reduce((t, f) => t + defaultImagesPerClass.attacked * (attackS[f]! + act) + screenS, 0);
    return { images, batch, neurons, activationS: act, attackS, forwardS: forwardS / images, screenS, perClassS };
  } finally {
    await model.release();
  }
}

export async function benchResnetScale(options: {
  reps: number;
  fitImages: number;
  pods: number[];
}): Promise<ResnetScale> {
  process.stderr.write('scale: ResNet-50 detect() with the 1,000-class bank ...\n');
  const detect = await detectOverhead(options.reps);
  process.stderr.write(`scale: ResNet-50 fit stages on ${options.fitImages} images ...\n`);
  const fit = await fitStages(options.fitImages);
  const overhead = (detect.detectS / detect.bareS - 1) * 100;
  const classes = 1000;
  const fitImages = classes * (defaultImagesPerClass.clean + defaultImagesPerClass.attacked);
  const classifyH = (fitImages * fit.forwardS) / 3600;
  const hours = (pods: number) => (Math.ceil(classes / pods) * fit.perClassS) / 3600 + classifyH;
  const figures: ScaleFigure[] = [
    {
      name:
        `ResNet-50 batch ${detect.batch}: detect() overhead over bare ORT inference, 1,000-class bank ` +
        `(${detect.neurons.toLocaleString('en-US')} neurons, runs of ${detect.runRows}; bare ` +
        `${detect.bareS.toFixed(2)} s, detect ${detect.detectS.toFixed(2)} s)`,
      value: overhead,
      unit: '%',
      goal: 3,
      met: overhead <= 3,
    },
    {
      name:
        `ResNet-50 batch ${detect.batch}: bare ORT inference fetching the sampled layers whole (runs of ` +
        `${detect.wholeRunRows}), what detect() fetched before the graph gathered the samples, over the bare run above`,
      value: (detect.wholeS / detect.bareS - 1) * 100,
      unit: '%',
    },
    {
      name: `ResNet-50 fit: activations (wide taps, ${fit.neurons.toLocaleString('en-US')} neurons) per image`,
      value: fit.activationS,
      unit: 's',
    },
    ...families.map((f) => ({
      name: `ResNet-50 fit: ${f} (eps ${eps}, targeted, batch ${fit.batch}) per image`,
      value: fit.attackS[f]!,
      unit: 's',
    })),
    {
      name: `ResNet-50 fit: one screen, 400 clean vs 400 attacked rows, ${defaultScreenSettings.candidates.toLocaleString('en-US')} candidates`,
      value: fit.screenS,
      unit: 's',
    },
    {
      name: 'ResNet-50 fit per class (400 clean, 400 attacked per family, 2 families), from the stages',
      value: fit.perClassS / 60,
      unit: 'min',
    },
    ...options.pods.map((pods) => ({
      name:
        `PROJECTION: ImageNet-size fit (1,000 classes x 800 images) on ${pods === 1 ? 'this machine' : `${pods} pods like it`}` +
        ` (incl. ${classifyH.toFixed(1)} h classifying the fit data, in every pod)`,
      value: hours(pods),
      unit: 'h',
    })),
  ];
  return { figures, details: { detect, fit, pods: options.pods } };
}
