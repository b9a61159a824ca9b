// `nfp demo`: the whole loop on the shipped Fashion-MNIST test set and the committed CNN, in one
// command: fit a bank on the first images (PGD and FGSM families), calibrate it on the next ones, attack the
// rest with the suite, and write the evaluation report. --quick runs a tiny version (the CI smoke test).
// --confidence adds the logit-margin confidence term and, to test it, the attack built to defeat it
// (CW-L2 with a confidence margin kappa near the median clean margin).
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

import type { Command } from 'commander';

import { CarliniWagnerL2, DeepFool, FGSM, MIFGSM, PGD } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { buildBank, writeBank } from '../bank/index.js';
import { loadFashionMnist, tensorDigest } from '../data/index.js';
import { FingerprintDetector } from '../detect/index.js';
import { evaluate, writeReport } from '../eval/index.js';
import type { EvaluationAttack } from '../eval/index.js';
import { packageRoot } from '../paths.js';
import { parseInteger } from './parse.js';
import { ProgressBar } from './progress.js';
import { significant } from './table.js';

interface DemoSize {
  fit: number;
  calibrate: number;
  perClass: number;
  candidates: number;
  pgdSteps: number;
  evalImages: number;
  detectors: number;
  taps: 'card' | string[];
  attacks: () => EvaluationAttack[];
}

const eps = 0.1;
/** CW's confidence margin in the adaptive attack on the confidence term: about the committed CNN's median clean logit
 * margin (5.8). */
const adaptiveKappa = 5;
const sizes: Record<'full' | 'quick', DemoSize> = {
  full: {
    fit: 6000,
    calibrate: 2000,
    perClass: 300,
    candidates: 100_000,
    pgdSteps: 20,
    evalImages: 500,
    detectors: 100,
    taps: 'card',
    attacks: () => [
      { name: 'pgd', attack: new PGD({ eps, steps: 20 }), settings: { eps, steps: 20 } },
      { name: 'fgsm', attack: new FGSM({ eps }), settings: { eps } },
      { name: 'mifgsm', attack: new MIFGSM({ eps }), settings: { eps } },
      { name: 'deepfool', attack: new DeepFool(), settings: {} },
      {
        name: 'cw',
        attack: new CarliniWagnerL2({ steps: 50, binarySteps: 3 }),
        settings: { steps: 50, binarySteps: 3 },
      },
    ],
  },
  quick: {
    fit: 1500,
    calibrate: 500,
    perClass: 40,
    candidates: 2000,
    pgdSteps: 3,
    evalImages: 60,
    detectors: 10,
    taps: ['/features/pool3/MaxPool_output_0', '/classifier/relu/Relu_output_0', 'logits'],
    attacks: () => [
      { name: 'pgd', attack: new PGD({ eps, steps: 5 }), settings: { eps, steps: 5 } },
      { name: 'fgsm', attack: new FGSM({ eps }), settings: { eps } },
    ],
  },
};

/** CW-L2 pushed past the decision boundary by kappa, so its logit margin looks like a clean image's. */
function adaptiveCw(size: DemoSize): EvaluationAttack {
  const steps = size === sizes.quick ? 10 : 50,
    binarySteps = size === sizes.quick ? 1 : 3;
  return {
    name: `cw-kappa${adaptiveKappa}`,
    attack: new CarliniWagnerL2({ steps, binarySteps, kappa: adaptiveKappa }),
    settings: { steps, binarySteps, kappa: adaptiveKappa },
  };
}

export function registerDemoCommand(program: Command): Command {
  return program
    .command('demo')
    .description(
      'fit, calibrate and evaluate a detector for the committed Fashion-MNIST CNN on the shipped data (about 3 ' +
        'minutes on 2 cores)',
    )
    .option('--out <dir>', 'where the bank and the report go', 'nfp-demo')
    .option('--quick', 'a tiny version that finishes in seconds (a smoke test, not a result)')
    .option('--seed <n>', 'seed of the fit, the attacks and the evaluation', parseInteger, 1)
    .option(
      '--confidence',
      'add the logit-margin confidence term to the detector, and CW-L2 with kappa 5 (built to defeat it) to the ' +
        'attacks',
    )
    .addHelpText('after', '\nExample:\n  $ npx nfp demo && open nfp-demo/report.html\n')
    .action(async (options: { out: string; quick?: boolean; seed: number; confidence?: boolean }) => {
      await demoCommand(options);
    });
}

export async function demoCommand(options: {
  out: string;
  quick?: boolean;
  seed: number;
  confidence?: boolean;
}): Promise<void> {
  const size = sizes[options.quick === true ? 'quick' : 'full'];
  const started = performance.now();
  const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
  const card = JSON.parse(readFileSync(join(packageRoot, 'models', 'fmnist-cnn.json'), 'utf8')) as {
    detectorTaps: { tensors: string[] };
  };
  const taps = size.taps === 'card' ? card.detectorTaps.tensors : size.taps;
  const test = await loadFashionMnist({ split: 'test' });
  const rows = (from: number, to: number) => ({
    data: test.data.subarray(from * 784, to * 784),
    dims: [to - from, 1, 28, 28],
  });
  const say = (text: string) => process.stderr.write(`${text}\n`);

  say(`1/3 fitting a bank on test images 0-${size.fit} (${taps.length} taps, PGD and FGSM at eps ${eps}) ...`);
  const model = await GradientModel.load(modelPath, { taps, batchSize: 128 });
  let bar: ProgressBar | undefined;
  const bank = await buildBank({
    model,
    images: rows(0, size.fit),
    labels: test.labels.subarray(0, size.fit),
    // A PGD and an FGSM family, single-neuron fingerprints (the library's default k): the configuration
    // that measured best on every committed model (docs/results.md).
    families: [
      { name: 'pgd', attack: new PGD({ eps, steps: size.pgdSteps }), settings: { eps, steps: size.pgdSteps } },
      { name: 'fgsm', attack: new FGSM({ eps }), settings: { eps } },
    ],
    cleanPerClass: size.perClass,
    attackedPerClass: size.perClass,
    attackMode: 'untargeted',
    screen: { candidates: size.candidates },
    seed: options.seed,
    data: {
      source: 'fashion-mnist t10k',
      sha256: tensorDigest(test.data),
      images: test.labels.length,
      fit: [0, size.fit],
      calibration: [size.fit, size.fit + size.calibrate],
    },
    onProgress: (p) => {
      if (p.stage === 'attack' && p.total !== undefined) {
        bar ??= new ProgressBar('attacking', p.total);
        bar.update(p.done ?? 0);
      } else if (p.stage === 'clean' && bar !== undefined) {
        bar.done();
        bar = new ProgressBar('screening classes', p.classesTotal);
      } else if (p.stage === 'done') bar?.update(p.classesDone);
    },
  });
  bar?.done();
  await model.release();

  say(`2/3 calibrating for a 5% false-positive rate on test images ${size.fit}-${size.fit + size.calibrate} ...`);
  const confidence = options.confidence === true;
  const detector = await FingerprintDetector.load({ model: modelPath, bank, draws: 25, confidence });
  const attackModel = await GradientModel.load(modelPath, { taps: [], batchSize: 128 });
  try {
    await detector.calibrate(rows(size.fit, size.fit + size.calibrate), { fpr: 0.05 });
    const bankPath = join(options.out, 'bank.nfp');
    const held = size.fit + size.calibrate;
    say(`3/3 attacking up to ${size.evalImages} held-out images (${held}-10000) and evaluating ...`);
    const bars = new Map<string, ProgressBar>();
    const evaluation = await evaluate({
      detector,
      attackModel,
      images: rows(held, 10000),
      labels: test.labels.subarray(held),
      attacks: [...size.attacks(), ...(confidence ? [adaptiveCw(size)] : [])],
      detectors: size.detectors,
      maxSources: size.evalImages,
      seed: options.seed,
      onProgress: (stage, done, total) => {
        const b = bars.get(stage) ?? new ProgressBar(stage, total);
        bars.set(stage, b);
        b.update(done);
        if (done >= total) b.done();
      },
    });
    const paths = await writeReport(options.out, evaluation, {
      command: `nfp demo${options.quick ? ' --quick' : ''}${confidence ? ' --confidence' : ''} --seed ${options.seed}`,
      machine: `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`,
      split:
        `Fashion-MNIST test set (shipped): rows ` +
        `0-${size.fit} fitted the bank, ${size.fit}-${held} calibrated it, ${held}-10000 evaluated`,
    });
    writeBank(bankPath, detector.bank);
    const seconds = (performance.now() - started) / 1000;
    say(`\nreport: ${paths.html}\n        ${paths.markdown}\nbank:   ${bankPath}\n(${seconds.toFixed(0)} s)`);
    process.stdout.write(
      `${JSON.stringify({
        report: paths.markdown,
        html: paths.html,
        metrics: paths.metrics,
        bank: bankPath,
        cleanFpr: significant(evaluation.clean.fprAtThreshold, 4),
        attacks: evaluation.attacks.map((a) => ({
          attack: a.attack,
          auc: significant(a.auc, 4),
          tprAt5: significant(a.tprAt5, 4),
          tprAtThreshold: significant(a.tprAtThreshold, 4),
        })),
        seconds: significant(seconds, 4),
      })}\n`,
    );
  } finally {
    await Promise.all([detector.release(), attackModel.release()]);
  }
}
