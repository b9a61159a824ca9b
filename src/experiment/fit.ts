// Fitting a bank as `nfp fit` and the demo do: labelled data split into fit rows and calibration
// rows (the tail), attack families by name, the model loaded with the detector's taps under the
// neuron budget that the activation memory allows, buildBank, then calibration on the held-out
// tail. Every option is checked before any work starts.
import { existsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { boundedAttacks, createAttacks } from '../attacks/index.js';
import type { AttackName, AttackSettings } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { bankFamily, buildBank, defaultImagesPerClass, defaultScreenSettings, writeBank } from '../bank/index.js';
import type { AttackFamily, AttackMode, BuildProgress, FingerprintBank, ScreenSettings } from '../bank/index.js';
import { FingerprintDetector, defaultCalibration, defaultDraws } from '../detect/index.js';
import { cardPath, cardTaps, defaultActivationBytes, neuronBudget } from '../model/index.js';
import type { TapSpec } from '../model/index.js';
import type { ImageReadOptions, LabelledData } from './data.js';
import { loadLabelledFor, rowsOf } from './data.js';
import { defaultFit, fitBatchSize } from './defaults.js';
import { ExperimentError } from './errors.js';

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
  taps?: TapSpec;
  /** Activation memory one class's screen may hold, which sets the neuron budget of 'wide' taps (bytes). */
  activationBytes?: number;
  screen?: Partial<ScreenSettings>;
  cleanPerClass?: number;
  attackedPerClass?: number;
  attackMode?: AttackMode;
  /** Classes to fit (a shard; no calibration then). */
  classes?: number[];
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
  const data =
    typeof options.data === 'string' ? await loadLabelledFor(options.model, options.data, options) : options.data;
  const rows = data.images.dims[0]!;
  // The calibration share is the tail of the data, so the fit never sees it. Shards are calibrated after merging.
  const calibrateRows =
    options.classes === undefined ? Math.floor(rows * (options.calibrateShare ?? defaultFit.calibrateShare)) : 0;
  const fitRows = rows - calibrateRows;
  const attackNames = options.attacks ?? defaultFit.attacks;
  const families: AttackFamily[] = createAttacks([...attackNames], options.attack ?? {}).map(
    ({ name, attack, settings }) => ({
      name,
      attack,
      settings: { ...settings },
    }),
  );
  const cleanPerClass = options.cleanPerClass ?? defaultImagesPerClass.clean;
  const attackedPerClass = options.attackedPerClass ?? defaultImagesPerClass.attacked;
  const activationBytes = options.activationBytes ?? defaultActivationBytes;
  const screenRows = cleanPerClass + families.length * attackedPerClass;
  const model = await GradientModel.load(options.model, {
    taps: options.taps ?? 'default',
    neuronBudget: neuronBudget(screenRows, activationBytes),
    ...(options.seed !== undefined ? { tapSeed: options.seed } : {}),
    inputShape: data.images.dims.slice(1),
    batchSize: options.batchSize ?? fitBatchSize(data.images.dims.slice(1)),
  });
  let bank: FingerprintBank;
  try {
    checkAgainstModel(options, model);
    options.onMessage?.(describeTapPlan(model, options.model, screenRows, activationBytes));
    bank = await buildBank({
      model,
      images: rowsOf(data.images, 0, fitRows),
      labels: data.labels.subarray(0, fitRows),
      families,
      ...(options.classes !== undefined ? { classes: options.classes } : {}),
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
  if (calibrateRows > 0) bank = await calibrateBank(options, bank, rowsOf(data.images, fitRows, rows));
  if (options.out !== undefined) writeBank(options.out, bank);
  return { bank, summary: fitSummary(options, bank, model, fitRows, calibrateRows, started) };
}

/** Options that can be judged without data or model: judged first, so that a bad one costs nothing. */
export function checkFitOptions(options: FitExperimentOptions): void {
  const attacks = options.attacks ?? defaultFit.attacks;
  const bounded = attacks.filter((a) => boundedAttacks.includes(a));
  if (bounded.length > 0 && options.attack?.eps === undefined)
    throw new ExperimentError(`--attacks ${bounded.join(',')} need --eps`, '--eps');
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
