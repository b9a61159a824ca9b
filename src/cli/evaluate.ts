// `nfp evaluate`: attacks held-out images with the suite, scores them and clean ones with the
// detector, and writes metrics.json, report.md and report.html with figures into a folder.
import { cpus } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';

import { boundedAttacks, createAttacks } from '../attacks/index.js';
import type { AttackName, Norm } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { readBank } from '../bank/index.js';
import type { FingerprintBank } from '../bank/index.js';
import { loadLabelFile, loadTensorFile, tensorDigest } from '../data/index.js';
import { FingerprintDetector } from '../detect/index.js';
import {
  AblationError,
  checkAblationTaps,
  checkAblations,
  evaluate,
  markdownRow,
  refitParameters,
  runAblations,
  settingLabel,
  writeReport,
} from '../eval/index.js';
import type { AblationSpec, AdversarialSet, AttackMode, Evaluation } from '../eval/index.js';
import type { ImageBatch, Layout } from '../model/index.js';
import {
  parseAblation,
  parseAttackList,
  parseInteger,
  parseNonNegative,
  parsePositive,
  parsePositiveInt,
  layoutOption,
} from './parse.js';
import { requireModel } from './check.js';
import { ProgressBar } from './progress.js';
import { significant } from './table.js';

export interface EvaluateCommandOptions {
  layout?: Layout;
  model: string;
  /** One bank, or several to compare on the same attacked images (a cross-attack matrix). */
  bank: string[];
  data: string;
  labels?: string;
  attacks: AttackName[];
  eps?: number;
  norm?: Norm;
  steps?: number;
  kappa?: number;
  detectors: number;
  draws?: number;
  maxImages: number;
  seed: number;
  report: string;
  /** Settings to ablate, one parameter each (see parseAblation). */
  ablate?: AblationSpec[];
  /** How the bank's attacked images were made, for the refits of --ablate k, candidates and taps. */
  refitAttackMode?: AttackMode;
}

export const defaultEvaluationAttacks: AttackName[] = ['pgd', 'fgsm', 'mifgsm', 'cw', 'deepfool', 'square', 'apgd'];

export function registerEvaluateCommand(program: Command): Command {
  return program
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
      defaultEvaluationAttacks,
    )
    .option('--eps <e>', "bound of the bounded attacks (default: the bank's PGD eps)", parsePositive)
    .addOption(new Option('--norm <norm>', "the attacks' norm").choices(['linf', 'l2']))
    .option('--steps <n>', 'attack iterations (defaults per attack)', parsePositiveInt)
    .option(
      '--kappa <k>',
      'cw: confidence margin past the decision boundary, the attack on the confidence term (default 0)',
      parseNonNegative,
    )
    .option('--detectors <R>', 'independent random detectors for the consistency figures', parsePositiveInt, 100)
    .option('--draws <n>', "fingerprints drawn per input (default: the calibration's)", parsePositiveInt)
    .option('--max-images <n>', 'attack at most this many correctly classified held-out images', parsePositiveInt, 1000)
    .option('--seed <n>', 'seed of the attacks and of the random detectors', parseInteger, 1)
    .addOption(layoutOption())
    .requiredOption('--report <dir>', 'folder for metrics.json, report.md, report.html and figures/')
    .option(
      '--ablate <parameter=values>',
      'repeat the evaluation at other settings of one parameter (repeatable): draws=1,5,25 or top=50,200 (no ' +
        "refit), k=1,3,5, candidates=1000,10000 or taps='auto;<layers>,...' (refit on the bank's fit rows); each " +
        "setting is recalibrated on the bank's calibration rows",
      parseAblation,
    )
    .addOption(
      new Option(
        '--refit-attack-mode <mode>',
        "how the bank's attacked images were made (nfp fit --attack-mode; banks do not record it), for the refits " +
          'of --ablate k, candidates and taps',
      )
        .choices(['untargeted', 'targeted', 'mixed'])
        .default('mixed'),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ nfp evaluate --model models/fmnist-cnn.onnx --bank bank.nfp --data ' +
        'data/fashion-mnist/t10k-images-idx3-ubyte.gz \\\n      --attacks pgd,fgsm,cw,deepfool --report report/\n  ' +
        '$ nfp evaluate ... --bank pgd.nfp fgsm.nfp cw.nfp --report matrix/   # cross-attack matrix\n  $ nfp ' +
        'evaluate ... --ablate draws=1,5,25,100 --ablate top=50,200,2000 --ablate k=1,3,10 --report ablations/\n',
    )
    .action(async (options: EvaluateCommandOptions, command: Command) => {
      await evaluateCommand(options, (message) =>
        command.error(`error: ${message}`, { exitCode: 2, code: 'nfp.usage' }),
      );
    });
}

/** Held-out rows of `data`: everything but the bank's fit and calibration rows when it is the same data set. */
export function heldOut(bank: FingerprintBank, data: ImageBatch, source: string): { start: number; split: string } {
  const record = bank.header.fit.data;
  const rows = data.dims[0]!;
  if (record === undefined || record.sha256 !== tensorDigest(data.data)) {
    return { start: 0, split: `all ${rows} images of ${source} (the bank records no fit on this data)` };
  }
  const start = Math.max(record.fit[1], record.calibration?.[1] ?? 0);
  const calibrated = record.calibration ? `, ${record.calibration[0]}-${record.calibration[1]} calibrated it` : '';
  return {
    start,
    split:
      `${source}: rows ${record.fit[0]}-${record.fit[1]} fitted the bank${calibrated}; ` +
      `rows ${start}-${rows} evaluated`,
  };
}

export async function evaluateCommand(
  options: EvaluateCommandOptions,
  usage: (message: string) => never,
): Promise<Evaluation[]> {
  const banks = options.bank.map((path) => ({ path, bank: readBank(path) }));
  const ablate = options.ablate ?? [];
  if (ablate.length > 0 && banks.length > 1) usage(`--ablate takes one --bank but received ${banks.length}`);
  const pgdEps = (banks[0]!.bank.header.fit.attacks.pgd as { eps?: unknown } | undefined)?.eps;
  const eps = options.eps ?? (typeof pgdEps === 'number' ? pgdEps : undefined);
  const bounded = options.attacks.filter((a) => boundedAttacks.includes(a));
  if (bounded.length > 0 && eps === undefined)
    usage(`--attacks ${bounded.join(',')} need --eps (the bank records no PGD eps)`);
  // The model first: one that cannot be attacked stops here, with every reason, before any data is read.
  const checked = await requireModel(options.model, 'attack', options.layout ? { layout: options.layout } : {});
  const tensor = await loadTensorFile(options.data, { layout: checked.input!.layout });
  const labels = options.labels !== undefined ? loadLabelFile(options.labels) : tensor.labels;
  if (labels === undefined) usage('--data carries no labels: pass --labels');
  if (labels.length !== tensor.dims[0])
    usage(`--labels has ${labels.length} labels but --data has ${tensor.dims[0]} images`);
  // Every bank's own rows stay out: the evaluation starts after the last of them.
  const splits = banks.map(({ bank }) => heldOut(bank, tensor, basename(options.data)));
  const start = Math.max(...splits.map((h) => h.start));
  const names = reportNames(banks.map((b) => b.path));
  const split =
    banks.length === 1
      ? splits[0]!.split
      : `${splits.map((h, i) => `${names[i]!.label}: ${h.split}`).join('; ')}; all banks evaluated on ` +
        `rows ${start}-${tensor.dims[0]}`;
  if (ablate.length > 0) {
    // Checked before any attack runs: a request that cannot be measured fails in a second, not after minutes.
    try {
      checkAblations(banks[0]!.bank, ablate, tensorDigest(tensor.data));
      await checkAblationTaps(options.model, banks[0]!.bank, ablate);
    } catch (error) {
      if (!(error instanceof AblationError)) throw error;
      usage(`--ablate${error.setting !== undefined ? ` ${error.setting}` : ''}: ${error.message}`);
    }
  }
  const rows = tensor.dims[0]! - start;
  if (rows < 10) usage(`only ${rows} held-out images remain in --data after the banks' own rows`);
  const per = tensor.data.length / tensor.dims[0]!;
  const images = { data: tensor.data.subarray(start * per), dims: [rows, ...tensor.dims.slice(1)] };
  const attacks = createAttacks(options.attacks, {
    eps,
    norm: options.norm,
    steps: options.steps,
    ...(options.kappa !== undefined ? { kappa: options.kappa } : {}),
  }).map(({ name, attack, settings }) => ({ name, attack, settings: { ...settings } }));
  const attackModel = await GradientModel.load(options.model, {
    taps: [],
    inputShape: tensor.dims.slice(1),
    batchSize: 128,
    ...(options.layout ? { layout: options.layout } : {}),
  });
  const adversarial = new Map<string, AdversarialSet>();
  const evaluations: Evaluation[] = [];
  const reports: Array<{ bank: string; report: string }> = [];
  try {
    for (const [index, { path, bank }] of banks.entries()) {
      const detector = await FingerprintDetector.load({
        model: options.model,
        bank,
        ...(options.draws !== undefined ? { draws: options.draws } : {}),
        ...(options.layout ? { layout: options.layout } : {}),
      });
      try {
        const bars = new Map<string, ProgressBar>();
        const onProgress = (stage: string, done: number, total: number) => {
          const bar = bars.get(stage) ?? new ProgressBar(stage, total);
          bars.set(stage, bar);
          bar.update(done);
          if (done >= total) bar.done();
        };
        let evaluation = await evaluate({
          detector,
          attackModel,
          images,
          labels: labels.subarray(start),
          attacks,
          detectors: options.detectors,
          maxSources: options.maxImages,
          seed: options.seed,
          adversarial,
          onAdversarial: (name, set) => adversarial.set(name, set),
          onProgress,
        });
        if (ablate.length > 0) {
          const ablations = await runAblations({
            model: options.model,
            bank,
            specs: ablate,
            data: tensor,
            dataLabels: labels,
            images,
            labels: labels.subarray(start),
            attacks,
            attackModel,
            adversarial,
            detectors: options.detectors,
            maxSources: options.maxImages,
            seed: options.seed,
            ...(options.draws !== undefined ? { draws: options.draws } : {}),
            ...(options.refitAttackMode !== undefined ? { attackMode: options.refitAttackMode } : {}),
            onProgress: (stage, done, total) => onProgress(`ablation ${stage}`, done, total),
          });
          evaluation = { ...evaluation, ablations };
        }
        const dir = banks.length === 1 ? options.report : join(options.report, names[index]!.dir);
        const command = [
          `nfp evaluate --model ${options.model} --bank ${options.bank.join(' ')} --data ${options.data}`,
          `--attacks ${options.attacks.join(',')}${eps !== undefined ? ` --eps ${eps}` : ''}`,
          `--detectors ${options.detectors} --max-images ${options.maxImages} --seed ${options.seed}` +
            `${ablateArguments(ablate, options.refitAttackMode)} --report ${options.report}`,
        ].join(' ');
        const machine = `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`;
        const cal = bank.header.calibration;
        const calibration =
          cal && bank.header.fit.data?.calibration
            ? `FPR ${cal.fpr}, ${cal.drawsPerImage} draws per ` +
              `image, ${cal.combine}, rows ${bank.header.fit.data.calibration.join('-')}`
            : undefined;
        const paths = await writeReport(dir, evaluation, {
          command,
          machine,
          split,
          ...(calibration && ablate.length > 0 ? { calibration } : {}),
        });
        evaluations.push(evaluation);
        reports.push({ bank: path, report: paths.markdown });
      } finally {
        await detector.release();
      }
    }
  } finally {
    await attackModel.release();
  }
  const matrix =
    banks.length > 1
      ? writeMatrix(
          options.report,
          names.map((n) => n.label),
          evaluations,
        )
      : undefined;
  process.stdout.write(
    `${JSON.stringify({
      reports,
      ...(matrix ? { matrix } : {}),
      banks: evaluations.map((e, i) => ({
        bank: banks[i]!.path,
        cleanFpr: significant(e.clean.fprAtThreshold, 4),
        attacks: e.attacks.map((a) => ({
          attack: a.attack,
          successRate: significant(a.successRate, 4),
          auc: significant(a.auc, 4),
          tprAt5: significant(a.tprAt5, 4),
          aucStd: significant(a.consistency.auc.std, 4),
        })),
        ...(e.ablations
          ? {
              ablations: e.ablations.map((a) => ({
                parameter: a.parameter,
                rows: a.rows.map((r) => ({
                  setting: r.label,
                  own: r.own,
                  cleanFpr: significant(r.fprAtThreshold, 4),
                  auc: Object.fromEntries(r.attacks.map((x) => [x.attack, significant(x.auc, 4)])),
                })),
              })),
            }
          : {}),
      })),
    })}\n`,
  );
  return evaluations;
}

/**
 * Each bank's report folder (its file name without .nfp) and label in the matrix (its file name); where
 * two --bank files share a name (a/bank.nfp b/bank.nfp), their position on the command line is added,
 * so that no report overwrites another.
 */
export function reportNames(paths: readonly string[]): Array<{ dir: string; label: string }> {
  const files = paths.map((p) => basename(p));
  return files.map((f, i) => {
    const shared = files.indexOf(f) !== files.lastIndexOf(f);
    return { dir: `${basename(f, '.nfp')}${shared ? `-${i + 1}` : ''}`, label: shared ? `${f} [${i + 1}]` : f };
  });
}

/** The --ablate arguments as a shell would take them back (tap sets hold ';', so they are quoted). */
function ablateArguments(specs: AblationSpec[], mode: AttackMode | undefined): string {
  const args = specs
    .map((s) => {
      const setting =
        s.parameter === 'taps'
          ? `'taps=${s.values.map(settingLabel).join(';')}'`
          : `${s.parameter}=${s.values.join(',')}`;
      return ` --ablate ${setting}`;
    })
    .join('');
  const refits = specs.some((s) => refitParameters.includes(s.parameter));
  return `${args}${refits && mode !== undefined ? ` --refit-attack-mode ${mode}` : ''}`;
}

/** The cross-attack matrix: one row per bank (with its attack families), one column per attack; AUC and TPR at the
 * calibrated threshold. */
function writeMatrix(dir: string, labels: string[], evaluations: Evaluation[]): string {
  mkdirSync(dir, { recursive: true });
  const attacks = evaluations[0]!.attacks.map((a) => a.attack);
  const lines = [
    '# Cross-attack matrix',
    '',
    'AUC (TPR at the calibrated threshold) of each bank against each attack, on the same held-out attacked images.',
    '',
    `| bank (families) | clean FPR | ${attacks.join(' | ')} |`,
    `|---|---|${attacks.map(() => '---').join('|')}|`,
    ...evaluations.map((e, i) => {
      const cells = e.attacks.map((a) => `${a.auc.toFixed(4)} (${a.tprAtThreshold.toFixed(3)})`);
      return markdownRow([
        `${labels[i]!} (${e.bank.families.join(', ')})`,
        e.clean.fprAtThreshold.toFixed(3),
        ...cells,
      ]);
    }),
  ];
  const path = join(dir, 'matrix.md');
  writeFileSync(path, `${lines.join('\n')}\n`);
  writeFileSync(
    join(dir, 'matrix.json'),
    `${JSON.stringify(
      {
        schema: 'nfp-matrix/1',
        attacks,
        banks: evaluations.map((e, i) => ({
          bank: labels[i]!,
          families: e.bank.families,
          cleanFpr: e.clean.fprAtThreshold,
          auc: e.attacks.map((a) => a.auc),
          tprAtThreshold: e.attacks.map((a) => a.tprAtThreshold),
        })),
      },
      null,
      1,
    )}\n`,
  );
  return path;
}
