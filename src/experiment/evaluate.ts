// Evaluating banks as `nfp evaluate` and the demo do: the held-out rows of the data (every bank's
// fit and calibration rows left out), the attack suite run once and shared by every bank, an
// evaluation per bank (with ablations when asked), a report folder per bank and, for several
// banks, the cross-attack matrix; with --baselines, the peer detectors on the same images (baselines.ts).
import { cpus } from 'node:os';
import { basename, join } from 'node:path';

import { boundedAttacks, createAttacks } from '../attacks/index.js';
import type { AttackName, AttackSettings } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { readBank } from '../bank/index.js';
import type { AttackMode, FingerprintBank } from '../bank/index.js';
import { FingerprintDetector } from '../detect/index.js';
import {
  AblationError,
  checkAblationTaps,
  checkAblations,
  defaultEvaluation,
  evaluate,
  runAblations,
  writeMatrix,
  writeReport,
} from '../eval/index.js';
import type { AblationSpec, AdversarialSet, Evaluation, EvaluationAttack } from '../eval/index.js';
import type { BaselineEvaluation, BaselineName } from '../baselines/index.js';
import type { Layout } from '../model/index.js';
import { adaptiveSection } from './adaptive-section.js';
import type { AdaptiveSettings } from './adaptive.js';
import { baselineExperiment, checkBaselineRequest } from './baselines.js';
import { requireModelFor } from './check.js';
import type { ImageReadOptions, LabelledData } from './data.js';
import { imagesFor, loadLabelledFor, rowsOf } from './data.js';
import { defaultEvaluationAttacks, fitBatchSize } from './defaults.js';
import { ExperimentError } from './errors.js';

export interface EvaluateExperimentOptions {
  model: string;
  /** Calibrated banks: paths (their file names label the reports), or banks with labels. */
  banks: Array<string | { bank: FingerprintBank; label: string }>;
  /** Labelled images: a path (with `labels`) or data in memory; each bank's own rows are left out. */
  data: string | LabelledData;
  labels?: string;
  /** What image files (in a folder of class folders) may hold. */
  image?: ImageReadOptions;
  /** The model input's layout where its declared shape does not tell (default: detected from it). */
  layout?: Layout;
  attacks?: readonly AttackName[];
  /** Attack settings; eps defaults to the first bank's PGD eps. */
  attack?: AttackSettings;
  /** Or the attacks themselves, as built by the caller (the demo's). */
  attackSpecs?: EvaluationAttack[];
  detectors?: number;
  draws?: number;
  maxImages?: number;
  seed?: number;
  ablate?: AblationSpec[];
  refitAttackMode?: AttackMode;
  /**
   * Peer detectors to evaluate on the same images (nfp evaluate --baselines): fitted on the first bank's
   * fit rows and taps, calibrated on its calibration rows; one row per detector and attack in every
   * report and in the matrix.
   */
  baselines?: readonly BaselineName[];
  /** Correctly classified fit images each of the bank's attack families is run on for the baselines (default 1,000). */
  baselineFitSources?: number;
  /**
   * Adaptive attacks on the one bank (nfp evaluate --adaptive): added to its metrics.json (`adaptive`)
   * and report.md. Needs the data the bank was calibrated on, for thresholds at 1% and of the static detector.
   */
  adaptive?: AdaptiveSettings;
  /** The attacker's own calibrated bank, for threat T2. */
  attackerBank?: string | FingerprintBank;
  /** The report folder, and what the report says produced it. */
  report: string;
  command: string;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface EvaluateExperimentResult {
  evaluations: Evaluation[];
  reports: Array<{ bank: string; report: string; html: string; metrics: string }>;
  matrix?: string;
}

export async function evaluateExperiment(options: EvaluateExperimentOptions): Promise<EvaluateExperimentResult> {
  const banks = options.banks.map((b) => (typeof b === 'string' ? { bank: readBank(b), label: b } : b));
  const ablate = options.ablate ?? [];
  if (ablate.length > 0 && banks.length > 1)
    throw new ExperimentError(`--ablate takes one --bank but received ${banks.length}`, '--ablate');
  if (options.adaptive !== undefined && banks.length > 1)
    throw new ExperimentError(`--adaptive takes one --bank but received ${banks.length}`, '--adaptive');
  if (options.attackerBank !== undefined && options.adaptive === undefined)
    throw new ExperimentError('--attacker-bank goes with --adaptive', '--attacker-bank');
  const attacks = options.attackSpecs ?? attacksFor(options, banks[0]!.bank);
  const layout = options.layout ? { layout: options.layout } : {};
  // The model first: one that cannot be attacked stops here, with every reason, before the data is read.
  await requireModelFor(
    options.model,
    'attack',
    typeof options.data === 'string' ? options.data : options.data.images,
    layout,
  );
  const data =
    typeof options.data === 'string' ? await loadLabelledFor(options.model, options.data, options) : options.data;
  const split = heldOutRows(banks, data);
  const baselines = options.baselines ?? [];
  if (baselines.length > 0) checkBaselineRequest(baselines, banks[0]!.bank, data);
  let peers: BaselineEvaluation | undefined;
  if (ablate.length > 0) await checkAblationRequest(options.model, banks[0]!.bank, ablate, data);
  const labels = data.labels.subarray(split.start);
  const attackModel = await GradientModel.load(options.model, {
    taps: [],
    inputShape: data.images.dims.slice(1),
    batchSize: fitBatchSize(data.images.dims.slice(1)),
    ...layout,
  });
  let all: LabelledData['images'];
  try {
    all = imagesFor(data.images, attackModel);
  } catch (error) {
    await attackModel.release();
    throw error;
  }
  const images = rowsOf(all, split.start, all.dims[0]!);
  const names = reportNames(banks.map((b) => b.label));
  const adversarial = new Map<string, AdversarialSet>();
  const result: EvaluateExperimentResult = { evaluations: [], reports: [] };
  const progress = options.onProgress ?? (() => {});
  try {
    for (const [index, { bank, label }] of banks.entries()) {
      const detector = await FingerprintDetector.load({
        model: options.model,
        bank,
        ...(options.draws !== undefined ? { draws: options.draws } : {}),
        ...layout,
      });
      try {
        const shared = {
          attackModel,
          images,
          labels,
          attacks,
          detectors: options.detectors ?? defaultEvaluation.detectors,
          maxSources: options.maxImages ?? defaultEvaluation.maxSources,
          seed: options.seed ?? 1,
          adversarial,
        };
        let evaluation = await evaluate({
          detector,
          ...shared,
          onAdversarial: (name, set) => adversarial.set(name, set),
          onProgress: progress,
        });
        if (ablate.length > 0) {
          const ablations = await runAblations({
            model: options.model,
            bank,
            specs: ablate,
            data: all,
            dataLabels: data.labels,
            ...shared,
            ...(options.draws !== undefined ? { draws: options.draws } : {}),
            ...(options.refitAttackMode !== undefined ? { attackMode: options.refitAttackMode } : {}),
            onProgress: (stage, done, total) => progress(`ablation ${stage}`, done, total),
          });
          evaluation = { ...evaluation, ablations };
        }
        if (baselines.length > 0) {
          peers ??= await baselineExperiment({
            model: options.model,
            bank: banks[0]!.bank,
            data,
            baselines,
            heldOut: { images, labels },
            adversarial,
            attackModel,
            ...(options.baselineFitSources !== undefined ? { fitSources: options.baselineFitSources } : {}),
            seed: options.seed ?? 1,
            onProgress: progress,
          });
          evaluation = { ...evaluation, baselines: peers };
        }
        const dir = banks.length === 1 ? options.report : join(options.report, names[index]!.dir);
        const paths = await writeReport(dir, evaluation, {
          command: options.command,
          machine: `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}`,
          split: banks.length === 1 ? split.splits[0]! : split.together,
          ...(ablate.length > 0 && calibrationNote(bank) ? { calibration: calibrationNote(bank)! } : {}),
        });
        if (options.adaptive !== undefined)
          await adaptiveSection({
            model: options.model,
            bank,
            ...(options.attackerBank !== undefined ? { attackerBank: options.attackerBank } : {}),
            data: { images: all, labels: data.labels, digest: data.digest },
            heldOutStart: split.start,
            settings: options.adaptive,
            seed: options.seed ?? 1,
            paths,
            onProgress: progress,
          });
        result.evaluations.push(evaluation);
        result.reports.push({ bank: label, report: paths.markdown, html: paths.html, metrics: paths.metrics });
      } finally {
        await detector.release();
      }
    }
  } finally {
    await attackModel.release();
  }
  if (banks.length > 1 || baselines.length > 0)
    result.matrix = writeMatrix(
      options.report,
      names.map((n) => n.label),
      result.evaluations,
    );
  return result;
}

/** The attacks by name; bounded ones take eps from the options or the bank's PGD family. */
function attacksFor(options: EvaluateExperimentOptions, bank: FingerprintBank): EvaluationAttack[] {
  const pgdEps = (bank.header.fit.attacks.pgd as { eps?: unknown } | undefined)?.eps;
  const eps = options.attack?.eps ?? (typeof pgdEps === 'number' ? pgdEps : undefined);
  const names = options.attacks ?? defaultEvaluationAttacks;
  const bounded = names.filter((a) => boundedAttacks.includes(a));
  if (bounded.length > 0 && eps === undefined)
    throw new ExperimentError(`--attacks ${bounded.join(',')} need --eps (the bank records no PGD eps)`, '--eps');
  return createAttacks([...names], { ...options.attack, ...(eps !== undefined ? { eps } : {}) }).map(
    ({ name, attack, settings }) => ({ name, attack, settings: { ...settings } }),
  );
}

/** Where the held-out rows start (after every bank's own rows), and how each report describes the split. */
function heldOutRows(
  banks: Array<{ bank: FingerprintBank; label: string }>,
  data: LabelledData,
): { start: number; splits: string[]; together: string } {
  const parts = banks.map(({ bank }) => heldOut(bank, data));
  const start = Math.max(...parts.map((h) => h.start));
  const rows = data.images.dims[0]! - start;
  if (rows < 10)
    throw new ExperimentError(`only ${rows} held-out images remain in --data after the banks' own rows`, '--data');
  const names = reportNames(banks.map((b) => b.label));
  const together =
    `${parts.map((h, i) => `${names[i]!.label}: ${h.split}`).join('; ')}; all banks evaluated on ` +
    `rows ${start}-${data.images.dims[0]}`;
  return { start, splits: parts.map((h) => h.split), together };
}

/** Held-out rows of `data`: everything but the bank's fit and calibration rows when it is the same data set. */
export function heldOut(bank: FingerprintBank, data: LabelledData): { start: number; split: string } {
  const record = bank.header.fit.data;
  const rows = data.images.dims[0]!;
  if (record === undefined || record.sha256 !== data.digest) {
    return { start: 0, split: `all ${rows} images of ${data.source} (the bank records no fit on this data)` };
  }
  const start = Math.max(record.fit[1], record.calibration?.[1] ?? 0);
  const calibrated = record.calibration ? `, ${record.calibration[0]}-${record.calibration[1]} calibrated it` : '';
  return {
    start,
    split:
      `${data.source}: rows ${record.fit[0]}-${record.fit[1]} fitted the bank${calibrated}; ` +
      `rows ${start}-${rows} evaluated`,
  };
}

/** Ablations that cannot be measured fail in a second, before any attack runs. */
async function checkAblationRequest(
  model: string,
  bank: FingerprintBank,
  ablate: AblationSpec[],
  data: LabelledData,
): Promise<void> {
  try {
    checkAblations(bank, ablate, data.digest);
    await checkAblationTaps(model, bank, ablate);
  } catch (error) {
    if (!(error instanceof AblationError)) throw error;
    throw new ExperimentError(
      `--ablate${error.setting !== undefined ? ` ${error.setting}` : ''}: ${error.message}`,
      '--ablate',
    );
  }
}

function calibrationNote(bank: FingerprintBank): string | undefined {
  const cal = bank.header.calibration;
  const rows = bank.header.fit.data?.calibration;
  if (cal === undefined || rows === undefined) return undefined;
  return `FPR ${cal.fpr}, ${cal.drawsPerImage} draws per image, ${cal.combine}, rows ${rows.join('-')}`;
}

/**
 * Each bank's report folder (its file name without .nfp) and label in the matrix (its file name); where
 * two banks share a name (a/bank.nfp b/bank.nfp), their position is added, so no report overwrites another.
 */
export function reportNames(paths: readonly string[]): Array<{ dir: string; label: string }> {
  const files = paths.map((p) => basename(p));
  return files.map((f, i) => {
    const shared = files.indexOf(f) !== files.lastIndexOf(f);
    return { dir: `${basename(f, '.nfp')}${shared ? `-${i + 1}` : ''}`, label: shared ? `${f} [${i + 1}]` : f };
  });
}
