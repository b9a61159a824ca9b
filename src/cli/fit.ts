// `nfp fit`: builds a fingerprint bank for a model from a labelled dataset (clean images, attacked
// images per attack family), calibrates it on a held-out share of the data, and writes the .nfp file.
// `--classes` fits a shard; `nfp bank merge` joins shards and `nfp bank calibrate` calibrates the result.
import { basename } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';

import { attackNames, boundedAttacks, createAttacks } from '../attacks/index.js';
import type { AttackName, Norm } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { buildBank, defaultScreenSettings, writeBank } from '../bank/index.js';
import type { AttackFamily } from '../bank/index.js';
import { loadLabelFile, loadTensorFile, tensorDigest } from '../data/index.js';
import type { ImageBatch, Layout, TapSpec } from '../model/index.js';
import { FingerprintDetector } from '../detect/index.js';
import { fitDefaults, requireModel } from './check.js';
import { ProgressBar } from './progress.js';
import {
  parseAttackList,
  parseClasses,
  parseInteger,
  parseNonNegative,
  parsePositive,
  parsePositiveInt,
  parseShare,
  parseTaps,
  layoutOption,
} from './parse.js';

export interface FitOptions {
  model: string;
  layout?: Layout;
  data: string;
  labels?: string;
  attacks: AttackName[];
  eps?: number;
  norm?: Norm;
  steps?: number;
  kappa?: number;
  taps?: TapSpec;
  k: number;
  candidates: number;
  top: number;
  cleanPerClass: number;
  attackedPerClass: number;
  attackMode: 'untargeted' | 'targeted' | 'mixed';
  classes?: number[];
  calibrateShare: number;
  fpr: number;
  draws: number;
  confidence?: boolean;
  limit?: number;
  seed?: number;
  out: string;
}

export function registerFitCommand(program: Command): Command {
  return program
    .command('fit')
    .description('build a fingerprint bank for a model from labelled images, calibrate it, and write it (.nfp)')
    .requiredOption('--model <model>', 'an ONNX image classifier')
    .requiredOption(
      '--data <path>',
      'labelled images: an IDX file with its labels beside it, a .npy tensor (with --labels) or a folder of class ' +
        'folders',
    )
    .option('--labels <path>', 'labels for --data (.npy or IDX)')
    .option(
      '--attacks <names>',
      `attack families, comma-separated (${attackNames.join(', ')}); default pgd,fgsm`,
      parseAttackList,
      ['pgd', 'fgsm'] as AttackName[],
    )
    .option('--eps <e>', 'perturbation bound of the bounded attacks', parsePositive)
    .addOption(new Option('--norm <norm>', "the attacks' norm").choices(['linf', 'l2']))
    .option('--steps <n>', 'attack iterations (defaults per attack)', parsePositiveInt)
    .option('--kappa <k>', 'cw: confidence margin past the decision boundary (default 0)', parseNonNegative)
    .option(
      '--taps <auto|names>',
      "tapped layers: 'auto' or comma-separated node/tensor names (see nfp layers)",
      parseTaps,
    )
    .option('--k <n>', 'neurons per fingerprint', parsePositiveInt, defaultScreenSettings.k)
    .option('--candidates <n>', 'random subsets screened per class', parsePositiveInt, defaultScreenSettings.candidates)
    .option('--top <n>', 'fingerprints kept per class', parsePositiveInt, defaultScreenSettings.topK)
    .option('--clean-per-class <n>', 'clean images per class', parsePositiveInt, 400)
    .option('--attacked-per-class <n>', 'attacked images per class and family', parsePositiveInt, 400)
    .addOption(
      new Option('--attack-mode <mode>', 'where attacked images of a class come from')
        .choices(['untargeted', 'targeted', 'mixed'])
        .default('mixed'),
    )
    .option('--classes <list>', "fit only these classes (a shard), e.g. '0-4' or '1,3,5'", parseClasses)
    .option('--calibrate-share <s>', 'share of the data held out to calibrate the threshold (0: none)', parseShare, 0.2)
    .option('--fpr <rate>', 'target false-positive rate of the calibrated threshold', parseShare, 0.05)
    .option('--draws <n>', 'fingerprints drawn per input', parsePositiveInt, 25)
    .option(
      '--confidence',
      'calibrate for fingerprints plus the logit-margin confidence term (catches CW-L2 and DeepFool)',
    )
    .option('--limit <n>', 'only the first n images', parsePositiveInt)
    .option('--seed <n>', 'reproducible fit', parseInteger)
    .addOption(layoutOption())
    .requiredOption('--out <bank.nfp>', 'where to write the bank')
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  $ nfp fit --model models/fmnist-cnn.onnx --data data/fashion-mnist/t10k-images-idx3-ubyte.gz --limit ' +
          '7500 \\',
        '      --attacks pgd,fgsm --eps 0.1 --taps ' +
          '/features/pool3/MaxPool_output_0,/classifier/relu/Relu_output_0,logits --confidence --out bank.nfp',
        '  $ nfp fit ... --classes 0-4 --out shard-a.nfp && nfp fit ... --classes 5-9 --out shard-b.nfp',
        '  $ nfp bank merge shard-a.nfp shard-b.nfp --out bank.nfp && nfp bank calibrate --model m.onnx --bank ' +
          'bank.nfp --data held-out/ --out bank.nfp\n',
      ].join('\n'),
    )
    .action(async (options: FitOptions, command: Command) => {
      await fitCommand(options, (message) => command.error(`error: ${message}`, { exitCode: 2, code: 'nfp.usage' }));
    });
}

export async function fitCommand(options: FitOptions, usage: (message: string) => never): Promise<void> {
  const bounded = options.attacks.filter((a) => boundedAttacks.includes(a));
  if (bounded.length > 0 && options.eps === undefined) usage(`--attacks ${bounded.join(',')} need --eps`);
  if (!options.out.endsWith('.nfp')) usage(`Expected a .nfp path for --out but received ${options.out}`);
  // The model first: one that cannot be fitted stops here, with every reason, before any data is read.
  const checked = await requireModel(options.model, 'fit', {
    ...(options.layout ? { layout: options.layout } : {}),
    fit: { ...fitDefaults, families: options.attacks.length },
  });
  const tensor = await loadTensorFile(options.data, { layout: checked.input!.layout });
  const labels = options.labels !== undefined ? loadLabelFile(options.labels) : tensor.labels;
  if (labels === undefined) usage('--data carries no labels: pass --labels');
  let rows = tensor.dims[0]!;
  if (options.limit !== undefined) rows = Math.min(rows, options.limit);
  if (labels.length < rows) usage(`--labels has ${labels.length} labels but --data has ${rows} images`);
  const per = tensor.data.length / tensor.dims[0]!;
  // The calibration share is the tail of the data, so the fit never sees it.
  const calibrateRows = options.classes === undefined ? Math.floor(rows * options.calibrateShare) : 0;
  const fitRows = rows - calibrateRows;
  const fitImages: ImageBatch = {
    data: tensor.data.subarray(0, fitRows * per),
    dims: [fitRows, ...tensor.dims.slice(1)],
  };
  const families: AttackFamily[] = createAttacks(options.attacks, {
    eps: options.eps,
    norm: options.norm,
    steps: options.steps,
    ...(options.kappa !== undefined ? { kappa: options.kappa } : {}),
  }).map(({ name, attack, settings }) => ({ name, attack, settings: { ...settings } }));
  const model = await GradientModel.load(options.model, {
    taps: options.taps ?? 'auto',
    inputShape: tensor.dims.slice(1),
    batchSize: 128,
    ...(options.layout ? { layout: options.layout } : {}),
  });
  try {
    const classes = options.classes ?? Array.from({ length: model.classes }, (_, c) => c);
    const bad = classes.find((c) => c >= model.classes);
    if (bad !== undefined) usage(`Expected classes below ${model.classes} for --classes but received ${bad}`);
    const overall = new ProgressBar('classes', classes.length);
    let attackBar: ProgressBar | undefined;
    let barKey = '';
    const started = performance.now();
    const bank = await buildBank({
      model,
      images: fitImages,
      labels: labels.subarray(0, fitRows),
      families,
      classes,
      cleanPerClass: options.cleanPerClass,
      attackedPerClass: options.attackedPerClass,
      attackMode: options.attackMode,
      screen: { k: options.k, candidates: options.candidates, topK: options.top },
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      data: {
        source: basename(options.data),
        sha256: tensorDigest(tensor.data),
        images: tensor.dims[0]!,
        fit: [0, fitRows],
        ...(calibrateRows > 0 ? { calibration: [fitRows, rows] as [number, number] } : {}),
      },
      onProgress: (p) => {
        if (p.stage === 'attack' && p.total !== undefined) {
          const key = `${p.class}:${p.family}`;
          if (key !== barKey) {
            attackBar?.done();
            barKey = key;
            attackBar = new ProgressBar(`${p.family} ${p.class < 0 ? 'untargeted' : `-> class ${p.class}`}`, p.total);
          }
          attackBar!.update(p.done ?? 0);
        } else if (p.stage === 'done') {
          attackBar?.done();
          attackBar = undefined;
          barKey = '';
          overall.update(p.classesDone);
        }
      },
    });
    overall.done();
    let calibrated = bank;
    if (calibrateRows > 0) {
      const detector = await FingerprintDetector.load({
        model: options.model,
        bank,
        draws: options.draws,
        confidence: options.confidence === true,
        ...(options.layout ? { layout: options.layout } : {}),
      });
      try {
        await detector.calibrate(
          { data: tensor.data.subarray(fitRows * per, rows * per), dims: [calibrateRows, ...tensor.dims.slice(1)] },
          { fpr: options.fpr },
        );
        calibrated = detector.bank;
      } finally {
        await detector.release();
      }
    }
    writeBank(options.out, calibrated);
    const h = calibrated.header;
    process.stdout.write(
      `${JSON.stringify({
        out: options.out,
        model: h.model.source,
        neurons: h.neurons,
        k: h.k,
        families: h.families,
        fingerprints: calibrated.fingerprints,
        perClass: h.classes.map((c) => c.count),
        relaxed: h.classes.map((c, i) => (c.relaxed ? { class: i, why: c.relaxed } : null)).filter((x) => x !== null),
        fitImages: fitRows,
        calibrationImages: calibrateRows,
        ...(h.calibration
          ? { threshold: h.calibration.global, fpr: h.calibration.fpr, draws: h.calibration.draws }
          : {}),
        seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      })}\n`,
    );
  } finally {
    await model.release();
  }
}
