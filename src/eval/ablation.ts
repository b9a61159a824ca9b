// Ablations on demand: the evaluation repeated with one setting changed at a time, on the same
// held-out attacked images, so that rows differ in that setting only. Draws per input (m) and bank
// size (top K) need no refit: the bank is used as it is, or cut to each class's top K. Neurons per
// fingerprint (k), candidates per class (C) and the taps change what the screen sees, so the bank is
// refitted on its own recorded fit rows with its recorded settings but the one. Every setting is
// recalibrated on the bank's recorded calibration rows as the original was (same FPR, combine and
// draws per image): thresholds depend on every one of these settings, so the bank's own would be
// wrong for all but its own. Draws are seeded, so a row can be reproduced.
import type { AttackModel } from '../attacks/index.js';
import { bankFamily } from '../bank/index.js';
import type {
  AttackMode,
  BuildProgress,
  Calibration,
  DataRecord,
  FingerprintBank,
  ScreenSettings,
} from '../bank/index.js';
import { tensorDigest } from '../data/index.js';
import { FingerprintDetector } from '../detect/index.js';
import { Classifier } from '../model/index.js';
import type { ImageBatch, TapSpec } from '../model/index.js';
import { defaultEvaluation, evaluate } from './evaluate.js';
import { recordedData, recordedFamilies, refitBank, sameFingerprints } from './refit.js';
import { refitParameters, settingLabel } from './ablation-spec.js';
import type { AblationParameter, AblationSpec } from './ablation-spec.js';
import { keepTopFingerprints } from './top-fingerprints.js';
import type { Ablation, AblationRow, AdversarialSet, EvaluationAttack } from './types.js';

/** A request that cannot be carried out; `setting` is the offending parameter=value when there is one. */
export class AblationError extends RangeError {
  constructor(
    message: string,
    readonly setting?: string,
  ) {
    super(message);
    this.name = 'AblationError';
  }
}

/**
 * Checks, before any attack runs, that every requested setting can be measured: the bank is
 * calibrated, `digest` is the SHA-256 of the data it records its fit and calibration rows in,
 * top stays within the fit's own top K, k within the tapped neurons, and refits can rebuild the
 * attack families. Throws an AblationError.
 */
export function checkAblations(bank: FingerprintBank, specs: readonly AblationSpec[], digest: string): void {
  const h = bank.header;
  const seen = new Set<AblationParameter>();
  for (const spec of specs) {
    if (seen.has(spec.parameter))
      throw new AblationError(`${spec.parameter} is ablated twice: give all its values at once`, spec.parameter);
    seen.add(spec.parameter);
  }
  if (specs.length === 0) return;
  if (h.calibration === undefined)
    throw new AblationError('the bank is not calibrated, so there is no calibration to repeat at each setting');
  let record: DataRecord;
  try {
    record = recordedData(bank, digest);
  } catch (error) {
    throw new AblationError(`${(error as Error).message}; pass the data the bank was fitted on`);
  }
  if (record.calibration === undefined)
    throw new AblationError(
      'the bank records no calibration rows (it was calibrated apart from its fit data), so it cannot be ' +
        'recalibrated as it was',
    );
  for (const spec of specs) {
    if (spec.parameter === 'top') {
      const over = spec.values.find((v) => v > h.fit.topK);
      if (over !== undefined)
        throw new AblationError(
          `the bank was fitted to keep at most ${h.fit.topK} fingerprints per class; a larger top needs a refit ` +
            `with nfp fit --top`,
          `top=${over}`,
        );
    }
    if (spec.parameter === 'k') {
      const over = spec.values.find((v) => v > h.neurons);
      if (over !== undefined)
        throw new AblationError(`k cannot exceed the bank's ${h.neurons} tapped neurons`, `k=${over}`);
    }
    if (refitParameters.includes(spec.parameter)) {
      try {
        recordedFamilies(bank);
      } catch (error) {
        throw new AblationError((error as Error).message, spec.parameter);
      }
    }
  }
}

/** Resolves every tap set of a taps ablation on the model, so a misspelt layer fails before any attack runs. */
export async function checkAblationTaps(
  model: string | Uint8Array,
  bank: FingerprintBank,
  specs: readonly AblationSpec[],
): Promise<void> {
  for (const spec of specs) {
    if (spec.parameter !== 'taps') continue;
    for (const taps of spec.values) {
      let classifier: Classifier;
      try {
        classifier = await Classifier.load(model, { taps, inputShape: bank.header.model.inputShape });
      } catch (error) {
        throw new AblationError((error as Error).message, `taps=${settingLabel(taps)}`);
      }
      const neurons = classifier.neurons;
      await classifier.release();
      if (neurons < bank.header.k)
        throw new AblationError(
          `the taps hold ${neurons} neurons, fewer than the bank's k = ${bank.header.k}`,
          `taps=${settingLabel(taps)}`,
        );
    }
  }
}

export interface AblationOptions {
  /** The ONNX model the bank was fitted on. */
  model: string | Uint8Array;
  /** The calibrated bank of the main evaluation. */
  bank: FingerprintBank;
  specs: readonly AblationSpec[];
  /** The whole data set the bank records its fit and calibration rows in, and its labels. */
  data: ImageBatch;
  dataLabels: Int32Array;
  /** The main evaluation's held-out images, attacks and attacked images: every row uses the same. */
  images: ImageBatch;
  labels: Int32Array;
  attacks: EvaluationAttack[];
  attackModel: AttackModel;
  adversarial: ReadonlyMap<string, AdversarialSet>;
  /** Draws per input for the settings other than draws (default: the calibration's). */
  draws?: number;
  detectors?: number;
  maxSources?: number;
  seed?: number;
  /** How the bank's attacked images were made, for refits (banks do not record it; default 'mixed'). */
  attackMode?: AttackMode;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export async function runAblations(options: AblationOptions): Promise<Ablation[]> {
  checkAblations(options.bank, options.specs, tensorDigest(options.data.data));
  const ctx = ablationContext(options);
  const out: Ablation[] = [];
  for (const spec of options.specs) {
    const rows: AblationRow[] = [];
    for (const value of spec.values as Array<number | TapSpec>) {
      const started = performance.now();
      const label = settingLabel(value);
      const stage = `${spec.parameter}=${label}`;
      const { variant, own, draws } = await variantFor(ctx, spec.parameter, value, stage);
      const measured = await measureVariant(ctx, variant, draws, stage);
      const reproduces =
        refitParameters.includes(spec.parameter) && own
          ? { reproducesBank: sameFingerprints(variant, options.bank) }
          : {};
      rows.push({ value, label, own, ...measured, ...reproduces, seconds: (performance.now() - started) / 1000 });
    }
    const refit = refitParameters.includes(spec.parameter);
    out.push({ parameter: spec.parameter, refit, detectors: ctx.detectors, rows });
  }
  return out;
}

/** What every setting of every ablation shares: the bank's calibration, the calibration images, the seeds. */
interface AblationContext {
  options: AblationOptions;
  calibration: Calibration;
  calibrationImages: ImageBatch;
  draws: number;
  detectors: number;
  seed: number;
  progress: (stage: string, done: number, total: number) => void;
}

function ablationContext(options: AblationOptions): AblationContext {
  const h = options.bank.header;
  const [from, to] = h.fit.data!.calibration!;
  const per = options.data.data.length / options.data.dims[0]!;
  return {
    options,
    calibration: h.calibration!,
    calibrationImages: {
      data: options.data.data.subarray(from * per, to * per),
      dims: [to - from, ...options.data.dims.slice(1)],
    },
    draws: options.draws ?? h.calibration!.draws,
    detectors: options.detectors ?? defaultEvaluation.detectors,
    seed: options.seed ?? 1,
    progress: options.onProgress ?? (() => {}),
  };
}

/** The bank at one setting (as it is, cut to its top K, or refitted), whether it is the bank's own, and the draws. */
async function variantFor(
  ctx: AblationContext,
  parameter: AblationParameter,
  value: number | TapSpec,
  stage: string,
): Promise<{ variant: FingerprintBank; own: boolean; draws: number }> {
  const { bank } = ctx.options;
  const h = bank.header;
  switch (parameter) {
    case 'draws':
      return { variant: bank, own: value === ctx.calibration.draws, draws: value as number };
    case 'top':
      return { variant: keepTopFingerprints(bank, value as number), own: value === h.fit.topK, draws: ctx.draws };
    case 'k':
    case 'candidates': {
      const variant = await refitVariant(ctx, stage, { screen: { [parameter]: value as number } });
      return { variant, own: value === h.fit[parameter], draws: ctx.draws };
    }
    case 'correlation': {
      const variant = await refitVariant(ctx, stage, { screen: { maxCorrelation: value as number } });
      return { variant, own: value === h.fit.maxCorrelation, draws: ctx.draws };
    }
    case 'taps': {
      const variant = await refitVariant(ctx, stage, { taps: value as TapSpec });
      const tensors = (b: FingerprintBank) => JSON.stringify(b.header.taps.map((t) => t.tensor));
      return { variant, own: tensors(variant) === tensors(bank), draws: ctx.draws };
    }
  }
}

/** Refits the bank on its recorded fit rows with one setting changed. */
async function refitVariant(
  ctx: AblationContext,
  stage: string,
  change: { screen?: Partial<ScreenSettings>; taps?: TapSpec },
): Promise<FingerprintBank> {
  const { options } = ctx;
  let classesTotal = 0;
  const fitted = await refitBank({
    model: options.model,
    bank: options.bank,
    data: options.data,
    labels: options.dataLabels,
    ...change,
    ...(options.attackMode !== undefined ? { attackMode: options.attackMode } : {}),
    onProgress: (p: BuildProgress) => {
      classesTotal = p.classesTotal;
      if (p.stage === 'done') ctx.progress(`${stage} refit`, p.classesDone, p.classesTotal);
    },
  });
  ctx.progress(`${stage} refit`, classesTotal, classesTotal);
  return fitted;
}

/** Recalibrates one variant as the bank was calibrated, and evaluates it on the shared attacked images. */
async function measureVariant(
  ctx: AblationContext,
  variant: FingerprintBank,
  draws: number,
  stage: string,
): Promise<Omit<AblationRow, 'value' | 'label' | 'own' | 'seconds'>> {
  const { options, calibration: cal, seed } = ctx;
  const detector = await FingerprintDetector.load({
    model: options.model,
    bank: variant,
    draws,
    combine: cal.combine,
    seed,
  });
  try {
    await detector.calibrate(ctx.calibrationImages, { fpr: cal.fpr, drawsPerImage: cal.drawsPerImage });
    const e = await evaluate({
      detector,
      attackModel: options.attackModel,
      images: options.images,
      labels: options.labels,
      attacks: options.attacks,
      adversarial: options.adversarial,
      detectors: ctx.detectors,
      seed,
      ...(options.maxSources !== undefined ? { maxSources: options.maxSources } : {}),
      onProgress: (s, done, total) => ctx.progress(`${stage} ${s}`, done, total),
    });
    const family = bankFamily(variant, draws).filter((f) => f.fingerprints > 0);
    const redundancies = family.map((f) => f.redundancy).filter((r): r is number => r !== null);
    return {
      fingerprints: variant.fingerprints,
      neurons: variant.header.neurons,
      draws,
      smallestClass: variant.header.classes
        .filter((c) => c.fitted)
        .reduce((least, c) => Math.min(least, c.count), Number.POSITIVE_INFINITY),
      distinctNeurons: family.reduce((n, f) => n + f.neurons, 0),
      ...(redundancies.length > 0 ? { redundancy: redundancies.reduce((a, b) => a + b, 0) / redundancies.length } : {}),
      fprAtThreshold: e.clean.fprAtThreshold,
      attacks: e.attacks.map((a) => ({
        attack: a.attack,
        adversarial: a.adversarial,
        auc: a.auc,
        tprAt5: a.tprAt5,
        tprAtThreshold: a.tprAtThreshold,
        aucMean: a.consistency.auc.mean,
        aucStd: a.consistency.auc.std,
      })),
    };
  } finally {
    await detector.release();
  }
}
