// `nfp evaluate`: attacks held-out images with the suite, scores them and clean ones with each bank's
// detector, and writes metrics.json, report.md and report.html with figures into a folder, and for
// several banks the cross-attack matrix (experiment/evaluate.ts does the work).
import type { Command } from 'commander';
import { Option } from 'commander';

import type { AttackName } from '../attacks/index.js';
import type { AttackMode } from '../bank/index.js';
import { defaultEvaluation } from '../eval/index.js';
import type { BaselineName } from '../baselines/index.js';
import type { AblationSpec, Evaluation } from '../eval/index.js';
import type { AdaptiveSettings } from '../experiment/index.js';
import {
  defaultBaselineFitSources,
  defaultEvaluationAttacks,
  evaluateExperiment,
  evaluationSummary,
} from '../experiment/index.js';
import {
  addAttackOptions,
  addImageOptions,
  asUsage,
  attackSettingsOf,
  commandLine,
  imageReadOptionsOf,
  layoutOf,
} from './options.js';
import type { AttackOptions, ImageFlags } from './options.js';
import {
  parseAblation,
  parseAdaptive,
  parseAttackList,
  parseBaselineList,
  parseInteger,
  parsePositiveInt,
} from './parse.js';
import { stageBars } from './progress.js';

export interface EvaluateCommandOptions extends AttackOptions, ImageFlags {
  model: string;
  /** One bank, or several to compare on the same attacked images (a cross-attack matrix). */
  bank: string[];
  data: string;
  labels?: string;
  attacks: AttackName[];
  detectors: number;
  draws?: number;
  maxImages: number;
  seed: number;
  report: string;
  /** Settings to ablate, one parameter each (see parseAblation). */
  ablate?: AblationSpec[];
  /** How the bank's attacked images were made, for the refits of --ablate k, candidates and taps. */
  refitAttackMode?: AttackMode;
  /** Peer detectors on the same images. */
  baselines?: BaselineName[];
  baselineFitImages?: number;
  /** Adaptive attacks on the (one) bank, and the attacker's own bank for T2. */
  adaptive?: AdaptiveSettings;
  attackerBank?: string;
}

export function registerEvaluateCommand(program: Command): Command {
  const command = program
    .command('evaluate')
    .description('evaluate a calibrated bank against the attack suite on held-out images; writes a report folder')
    .requiredOption('--model <model>', 'the ONNX classifier the bank was fitted on')
    .requiredOption(
      '--bank <banks...>',
      'a calibrated bank; several (e.g. each fitted on one attack) are compared on the same attacked images in ' +
        'matrix.md',
    )
    .requiredOption(
      '--data <path>',
      'labelled images; when they are the data the bank was fitted on, its fit and calibration rows are left out',
    )
    .option('--labels <path>', 'labels for --data (.npy or IDX)')
    .option(
      '--attacks <names>',
      `attacks, comma-separated (default ${defaultEvaluationAttacks.join(',')})`,
      parseAttackList,
      [...defaultEvaluationAttacks],
    );
  return addImageOptions(addAttackOptions(command, "bound of the bounded attacks (default: the bank's PGD eps)"))
    .option(
      '--detectors <R>',
      'independent random detectors for the consistency figures',
      parsePositiveInt,
      defaultEvaluation.detectors,
    )
    .option('--draws <n>', "fingerprints drawn per input (default: the calibration's)", parsePositiveInt)
    .option(
      '--max-images <n>',
      'attack at most this many correctly classified held-out images',
      parsePositiveInt,
      defaultEvaluation.maxSources,
    )
    .option('--seed <n>', 'seed of the attacks and of the random detectors', parseInteger, 1)
    .requiredOption('--report <dir>', 'folder for metrics.json, report.md, report.html and figures/')
    .option(
      '--ablate <parameter=values>',
      'repeat the evaluation at other settings of one parameter (repeatable): draws=1,5,25 or top=50,200 (no ' +
        "refit), k=1,3,5, candidates=1000,10000, correlation=1,0.7 or taps='auto;<layers>,...' (refit on the " +
        "bank's fit rows); each setting is recalibrated on the bank's calibration rows",
      parseAblation,
    )
    .addOption(
      new Option(
        '--refit-attack-mode <mode>',
        "how the bank's attacked images were made (nfp fit --attack-mode; banks do not record it), for the refits " +
          'of --ablate k, candidates, correlation and taps',
      )
        .choices(['untargeted', 'targeted', 'mixed'])
        .default('mixed'),
    )
    .option(
      '--baselines <names>',
      "peer detectors on the same images, comma-separated: mahalanobis, lid, squeeze (fitted on the bank's fit " +
        'rows and taps, calibrated on its calibration rows; rows in the report and matrix.md)',
      parseBaselineList,
    )
    .option(
      '--baseline-fit-images <n>',
      "correctly classified fit images each of the bank's attack families is run on for the peer detectors",
      parsePositiveInt,
      defaultBaselineFitSources,
    )
    .option(
      '--adaptive <settings>',
      'adaptive attacks on the bank (docs/security.md), settings key=value;...: eps, weights, steps, step-size, ' +
        'restarts, kappa, slack, random-start (0|1), attacks (pgd,static,eot), images, copies (rejection ' +
        'sampling, e.g. 1,10,100,all, or none), candidate-runs, candidates (eot|pgd), detectors, start (first row), ' +
        'relu-surrogate (T: the attacks differentiate each ReLU as sigmoid(x / T), BPDA), fused (0|1: one gradient ' +
        'run per step, k = 1 banks)',
      parseAdaptive,
    )
    .option('--attacker-bank <bank>', "with --adaptive: the attacker's own calibrated bank (threat T2)")
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  $ nfp evaluate --model models/fmnist-cnn.onnx --bank bank.nfp \\',
        '      --data data/fashion-mnist/t10k-images-idx3-ubyte.gz --attacks pgd,fgsm,cw,deepfool --report report/',
        '  $ nfp evaluate ... --bank pgd.nfp fgsm.nfp cw.nfp --report matrix/   # cross-attack matrix',
        '  $ nfp evaluate ... --baselines mahalanobis,lid,squeeze --report peers/   # peer detectors side by side',
        '  $ nfp evaluate ... --ablate draws=1,5,25,100 --ablate top=25,50,100 --ablate k=1,3,10 \\',
        '      --report ablations/',
        "  $ nfp evaluate ... --attacks pgd --adaptive 'eps=0.1;weights=1;steps=100;images=100' \\",
        '      --attacker-bank own.nfp --report adaptive/\n',
      ].join('\n'),
    )
    .action(async (options: EvaluateCommandOptions, cmd: Command) => {
      await asUsage(cmd, () => evaluateCommand(options, commandLine(cmd)));
    });
}

export async function evaluateCommand(options: EvaluateCommandOptions, command: string): Promise<Evaluation[]> {
  const result = await evaluateExperiment({
    model: options.model,
    banks: options.bank,
    data: options.data,
    ...(options.labels !== undefined ? { labels: options.labels } : {}),
    image: imageReadOptionsOf(options),
    ...layoutOf(options),
    attacks: options.attacks,
    attack: attackSettingsOf(options),
    detectors: options.detectors,
    ...(options.draws !== undefined ? { draws: options.draws } : {}),
    maxImages: options.maxImages,
    seed: options.seed,
    ...(options.ablate !== undefined ? { ablate: options.ablate } : {}),
    ...(options.refitAttackMode !== undefined ? { refitAttackMode: options.refitAttackMode } : {}),
    ...(options.baselines !== undefined ? { baselines: options.baselines } : {}),
    ...(options.baselineFitImages !== undefined ? { baselineFitSources: options.baselineFitImages } : {}),
    ...(options.adaptive !== undefined ? { adaptive: options.adaptive } : {}),
    ...(options.attackerBank !== undefined ? { attackerBank: options.attackerBank } : {}),
    report: options.report,
    command,
    onProgress: stageBars(),
  });
  const summary = {
    reports: result.reports.map((r) => ({ bank: r.bank, report: r.report })),
    ...(result.matrix ? { matrix: result.matrix } : {}),
    banks: result.evaluations.map((e, i) => ({ bank: options.bank[i]!, ...evaluationSummary(e) })),
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return result.evaluations;
}
