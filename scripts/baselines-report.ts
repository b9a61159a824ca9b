// Peer detectors side by side with the fingerprint detector on the committed models, on the same images
// (outside CI; tens of minutes per model on 2 cores):
//   npx tsx scripts/baselines-report.ts --banks <dir> [--models fmnist-cnn,fmnist-resnet,fmnist-vit]
//       [--baselines mahalanobis,lid,squeeze] [--cache <dir>] [--out <dir>]
// The splits of docs/results.md's full evaluation: the Fashion-MNIST test set's rows 0-5,999 fit, 6,000-7,999
// calibrate (5% FPR), 8,000-9,999 are held out. The fingerprint rows use the bank <banks>/<model>/confidence.nfp
// (fitted by nfp fit on rows 0-5,999 as docs/results.md says), recalibrated on 6,000-7,999 with and without the
// confidence term (seeded draws). The baselines fit on rows 0-5,999: their clean images and labels, and PGD and
// FGSM (eps 0.1, the bank's families) run untargeted on up to --fit-sources correctly classified ones per family.
// Held out: the correctly classified images of 8,000-9,999, and the successful adversarial images of PGD, FGSM
// and MI-FGSM (eps 0.1), DeepFool, CW-L2 and CW-L2 kappa 5 on up to --max-images of them (seed + attack index,
// as nfp evaluate). --cache keeps every attack's images as .npy, so a second run skips the attacks. Prints
// markdown tables; --out also writes <model>.json (the evaluateBaselines shape plus the fingerprint rows).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { createAttacks } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { baselineNames, evaluateBaselines } from '../src/baselines/index.js';
import type { BaselineEvaluation, BaselineName } from '../src/baselines/index.js';
import { gatherImages, loadFashionMnist, readNpy, writeNpy } from '../src/data/index.js';
import { FingerprintDetector, SeededDraws } from '../src/detect/index.js';
import { auc, rateAbove, tprAtFpr } from '../src/eval/index.js';
import type { ImageBatch } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../src/random.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'fmnist-cnn,fmnist-resnet,fmnist-vit' },
    banks: { type: 'string' },
    baselines: { type: 'string', default: baselineNames.join(',') },
    'max-images': { type: 'string', default: '500' },
    'fit-sources': { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    cache: { type: 'string' },
    out: { type: 'string' },
  },
});
const models = args.models.split(',');
const baselines = args.baselines.split(',').filter((b) => b !== '') as BaselineName[];
for (const b of baselines) if (!baselineNames.includes(b)) throw new Error(`unknown baseline ${b}`);
const maxImages = Number(args['max-images']);
const fitSources = Number(args['fit-sources']);
const seed = Number(args.seed);
const fpr = 0.05;

const test = loadFashionMnist({ split: 'test' });
const per = 784;
const rows = (a: number, b: number): ImageBatch => ({
  data: test.data.subarray(a * per, b * per),
  dims: [b - a, 1, 28, 28],
});
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** An attack's successful images, from the cache or by running it. */
async function attacked(
  key: string,
  run: () => Promise<{ images: ImageBatch; sources: number; seconds: number }>,
): Promise<{ images: ImageBatch; sources: number; seconds: number }> {
  const path = args.cache === undefined ? undefined : join(args.cache, `${key}.npy`);
  if (path !== undefined && existsSync(path)) {
    const npy = readNpy(path);
    const meta = JSON.parse(readFileSync(`${path}.json`, 'utf8')) as { sources: number; seconds: number };
    return { images: { data: npy.data as Float32Array, dims: npy.dims }, ...meta };
  }
  const result = await run();
  if (path !== undefined) {
    mkdirSync(dirname(path), { recursive: true });
    writeNpy(path, { dims: result.images.dims, data: result.images.data });
    writeFileSync(`${path}.json`, JSON.stringify({ sources: result.sources, seconds: result.seconds }));
  }
  return result;
}

interface DetectorRow {
  detector: string;
  fpr: number;
  fitSecondsPerImage: number | null;
  scoreSecondsPerImage: number;
  attacks: Array<{
    attack: string;
    adversarial: number;
    auc: number;
    tprAt1: number;
    tprAt5: number;
    tprAtThreshold: number;
  }>;
}

const markdown: string[] = [];
const summary: string[] = [];
for (const name of models) {
  const modelPath = join(packageRoot, 'models', `${name}.onnx`);
  const started = performance.now();
  // The model card's taps (the bank's), for the baselines; the attacks need no taps.
  const model = await GradientModel.load(modelPath, { batchSize: 128 });
  const attackModel = await GradientModel.load(modelPath, { taps: [], batchSize: 128 });

  const held = rows(8000, 10_000);
  const truth = test.labels.subarray(8000);
  const heldOut = await model.classifier.run(held);
  const correct = [...heldOut.labels.keys()].filter((i) => heldOut.labels[i] === truth[i]);
  const heldClean = gatherImages(held, correct);
  const sources = correct.slice(0, maxImages);
  const suite = [
    ...createAttacks(['pgd', 'fgsm', 'mifgsm', 'deepfool', 'cw'], { eps: 0.1 }),
    { ...createAttacks(['cw'], { kappa: 5 })[0]!, name: 'cw-kappa5' },
  ];
  const heldAttacked: Record<string, ImageBatch> = {};
  for (const [a, spec] of suite.entries()) {
    const set = await attacked(`${name}/held-${spec.name}`, async () => {
      const t0 = performance.now();
      log(`${name}: ${spec.name} on ${sources.length} held-out images`);
      const run = await spec.attack.run(attackModel, gatherImages(held, sources), {
        labels: Int32Array.from(sources, (i) => truth[i]!),
        seed: seed + a,
      });
      const hit = [...run.success.keys()].filter((i) => run.success[i]);
      return {
        images: gatherImages({ data: run.adv, dims: run.dims }, hit),
        sources: sources.length,
        seconds: (performance.now() - t0) / 1000,
      };
    });
    heldAttacked[spec.name] = set.images;
    log(`${name}: ${spec.name} ${set.images.dims[0]} adversarial of ${set.sources}`);
  }

  // The baselines' attacked fit images: the bank's families, untargeted, on correctly classified fit rows.
  const fitImages = rows(0, 6000);
  const fitLabels = test.labels.subarray(0, 6000);
  const fitOut = await model.classifier.run(fitImages);
  const fitCorrect = [...fitOut.labels.keys()].filter((i) => fitOut.labels[i] === fitLabels[i]);
  const rng = new SeededRandom(seed);
  for (let i = fitCorrect.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [fitCorrect[i], fitCorrect[j]] = [fitCorrect[j]!, fitCorrect[i]!];
  }
  const fitAttacked: Record<string, ImageBatch> = {};
  let fitAttackSeconds = 0;
  for (const [f, spec] of createAttacks(['pgd', 'fgsm'], { eps: 0.1 }).entries()) {
    const chosen = fitCorrect.slice(f * fitSources, (f + 1) * fitSources);
    const set = await attacked(`${name}/fit-${spec.name}`, async () => {
      const t0 = performance.now();
      log(`${name}: ${spec.name} on ${chosen.length} fit images`);
      const run = await spec.attack.run(attackModel, gatherImages(fitImages, chosen), {
        labels: Int32Array.from(chosen, (i) => fitLabels[i]!),
        seed: seed + 100 + f,
      });
      const hit = [...run.success.keys()].filter((i) => run.success[i]);
      return {
        images: gatherImages({ data: run.adv, dims: run.dims }, hit),
        sources: chosen.length,
        seconds: (performance.now() - t0) / 1000,
      };
    });
    fitAttacked[spec.name] = set.images;
    fitAttackSeconds += set.seconds;
  }

  const rowsOut: DetectorRow[] = [];
  let evaluation: BaselineEvaluation | undefined;
  if (baselines.length > 0) {
    evaluation = await evaluateBaselines({
      model,
      baselines,
      fit: { clean: { images: fitImages, labels: fitLabels }, attacked: fitAttacked },
      calibration: rows(6000, 8000),
      heldOut: { clean: heldClean, attacked: heldAttacked },
      fpr,
      onProgress: (b, stage, detail) => log(`${name}: ${b} ${stage}${detail ? ` ${detail}` : ''}`),
    });
    for (const b of evaluation.baselines)
      rowsOut.push({
        detector: b.name,
        fpr: b.fprAtThreshold,
        fitSecondsPerImage: b.cost.fitSecondsPerImage,
        scoreSecondsPerImage: b.cost.scoreSecondsPerImage,
        attacks: b.attacks,
      });
  }

  // The fingerprint detector on the same images, with and without the confidence term.
  if (args.banks !== undefined) {
    const bankPath = join(args.banks, name, 'confidence.nfp');
    const fitRecord = join(args.banks, name, 'fit.json');
    const bankFit = existsSync(fitRecord)
      ? (JSON.parse(readFileSync(fitRecord, 'utf8')) as { seconds: number; fitImages: number })
      : undefined;
    for (const confidence of [true, false]) {
      const detector = await FingerprintDetector.load({ model: modelPath, bank: bankPath, confidence, seed: 3 });
      await detector.calibrate(rows(6000, 8000), { fpr });
      const thresholds = Array.from({ length: model.classes }, (_, c) => detector.thresholdOf(c));
      let scored = 0;
      let seconds = 0;
      const margins = async (images: ImageBatch) => {
        const t0 = performance.now();
        const out = await detector.classifier.run(images);
        const s = await detector.scoreActivations(out.activations, out.labels, {
          logits: out.logits,
          draws: new SeededDraws(seed * 1_000_003),
        });
        seconds += (performance.now() - t0) / 1000;
        scored += out.rows;
        return Array.from(s.scores, (v, i) => v - thresholds[out.labels[i]!]!);
      };
      const clean = await margins(heldClean);
      const attacks = [];
      for (const [attack, images] of Object.entries(heldAttacked)) {
        const adv = await margins(images);
        attacks.push({
          attack,
          adversarial: adv.length,
          auc: auc(clean, adv),
          tprAt1: tprAtFpr(clean, adv, 0.01),
          tprAt5: tprAtFpr(clean, adv, 0.05),
          tprAtThreshold: rateAbove(adv, 0),
        });
      }
      rowsOut.push({
        detector: confidence ? 'fingerprints + confidence' : 'fingerprints',
        fpr: rateAbove(clean, 0),
        // nfp fit's wall time per fit row, its attacks included.
        fitSecondsPerImage: bankFit === undefined ? null : bankFit.seconds / bankFit.fitImages,
        scoreSecondsPerImage: seconds / scored,
        attacks,
      });
      await detector.release();
    }
  }
  await Promise.all([model.release(), attackModel.release()]);

  const fmt = (v: number, digits: number) => (Number.isFinite(v) ? v.toFixed(digits) : '-');
  const ms = (s: number | null) => (s === null ? '-' : (s * 1000).toFixed(s * 1000 < 10 ? 2 : 1));
  markdown.push(
    `### ${name}`,
    '',
    `Held out: ${heldClean.dims[0]} correctly classified clean images; fit: 6,000 clean images, ` +
      Object.entries(fitAttacked)
        .map(([f, s]) => `${s.dims[0]} ${f}`)
        .join(' + ') +
      ` attacked (${fitAttackSeconds.toFixed(0)} s of attacks); ${((performance.now() - started) / 1000).toFixed(0)} s.`,
    '',
    '| detector | attack | adversarial | AUC | TPR at 1% FPR | TPR at 5% FPR | TPR at threshold | measured FPR | fit ms/image | score ms/image |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const r of rowsOut)
    for (const a of r.attacks)
      markdown.push(
        `| ${r.detector} | ${a.attack} | ${a.adversarial} | ${fmt(a.auc, 4)} | ${fmt(a.tprAt1, 3)} | ${fmt(a.tprAt5, 3)} | ` +
          `${fmt(a.tprAtThreshold, 3)} | ${fmt(r.fpr, 3)} | ${ms(r.fitSecondsPerImage)} | ${ms(r.scoreSecondsPerImage)} |`,
      );
  markdown.push('');
  if (summary.length === 0)
    summary.push(
      `| model | detector | FPR | ${suite.map((s) => s.name).join(' | ')} | fit ms/image | score ms/image |`,
      `|---|---|---|${suite.map(() => '---|').join('')}---|---|`,
    );
  for (const r of rowsOut)
    summary.push(
      `| ${name} | ${r.detector} | ${fmt(r.fpr, 3)} | ${r.attacks.map((a) => `${fmt(a.auc, 4)} (${fmt(a.tprAt5, 3)})`).join(' | ')} | ` +
        `${ms(r.fitSecondsPerImage)} | ${ms(r.scoreSecondsPerImage)} |`,
    );
  if (args.out !== undefined) {
    mkdirSync(args.out, { recursive: true });
    writeFileSync(
      join(args.out, `${name}.json`),
      `${JSON.stringify({ model: name, fitAttackSeconds, baselines: evaluation, detectors: rowsOut }, null, 2)}\n`,
    );
  }
  log(`${name}: done`);
}
const text = ['## AUC (TPR at 5% FPR) per attack', '', ...summary, '', '## Every figure', '', ...markdown].join('\n');
console.log(text);
if (args.out !== undefined) writeFileSync(join(args.out, 'baselines.md'), `${text}\n`);
