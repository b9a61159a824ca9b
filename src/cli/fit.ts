// `nfp fit`: builds a fingerprint bank for a model from labelled images, calibrates it on a held-out
// share of the data, and writes the .nfp file (experiment/fit.ts does the work). `--classes` fits a
// shard, `--shard i/n` (or `env/n`, the index from JOB_COMPLETION_INDEX) one of n; `--checkpoints`
// makes a fit resumable; `nfp bank merge` joins shards and `nfp bank calibrate --held-out` calibrates the result.
import type { Command } from 'commander';
import { Option } from 'commander';

import { attackNames } from '../attacks/index.js';
import type { AttackName } from '../attacks/index.js';
import type { AttackMode } from '../bank/index.js';
import { defaultImagesPerClass, defaultScreenSettings } from '../bank/index.js';
import { defaultCalibration, defaultDraws } from '../detect/index.js';
import { defaultEotFamily, defaultFit, fitExperiment, parseShard } from '../experiment/index.js';
import { defaultActivationBytes } from '../model/index.js';
import type { TapSpec } from '../model/index.js';
import {
  addAttackOptions,
  addImageOptions,
  asUsage,
  attackSettingsOf,
  imageReadOptionsOf,
  layoutOf,
} from './options.js';
import type { AttackOptions, ImageFlags } from './options.js';
import {
  parseAttackList,
  parseClasses,
  parseInteger,
  parseNonNegative,
  parsePositive,
  parsePositiveInt,
  parseShare,
  parseTaps,
} from './parse.js';
import { fitBars } from './progress.js';

export interface FitOptions extends AttackOptions, ImageFlags {
  model: string;
  data: string;
  labels?: string;
  attacks: AttackName[];
  taps?: TapSpec;
  k: number;
  candidates: number;
  top: number;
  cleanPerClass: number;
  attackedPerClass: number;
  attackMode: AttackMode;
  classes?: number[];
  shard?: string;
  checkpoints?: string;
  calibrateShare: number;
  fpr: number;
  draws: number;
  confidence?: boolean;
  limit?: number;
  seed?: number;
  batchSize?: number;
  activationMemory: number;
  maxCorrelation: number;
  dMin: number;
  pMax: number;
  eotAgainst?: string;
  eotWeight: number;
  eotSteps: number;
  out: string;
}

export function registerFitCommand(program: Command): Command {
  const command = program
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
      `attack families, comma-separated (${attackNames.join(', ')}); default ${defaultFit.attacks.join(',')} ` +
        '(adding cw catches high-confidence CW-L2 better, for a fit 20-30x longer)',
      parseAttackList,
      [...defaultFit.attacks],
    );
  return addImageOptions(addAttackOptions(command))
    .option(
      '--taps <default|wide|auto|names>',
      "tapped layers: 'default' (the model card's detector taps, else 'wide'), 'wide' (every activation and " +
        "pooling output + logits), 'auto' (penultimate features + logits) or node/tensor names (see nfp layers)",
      parseTaps,
    )
    .option(
      '--activation-memory <MiB>',
      "activations one class's screen may hold; sets the neuron budget of 'wide' taps (sampling large layers)",
      parsePositive,
      defaultActivationBytes / 2 ** 20,
    )
    .option('--k <n>', 'neurons per fingerprint', parsePositiveInt, defaultScreenSettings.k)
    .option(
      '--candidates <n>',
      'distinct subsets screened per class',
      parsePositiveInt,
      defaultScreenSettings.candidates,
    )
    .option('--top <n>', 'fingerprints kept per class', parsePositiveInt, defaultScreenSettings.topK)
    .option(
      '--d-min <d>',
      "effect size a fingerprint needs, |Cohen's d| (the method's 1.5)",
      parseNonNegative,
      defaultScreenSettings.dMin,
    )
    .option(
      '--p-max <p>',
      "significance a fingerprint needs, the t-test's p (the method's 1e-3)",
      parseShare,
      defaultScreenSettings.pMax,
    )
    .option(
      '--max-correlation <r>',
      'skip a fingerprint whose clean values correlate above r with one already kept (1: keep all)',
      parseShare,
      defaultScreenSettings.maxCorrelation,
    )
    .option(
      '--clean-per-class <n>',
      'clean images per class (at most 3/4 of those it gets right; the rest are attacked)',
      parsePositiveInt,
      defaultImagesPerClass.clean,
    )
    .option(
      '--attacked-per-class <n>',
      'attacked images per class and family',
      parsePositiveInt,
      defaultImagesPerClass.attacked,
    )
    .addOption(
      new Option('--attack-mode <mode>', 'where attacked images of a class come from')
        .choices(['untargeted', 'targeted', 'mixed'])
        .default(defaultFit.attackMode),
    )
    .option('--classes <list>', "fit only these classes (a shard), e.g. '0-4' or '1,3,5'", parseClasses)
    .option(
      '--shard <i/n>',
      "fit shard i of n (a block of classes; needs --seed); 'env/n' takes i from JOB_COMPLETION_INDEX " +
        "(a Kubernetes indexed Job), 'env' n from NFP_SHARD_COUNT too",
    )
    .option(
      '--checkpoints <folder>',
      'save each fitted class there, and skip the classes already there (a killed fit resumes; needs --seed)',
    )
    .option(
      '--calibrate-share <s>',
      'share of the data held out to calibrate the threshold (0: none)',
      parseShare,
      defaultFit.calibrateShare,
    )
    .option(
      '--fpr <rate>',
      'target false-positive rate of the calibrated threshold',
      parseShare,
      defaultCalibration.fpr,
    )
    .option('--draws <n>', 'fingerprints drawn per input', parsePositiveInt, defaultDraws)
    .option(
      '--confidence',
      'calibrate for fingerprints plus the logit-margin confidence term (catches CW-L2 and DeepFool)',
    )
    .option(
      '--eot-against <banks>',
      "add the adaptive families 'eot', 'eot2', ...: PGD (at --eps) against the expected score of each of these " +
        'calibrated banks of the model (comma-separated), fitted with the same --taps and --seed (an adaptive ' +
        'refit; docs/security.md)',
    )
    .option(
      '--eot-weight <w>',
      "weight of the bank's score in the 'eot' family's loss",
      parseNonNegative,
      defaultEotFamily.weight,
    )
    .option('--eot-steps <n>', "gradient steps of the 'eot' family", parsePositiveInt, defaultEotFamily.steps)
    .option('--limit <n>', 'only the first n images', parsePositiveInt)
    .option('--seed <n>', 'reproducible fit', parseInteger)
    .option('--batch-size <n>', 'images per ONNX Runtime run (default 128, fewer for large inputs)', parsePositiveInt)
    .requiredOption('--out <bank.nfp>', 'where to write the bank')
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  $ nfp fit --model models/fmnist-cnn.onnx --data data/fashion-mnist/t10k-images-idx3-ubyte.gz \\',
        '      --limit 7500 --attacks pgd,fgsm --eps 0.1 --confidence --out bank.nfp',
        '  $ nfp fit ... --eps 0.1 --seed 1 --eot-against bank.nfp --out refit.nfp    # an adaptive refit',
        '  $ nfp fit ... --eot-against bank.nfp,refit.nfp --out refit2.nfp    # its next round',
        '  $ nfp fit ... --classes 0-4 --out shard-a.nfp && nfp fit ... --classes 5-9 --out shard-b.nfp',
        '  $ nfp bank merge shard-a.nfp shard-b.nfp --out bank.nfp',
        '  $ nfp bank calibrate --model m.onnx --bank bank.nfp --data held-out/ --out bank.nfp',
        '  $ JOB_COMPLETION_INDEX=3 nfp fit ... --seed 1 --shard env/8 --checkpoints /out/ckpt --out /out/shard-3.nfp',
        '  $ nfp bank merge /out/shard-*.nfp --out bank.nfp && nfp bank calibrate --model m.onnx --bank bank.nfp \\',
        '      --data <the same --data> --held-out --seed 1 --out bank.nfp\n',
      ].join('\n'),
    )
    .action(async (options: FitOptions, cmd: Command) => {
      await asUsage(cmd, () => fitCommand(options));
    });
}

export async function fitCommand(options: FitOptions): Promise<void> {
  const { summary } = await fitExperiment({
    model: options.model,
    data: options.data,
    ...(options.labels !== undefined ? { labels: options.labels } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    image: imageReadOptionsOf(options),
    ...layoutOf(options),
    attacks: options.attacks,
    attack: attackSettingsOf(options),
    ...(options.eotAgainst !== undefined
      ? { eotAgainst: { banks: options.eotAgainst.split(','), weight: options.eotWeight, steps: options.eotSteps } }
      : {}),
    ...(options.taps !== undefined ? { taps: options.taps } : {}),
    activationBytes: Math.floor(options.activationMemory * 2 ** 20),
    screen: {
      k: options.k,
      candidates: options.candidates,
      topK: options.top,
      maxCorrelation: options.maxCorrelation,
      dMin: options.dMin,
      pMax: options.pMax,
    },
    cleanPerClass: options.cleanPerClass,
    attackedPerClass: options.attackedPerClass,
    attackMode: options.attackMode,
    ...(options.classes !== undefined ? { classes: options.classes } : {}),
    ...(options.shard !== undefined ? { shard: parseShard(options.shard) } : {}),
    ...(options.checkpoints !== undefined ? { checkpoints: options.checkpoints } : {}),
    calibrateShare: options.calibrateShare,
    fpr: options.fpr,
    draws: options.draws,
    confidence: options.confidence === true,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    out: options.out,
    onProgress: fitBars(),
    onMessage: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}
