// The demo: the whole loop on the shipped Fashion-MNIST test set and the committed CNN. A bank is
// fitted on the first images (PGD and FGSM families, the model card's taps), calibrated on the next
// ones, and evaluated on the rest against the attack suite. `quick` is a tiny version (the CI smoke
// test, not a result); `confidence` adds the logit-margin confidence term and, to test it, the
// attack built to defeat it (CW-L2 with a margin kappa near the median clean margin).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { CarliniWagnerL2, DeepFool, FGSM, MIFGSM, PGD } from '../attacks/index.js';
import { writeBank } from '../bank/index.js';
import type { BuildProgress } from '../bank/index.js';
import { loadFashionMnist, tensorDigest } from '../data/index.js';
import type { EvaluationAttack } from '../eval/index.js';
import { packageRoot } from '../paths.js';
import { fitExperiment } from './fit.js';
import { evaluateExperiment } from './evaluate.js';
import { evaluationSummary } from './summary.js';
import type { EvaluationSummary } from './summary.js';

export interface DemoOptions {
  out: string;
  quick?: boolean;
  seed: number;
  confidence?: boolean;
  /** What the report says produced it. */
  command: string;
  onProgress?: (stage: string, done: number, total: number) => void;
  onFitProgress?: (progress: BuildProgress) => void;
  /** The steps, for people. */
  say?: (line: string) => void;
}

export interface DemoResult extends EvaluationSummary {
  report: string;
  html: string;
  metrics: string;
  bank: string;
  seconds: number;
}

interface DemoSize {
  fit: number;
  calibrate: number;
  perClass: number;
  candidates: number;
  pgdSteps: number;
  evalImages: number;
  detectors: number;
  taps: 'default' | string[];
  attacks: () => EvaluationAttack[];
  cw: { steps: number; binarySteps: number };
}

const eps = 0.1;
/** CW's margin in the adaptive attack on the confidence term: about the CNN's median clean logit margin (5.8). */
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
    taps: 'default',
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
    cw: { steps: 50, binarySteps: 3 },
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
    cw: { steps: 10, binarySteps: 1 },
  },
};

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const size = sizes[options.quick === true ? 'quick' : 'full'];
  const say = options.say ?? (() => {});
  const started = performance.now();
  const model = join(packageRoot, 'models', 'fmnist-cnn.onnx');
  const test = loadFashionMnist({ split: 'test' });
  const data = {
    images: test,
    labels: test.labels,
    source: 'fashion-mnist t10k',
    digest: tensorDigest(test.data),
    total: 10_000,
  };
  const held = size.fit + size.calibrate;
  mkdirSync(options.out, { recursive: true });

  say(
    `1/3 fitting a bank on test images 0-${size.fit} (PGD and FGSM at eps ${eps}), ` +
      `calibrating it on ${size.fit}-${held} ...`,
  );
  // A PGD and an FGSM family, single-neuron fingerprints (the library's default k): the configuration
  // that measured best on every committed model (docs/results.md).
  const { bank } = await fitExperiment({
    model,
    data: {
      ...data,
      images: { data: test.data.subarray(0, held * 784), dims: [held, 1, 28, 28] },
      labels: test.labels.subarray(0, held),
    },
    attacks: ['pgd', 'fgsm'],
    attack: { eps, steps: size.pgdSteps },
    taps: size.taps,
    screen: { candidates: size.candidates },
    cleanPerClass: size.perClass,
    attackedPerClass: size.perClass,
    attackMode: 'untargeted',
    calibrateShare: size.calibrate / held,
    fpr: 0.05,
    draws: 25,
    confidence: options.confidence === true,
    seed: options.seed,
    ...(options.onFitProgress ? { onProgress: options.onFitProgress } : {}),
    onMessage: say,
  });
  const adaptive: EvaluationAttack = {
    name: `cw-kappa${adaptiveKappa}`,
    attack: new CarliniWagnerL2({ ...size.cw, kappa: adaptiveKappa }),
    settings: { ...size.cw, kappa: adaptiveKappa },
  };
  say(`2/3 attacking up to ${size.evalImages} held-out images (${held}-10000) and evaluating ...`);
  const evaluated = await evaluateExperiment({
    model,
    banks: [{ bank, label: 'bank.nfp' }],
    data,
    attackSpecs: [...size.attacks(), ...(options.confidence === true ? [adaptive] : [])],
    detectors: size.detectors,
    maxImages: size.evalImages,
    seed: options.seed,
    report: options.out,
    command: options.command,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const bankPath = join(options.out, 'bank.nfp');
  say('3/3 writing the report and the bank ...');
  writeBank(bankPath, bank);
  const report = evaluated.reports[0]!;
  return {
    report: report.report,
    html: report.html,
    metrics: report.metrics,
    bank: bankPath,
    ...evaluationSummary(evaluated.evaluations[0]!),
    seconds: (performance.now() - started) / 1000,
  };
}
