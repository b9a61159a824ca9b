// Offline experiments on the minimal-perturbation gap (outside CI; minutes per model), on the images
// scripts/baselines-report.ts cached and the banks it read:
//   npx tsx scripts/gap-experiments.ts --banks <dir> --cache <dir> [--models fmnist-cnn,fmnist-resnet,fmnist-vit]
// Each bank (<banks>/<model>/confidence.nfp) is recalibrated with the confidence term on rows 6,000-7,999 of
// the Fashion-MNIST test set (seeded draws); every image gets its standardized statistics (one z per attack
// family, one for the logit margin, as the library's confidence term) and, for the rules that use it, the
// feature-squeezing statistic (max L1 between softmax outputs, 1-bit depth and 2x2 median) standardized the
// same way (per predicted class, median and upper-tail spread of the clean calibration images). Rules:
//   largest z                      the library's confidence term
//   fingerprint z alone            the largest family z
//   largest z + squeezing z        the squeezing statistic as one more z
//   per-family calibration         each term shifted by its own per-class threshold for 5% / (terms) FPR on the
//                                  calibration images, then the largest (a Bonferroni split of the FPR)
//   largest z + Mahalanobis z      the Mahalanobis baseline without input pre-processing (eps 0: one forward
//                                  pass with the bank's taps, which the detector runs anyway), fitted on the
//                                  fit rows as scripts/baselines-report.ts fits it, as one more z
//   regression on z                a logistic regression over (family z..., margin z), fitted on the fit rows:
//                                  correctly classified clean images of 0-5,999 against the cached PGD and
//                                  FGSM images of them (the bank's families), cross-validated as the baselines'
//   regression on family z, margin the same regression over the family z's only, standardized per class on the
//                                  calibration images, then the larger of it and the margin z
// Each rule gets per-class thresholds for 5% FPR on the calibration rows (5 draws per image); held out: the
// correctly classified images of 8,000-9,999 and the cached adversarial images, scored over 3 draws. Prints
// per model a markdown table: measured FPR and, per attack, AUC (TPR at 5% FPR).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { GradientModel } from '../src/autodiff/index.js';
import {
  FeatureSqueezingDetector,
  MahalanobisDetector,
  decisionFunction,
  fitLogisticCV,
} from '../src/baselines/index.js';
import { gatherImages, loadFashionMnist, readNpy } from '../src/data/index.js';
import { FingerprintDetector, SeededDraws, standardizedStatistics, thresholdFor } from '../src/detect/index.js';
import type { ImageBatch } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../src/random.js';
import { heldOutSets, printRuleTable } from './gap-rules.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'fmnist-cnn,fmnist-resnet,fmnist-vit' },
    banks: { type: 'string' },
    cache: { type: 'string' },
  },
});
if (args.banks === undefined || args.cache === undefined)
  throw new Error('--banks <dir> and --cache <dir> are required');
const attacks = ['pgd', 'fgsm', 'mifgsm', 'deepfool', 'cw', 'cw-kappa5'];
const test = loadFashionMnist({ split: 'test' });
const rows = (a: number, b: number): ImageBatch => ({
  data: test.data.subarray(a * 784, b * 784),
  dims: [b - a, 1, 28, 28],
});
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const Z95 = 1.6448536269514722;

/** One scored image under one draw: its predicted class, the statistics' z, the squeezing and Mahalanobis scores. */
interface Scored {
  label: number;
  z: number[];
  squeeze: number;
  mahalanobis: number;
}

function centerScale(values: number[]): [number, number] {
  const s = Float64Array.from(values).sort();
  const q = (p: number) => {
    const at = p * (s.length - 1);
    const lo = Math.floor(at);
    const hi = Math.min(s.length - 1, lo + 1);
    return s[lo]! + (at - lo) * (s[hi]! - s[lo]!);
  };
  return [q(0.5), Math.max((q(0.95) - q(0.5)) / Z95, 1e-9)];
}

/** Per class center and scale of a statistic on clean calibration images (all classes' for a class under 200). */
function standardizer(set: Scored[], value: (s: Scored) => number, classes: number): (s: Scored) => number {
  const all = centerScale(set.map(value));
  const per = Array.from({ length: classes }, (_, c) => {
    const v = set.filter((s) => s.label === c).map(value);
    return v.length >= 200 ? centerScale(v) : all;
  });
  return (s) => (value(s) - per[s.label]![0]) / per[s.label]![1];
}

for (const name of args.models.split(',')) {
  const modelPath = join(packageRoot, 'models', `${name}.onnx`);
  const cached = (key: string): ImageBatch => {
    const path = join(args.cache!, name, `${key}.npy`);
    if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/baselines-report.ts --cache first`);
    const npy = readNpy(path);
    return { data: npy.data as Float32Array, dims: npy.dims };
  };
  const detector = await FingerprintDetector.load({
    model: modelPath,
    bank: join(args.banks, name, 'confidence.nfp'),
    confidence: true,
    seed: 3,
  });
  await detector.calibrate(rows(6000, 8000));
  const cal = detector.bank.header.calibration!.confidence!;
  const families = detector.bank.families;
  const classes = detector.classifier.classes;
  const model = await GradientModel.load(modelPath, { taps: [], batchSize: 128 });
  const squeezer = new FeatureSqueezingDetector(model);
  await squeezer.fit({ clean: { images: rows(0, 0), labels: new Int32Array(0) }, attacked: {} });
  const tapped = await GradientModel.load(modelPath, { batchSize: 128 });
  const mahalanobis = new MahalanobisDetector(tapped, { magnitudes: [0] });
  await mahalanobis.fit({
    clean: { images: rows(0, 6000), labels: test.labels.subarray(0, 6000) },
    attacked: { pgd: cached('fit-pgd'), fgsm: cached('fit-fgsm') },
  });
  let drawSeed = 11;

  const score = async (images: ImageBatch, draws: number): Promise<Scored[]> => {
    const out = await detector.classifier.run(images);
    const squeeze = await squeezer.score(images);
    const maha = await mahalanobis.score(images);
    const scored: Scored[] = [];
    for (let d = 0; d < draws; d++) {
      const s = await detector.scoreActivations(out.activations, out.labels, {
        logits: out.logits,
        draws: new SeededDraws(drawSeed++),
      });
      out.labels.forEach((c, i) => {
        const z = standardizedStatistics(
          cal,
          c,
          s.familySums!.subarray(i * families, (i + 1) * families),
          s.confidence![i]!,
        );
        scored.push({ label: c, z, squeeze: squeeze[i]!, mahalanobis: maha[i]! });
      });
    }
    return scored;
  };

  log(`${name}: calibration, fit and held-out statistics`);
  const calibration = await score(rows(6000, 8000), 5);
  const fitImages = rows(0, 6000);
  const fitOut = await detector.classifier.run(fitImages);
  const fitCorrect = [...fitOut.labels.keys()].filter((i) => fitOut.labels[i] === test.labels[i]);
  const rng = new SeededRandom(5);
  const fitClean = await score(
    gatherImages(
      fitImages,
      fitCorrect.filter(() => rng.next() < 2000 / fitCorrect.length),
    ),
    1,
  );
  const fitAttacked = [...(await score(cached('fit-pgd'), 1)), ...(await score(cached('fit-fgsm'), 1))];
  const { clean, attacked } = await heldOutSets(
    score,
    detector.classifier,
    { images: rows(8000, 10_000), truth: test.labels.subarray(8000) },
    attacks,
    (a) => cached(`held-${a}`),
  );

  // The regressions on the fit rows.
  const matrix = (set: Scored[], cols: number) => ({
    data: Float64Array.from(set.flatMap((s) => s.z.slice(0, cols))),
    rows: set.length,
    cols,
  });
  const y = Uint8Array.from([...fitClean.map(() => 0), ...fitAttacked.map(() => 1)]);
  const withMargin = fitLogisticCV(matrix([...fitClean, ...fitAttacked], families + 1), y);
  const familyOnly = fitLogisticCV(matrix([...fitClean, ...fitAttacked], families), y);
  const logOdds = (model: typeof withMargin, cols: number) => (s: Scored) =>
    decisionFunction(model, { data: Float64Array.from(s.z.slice(0, cols)), rows: 1, cols })[0]!;
  const zSqueeze = standardizer(calibration, (s) => s.squeeze, classes);
  const zMahalanobis = standardizer(calibration, (s) => s.mahalanobis, classes);
  const zFamilyRegression = standardizer(calibration, logOdds(familyOnly, families), classes);
  const margin = (s: Scored) => s.z[families]!;
  // Per-family calibration: each term (family z's, margin z) shifted by its own per-class quantile on the
  // calibration images at 5% / (terms) FPR, so each term alone flags about its share of the clean images.
  const terms = families + 1;
  const termCut = Array.from({ length: classes }, (_, c) => {
    const own = calibration.filter((s) => s.label === c);
    return Array.from({ length: terms }, (_, t) =>
      thresholdFor(
        own.map((s) => s.z[t]!),
        0.05 / terms,
      ),
    );
  });
  const perFamily = (s: Scored) => Math.max(...s.z.map((v, t) => v - termCut[s.label]![t]!));
  const rules: Array<[string, (s: Scored) => number]> = [
    ["largest z (the library's)", (s) => Math.max(...s.z)],
    ['fingerprint z alone', (s) => Math.max(...s.z.slice(0, families))],
    ['largest z + squeezing z', (s) => Math.max(...s.z, zSqueeze(s))],
    ['per-family calibration (each term at 5% / terms FPR)', perFamily],
    ['largest z + Mahalanobis z', (s) => Math.max(...s.z, zMahalanobis(s))],
    ['largest z + Mahalanobis z + squeezing z', (s) => Math.max(...s.z, zMahalanobis(s), zSqueeze(s))],
    ['regression on (family z, margin z)', logOdds(withMargin, families + 1)],
    ['max(regression on family z, margin z)', (s) => Math.max(zFamilyRegression(s), margin(s))],
    [
      'max(regression on family z, margin z, squeezing z)',
      (s) => Math.max(zFamilyRegression(s), margin(s), zSqueeze(s)),
    ],
  ];
  console.log(`\n### ${name}\n`);
  console.log(
    `regression on (family z, margin z): C ${withMargin.C.toPrecision(3)}, weights ` +
      `[${Array.from(withMargin.weights, (w) => w.toFixed(3)).join(', ')}]; on family z: C ${familyOnly.C.toPrecision(3)}, ` +
      `weights [${Array.from(familyOnly.weights, (w) => w.toFixed(3)).join(', ')}]\n`,
  );
  printRuleTable(rules, classes, { calibration, clean, attacked }, attacks);
  await Promise.all([detector.release(), model.release(), tapped.release()]);
  log(`${name}: done`);
}
