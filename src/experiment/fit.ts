// Fitting a bank as `nfp fit` and the demo do: labelled data split into fit rows and calibration
// rows (the tail), attack families by name, the model loaded with the detector's taps under the
// neuron budget that the activation memory allows, buildBank, then calibration on the held-out
// tail. A shard (`shard`, `classes`) fits some classes only and is calibrated after the merge; with
// `checkpoints` every fitted class is saved as it is done and a rerun resumes. Every option is checked
// before any work starts.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { boundedAttacks, createAttacks } from '../attacks/index.js';
import type { AttackName, AttackSettings } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import {
  CheckpointFolder,
  bankFamily,
  buildBank,
  defaultImagesPerClass,
  defaultScreenSettings,
  writeBank,
} from '../bank/index.js';
import type { AttackFamily, AttackMode, BuildProgress, FingerprintBank, ScreenSettings } from '../bank/index.js';
import { FingerprintDetector, defaultCalibration, defaultDraws } from '../detect/index.js';
import { cardPath, cardTaps, defaultActivationBytes, neuronBudget } from '../model/index.js';
import type { Layout, TapSpec } from '../model/index.js';
import { requireModelFor } from './check.js';
import type { ImageReadOptions, LabelledData } from './data.js';
import { imagesFor, loadLabelledFor, rowsOf } from './data.js';
import { defaultFit, fitBatchSize } from './defaults.js';
import { eotFamilies } from './eot-family.js';
import type { EotFamilyOptions } from './eot-family.js';
import { ExperimentError } from './errors.js';
import type { Shard } from './shard.js';
import { shardClasses } from './shard.js';

export interface FitExperimentOptions {
  /** The ONNX classifier (a path: its model card, if any, names the taps). */
  model: string;
  /** Labelled images: a path (with `labels`, `limit`) or data in memory. */
  data: string | LabelledData;
  labels?: string;
  limit?: number;
  /** What image files (in a folder of class folders) may hold. */
  image?: ImageReadOptions;
  /** Attack families by name (default PGD and FGSM) and their settings (eps, norm, steps, kappa). */
  attacks?: readonly AttackName[];
  attack?: AttackSettings;
  /**
   * Adds adaptive families 'eot', 'eot2', ...: AdaptivePGD (at the attacks' eps) against the expectation
   * over the draws of each of these earlier calibrated banks of the model (an adaptive refit, docs/security.md).
   */
  eotAgainst?: EotFamilyOptions;
  taps?: TapSpec;
  /** The model input's layout where its declared shape does not tell (default: detected from it). */
  layout?: Layout;
  /** Activation memory one class's screen may hold, which sets the neuron budget of 'wide' taps (bytes). */
  activationBytes?: number;
  screen?: Partial<ScreenSettings>;
  cleanPerClass?: number;
  attackedPerClass?: number;
  attackMode?: AttackMode;
  /** Classes to fit (a shard; no calibration then). */
  classes?: number[];
  /** Shard i of n: its block of classes (shard.ts), fitted with the per-class seeds of the whole fit. */
  shard?: Shard;
  /** A folder of per-class checkpoints: fitted classes are saved there, and a rerun skips them. */
  checkpoints?: string;
  /** Share of the rows, from the end, held out to calibrate (0: none). */
  calibrateShare?: number;
  fpr?: number;
  draws?: number;
  confidence?: boolean;
  seed?: number;
  /** Images per ONNX Runtime run (default fitBatchSize: 128, fewer for large inputs). */
  batchSize?: number;
  /** Where to write the bank (.nfp), atomically; nothing is written without it. */
  out?: string;
  onProgress?: (progress: BuildProgress) => void;
  /** Lines for people (the taps chosen, the neuron budget). */
  onMessage?: (line: string) => void;
}

export interface FitSummary {
  out?: string;
  /** 'i/n' for a shard. */
  shard?: string;
  /** The classes fitted (and resumed from checkpoints) when not all. */
  classes?: number[];
  resumedClasses?: number[];
  model: string;
  neurons: number;
  k: number;
  families: string[];
  fingerprints: number;
  perClass: number[];
  distinctPerClass: number[];
  redundancy: Array<number | null>;
  taps: { rule: string; layers: number; sampled: number };
  relaxed: Array<{ class: number; why: string }>;
  fitImages: number;
  calibrationImages: number;
  threshold?: number;
  fpr?: number;
  draws?: number;
  seconds: number;
}

export async function fitExperiment(
  options: FitExperimentOptions,
): Promise<{ bank: FingerprintBank; summary: FitSummary }> {
  checkFitOptions(options);
  const started = performance.now();
  const attackNames = options.attacks ?? defaultFit.attacks;
  const cleanPerClass = options.cleanPerClass ?? defaultImagesPerClass.clean;
  const attackedPerClass = options.attackedPerClass ?? defaultImagesPerClass.attacked;
  const layout = options.layout ? { layout: options.layout } : {};
  // The model first: one that cannot be fitted stops here, with every reason, before the data is read.
  await requireModelFor(options.model, 'fit', typeof options.data === 'string' ? options.data : options.data.images, {
    ...layout,
    ...(options.taps !== undefined ? { taps: options.taps } : {}),
    fit: {
      families: attackNames.length + (options.eotAgainst?.banks.length ?? 0),
      cleanPerClass,
      attackedPerClass,
      attackBatch: options.batchSize ?? defaultFit.batchSize,
    },
  });
  const data =
    typeof options.data === 'string' ? await loadLabelledFor(options.model, options.data, options) : options.data;
  const rows = data.images.dims[0]!;
  // The calibration share is the tail of the data, so the fit never sees it. Shards hold it out as
  // well (they fit the rows one process would) and are calibrated on it after merging.
  const calibrateRows = Math.floor(rows * (options.calibrateShare ?? defaultFit.calibrateShare));
  const fitRows = rows - calibrateRows;
  const sharded = options.classes !== undefined || options.shard !== undefined;
  const families: AttackFamily[] = createAttacks([...attackNames], options.attack ?? {}).map(
    ({ name, attack, settings }) => ({
      name,
      attack,
      settings: { ...settings },
    }),
  );
  const activationBytes = options.activationBytes ?? defaultActivationBytes;
  const familyCount = families.length + (options.eotAgainst?.banks.length ?? 0);
  const screenRows = cleanPerClass + familyCount * attackedPerClass;
  const model = await GradientModel.load(options.model, {
    taps: options.taps ?? 'default',
    neuronBudget: neuronBudget(screenRows, activationBytes),
    ...(options.seed !== undefined ? { tapSeed: options.seed } : {}),
    inputShape: data.images.dims.slice(1),
    batchSize: options.batchSize ?? fitBatchSize(data.images.dims.slice(1)),
    ...layout,
  });
  let bank: FingerprintBank;
  let classes = options.classes;
  const checkpoints = options.checkpoints !== undefined ? new CheckpointFolder(options.checkpoints) : undefined;
  let images: LabelledData['images'];
  try {
    checkAgainstModel(options, model);
    // The adaptive family attacks the earlier bank through this model's taps, which must be that bank's.
    if (options.eotAgainst !== undefined)
      families.push(...eotFamilies(options.eotAgainst, model, options.attack!.eps!));
    images = imagesFor(data.images, model);
    if (options.shard !== undefined) classes = shardClasses(options.shard, model.classes);
    options.onMessage?.(describeTapPlan(model, options.model, screenRows, activationBytes));
    const mode = options.attackMode ?? defaultFit.attackMode;
    if (sharded && mode !== 'targeted')
      options.onMessage?.(
        `--attack-mode ${mode}: every shard attacks one untargeted pool of all classes (the same work in each); ` +
          '--attack-mode targeted splits the attacks among the shards',
      );
    bank = await buildBank({
      model,
      images: rowsOf(images, 0, fitRows),
      labels: data.labels.subarray(0, fitRows),
      families,
      ...(classes !== undefined ? { classes } : {}),
      ...(checkpoints !== undefined ? { checkpoints } : {}),
      cleanPerClass,
      attackedPerClass,
      attackMode: options.attackMode ?? defaultFit.attackMode,
      screen: options.screen ?? {},
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(model.classifier.tapPlan.sampled > 0 ? { activationBytes } : {}),
      data: {
        source: data.source,
        sha256: data.digest,
        images: data.total,
        fit: [0, fitRows],
        ...(calibrateRows > 0 ? { calibration: [fitRows, rows] as [number, number] } : {}),
      },
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } finally {
    await model.release();
  }
  if (calibrateRows > 0 && !sharded) bank = await calibrateBank(options, bank, rowsOf(images, fitRows, rows));
  if (options.out !== undefined) writeBank(options.out, bank);
  const summary = fitSummary(options, bank, model, fitRows, sharded ? 0 : calibrateRows, started);
  return {
    bank,
    summary: {
      ...(options.shard !== undefined ? { shard: `${options.shard.index}/${options.shard.count}` } : {}),
      ...(classes !== undefined ? { classes } : {}),
      ...(checkpoints !== undefined ? { resumedClasses: [...checkpoints.resumed].sort((a, b) => a - b) } : {}),
      ...summary,
    },
  };
}

/** Options that can be judged without data or model: judged first, so that a bad one costs nothing. */
export function checkFitOptions(options: FitExperimentOptions): void {
  const attacks = options.attacks ?? defaultFit.attacks;
  const bounded = attacks.filter((a) => boundedAttacks.includes(a));
  if (bounded.length > 0 && options.attack?.eps === undefined)
    throw new ExperimentError(`--attacks ${bounded.join(',')} need --eps`, '--eps');
  if (options.eotAgainst !== undefined) {
    if (options.attack?.eps === undefined) throw new ExperimentError('--eot-against needs --eps', '--eps');
    if (options.eotAgainst.banks.length === 0)
      throw new ExperimentError('Expected one or more banks for --eot-against but received none', '--eot-against');
    for (const bank of options.eotAgainst.banks)
      if (typeof bank === 'string' && !existsSync(bank))
        throw new ExperimentError(`Cannot find --eot-against ${bank}`, '--eot-against');
    const { weight, steps } = options.eotAgainst;
    if (weight !== undefined && !(weight >= 0 && Number.isFinite(weight)))
      throw new ExperimentError(`Expected a weight >= 0 for --eot-weight but received ${weight}`, '--eot-weight');
    if (steps !== undefined && !(Number.isInteger(steps) && steps > 0))
      throw new ExperimentError(`Expected a positive integer for --eot-steps but received ${steps}`, '--eot-steps');
  }
  const share = options.calibrateShare ?? defaultFit.calibrateShare;
  if (!(share >= 0 && share < 1))
    throw new ExperimentError(
      `Expected a share in [0, 1) for --calibrate-share but received ${share}`,
      '--calibrate-share',
    );
  const fpr = options.fpr ?? defaultCalibration.fpr;
  if (!(fpr > 0 && fpr < 1))
    throw new ExperimentError(`Expected a rate in (0, 1) for --fpr but received ${fpr}`, '--fpr');
  const screen = { ...defaultScreenSettings, ...options.screen };
  if (!(screen.maxCorrelation > 0 && screen.maxCorrelation <= 1))
    throw new ExperimentError(
      `Expected a value in (0, 1] for --max-correlation but received ${screen.maxCorrelation}`,
      '--max-correlation',
    );
  if (options.out !== undefined) checkOutPath(options.out, '.nfp', '--out');
  if (options.shard !== undefined && options.classes !== undefined)
    throw new ExperimentError('Expected --shard or --classes but received both', '--shard');
  // Without a seed, shards would sample different taps and candidates, and a resumed fit would mix two draws.
  for (const [option, given] of [
    ['--shard', options.shard !== undefined],
    ['--checkpoints', options.checkpoints !== undefined],
  ] as const) {
    if (given && options.seed === undefined)
      throw new ExperimentError(`${option} needs --seed (every shard and every resumed run must draw alike)`, option);
  }
  if (
    options.checkpoints !== undefined &&
    existsSync(options.checkpoints) &&
    !statSync(options.checkpoints).isDirectory()
  )
    throw new ExperimentError(
      `Expected a folder for --checkpoints but ${options.checkpoints} is a file`,
      '--checkpoints',
    );
}

/** An output file path: the right extension, in a folder that exists, not itself a folder. */
export function checkOutPath(path: string, extension: string, option: string): void {
  if (!path.endsWith(extension))
    throw new ExperimentError(`Expected a ${extension} path for ${option} but received ${path}`, option);
  const folder = dirname(path);
  if (!existsSync(folder) || !statSync(folder).isDirectory())
    throw new ExperimentError(`Expected ${option} in an existing folder but ${folder} is not one`, option);
  if (existsSync(path) && statSync(path).isDirectory())
    throw new ExperimentError(`Expected a file for ${option} but ${path} is a folder`, option);
}

/** Options that need the model: the classes of a shard, and k against the tapped neurons. */
function checkAgainstModel(options: FitExperimentOptions, model: GradientModel): void {
  const bad = options.classes?.find((c) => c >= model.classes);
  if (bad !== undefined)
    throw new ExperimentError(`Expected classes below ${model.classes} for --classes but received ${bad}`, '--classes');
  const k = options.screen?.k ?? defaultScreenSettings.k;
  if (k > model.neurons)
    throw new ExperimentError(`Expected --k of at most the ${model.neurons} tapped neurons but received ${k}`, '--k');
}

async function calibrateBank(options: FitExperimentOptions, bank: FingerprintBank, images: LabelledData['images']) {
  const detector = await FingerprintDetector.load({
    model: options.model,
    bank,
    draws: options.draws ?? defaultDraws,
    confidence: options.confidence === true,
    // A seeded fit calibrates with seeded draws, so that it is reproducible as a whole (nfp bank calibrate --seed).
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.layout ? { layout: options.layout } : {}),
  });
  try {
    await detector.calibrate(images, { fpr: options.fpr ?? defaultCalibration.fpr });
    return detector.bank;
  } finally {
    await detector.release();
  }
}

function fitSummary(
  options: FitExperimentOptions,
  bank: FingerprintBank,
  model: GradientModel,
  fitImages: number,
  calibrationImages: number,
  started: number,
): FitSummary {
  const h = bank.header;
  const plan = model.classifier.tapPlan;
  return {
    ...(options.out !== undefined ? { out: options.out } : {}),
    model: h.model.source,
    neurons: h.neurons,
    k: h.k,
    families: h.families,
    fingerprints: bank.fingerprints,
    perClass: h.classes.map((c) => c.count),
    distinctPerClass: bankFamily(bank, h.calibration?.draws ?? defaultDraws).map((f) => f.distinct),
    redundancy: h.classes.map((c) => (c.redundancy === undefined ? null : Number(c.redundancy.toFixed(4)))),
    taps: { rule: plan.rule, layers: h.taps.length, sampled: plan.sampled },
    relaxed: h.classes.flatMap((c, i) => (c.relaxed ? [{ class: i, why: c.relaxed }] : [])),
    fitImages,
    calibrationImages,
    ...(h.calibration ? { threshold: h.calibration.global, fpr: h.calibration.fpr, draws: h.calibration.draws } : {}),
    seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
  };
}

/** One line on how the taps were chosen and what the neuron budget did. */
export function describeTapPlan(model: GradientModel, path: string, rows: number, bytes: number): string {
  const plan = model.classifier.tapPlan;
  const count = (n: number) => n.toLocaleString('en-US');
  const noCard = cardTaps(path) === undefined ? ' (no model card)' : '';
  const rule =
    plan.rule === 'card'
      ? `the model card's detector taps (${cardPath(path)})`
      : plan.rule === 'wide'
        ? `wide: every activation and pooling output + logits${noCard}`
        : plan.rule;
  const mib = (bytes / 2 ** 20).toFixed(0);
  const budget =
    plan.rule === 'wide'
      ? `; neuron budget ${count(plan.budget)} = ${mib} MiB / (${count(rows)} rows x 4 bytes), ` +
        `${plan.sampled} of ${model.taps.length} layers sampled`
      : '';
  const skipped = plan.skipped.length > 0 ? `; skipped ${plan.skipped.length} non-float or non-batch outputs` : '';
  const neurons = `${count(model.neurons)} of ${count(plan.fullNeurons)} neurons`;
  return `taps: ${rule}: ${model.taps.length} layers, ${neurons}${budget}${skipped}`;
}
