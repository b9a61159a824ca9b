// Peer detectors side by side on the same images: each baseline is fitted on the fit rows, calibrated
// on clean calibration rows for a target false-positive rate, and scored on held-out clean images and
// each attack's held-out adversarial images: AUC, TPR at 1% and 5% FPR, TPR and measured FPR at the
// calibrated threshold, and the fit and scoring cost per image. JSON-ready, for metrics.json.
import type { GradientModel } from '../autodiff/index.js';
import { auc, rateAbove, tprAtFpr } from '../eval/metrics.js';
import type { ImageBatch } from '../model/index.js';
import type { Baseline } from './baseline.js';
import { baselineNames, checkImages } from './baseline.js';
import type { BaselineFitData, BaselineName } from './baseline.js';
import { LidDetector } from './lid.js';
import type { LidOptions } from './lid.js';
import { MahalanobisDetector } from './mahalanobis.js';
import type { MahalanobisOptions } from './mahalanobis.js';
import { FeatureSqueezingDetector } from './squeeze.js';
import type { SqueezeOptions } from './squeeze.js';

export const baselineEvaluationSchema = 'nfp-baselines/1';

export interface BaselineSettings {
  mahalanobis?: MahalanobisOptions;
  lid?: LidOptions;
  squeeze?: SqueezeOptions;
}

/** A baseline by name, on a model whose taps are the layers it uses. */
export function createBaseline(name: BaselineName, model: GradientModel, settings: BaselineSettings = {}): Baseline {
  switch (name) {
    case 'mahalanobis':
      return new MahalanobisDetector(model, settings.mahalanobis);
    case 'lid':
      return new LidDetector(model.classifier, settings.lid);
    case 'squeeze':
      return new FeatureSqueezingDetector(model, settings.squeeze);
    default:
      throw new RangeError(`Expected one of ${baselineNames.join(', ')} for baseline but received ${String(name)}`);
  }
}

export interface BaselineEvaluationOptions {
  /** The model, with the taps the baselines use (e.g. the bank's). */
  model: GradientModel;
  /** Baselines by name (made with `settings`) or already constructed; fitted here either way. */
  baselines: ReadonlyArray<BaselineName | Baseline>;
  settings?: BaselineSettings;
  /** The fit rows: clean images with their labels, attacked images per attack family. */
  fit: BaselineFitData;
  /** Clean calibration rows. */
  calibration: ImageBatch;
  /** Held-out clean images (e.g. the correctly classified ones) and adversarial images per attack. */
  heldOut: { clean: ImageBatch; attacked: Readonly<Record<string, ImageBatch>> };
  /** Target false-positive rate of the calibrated threshold (default 0.05). */
  fpr?: number;
  onProgress?: (baseline: string, stage: 'fit' | 'calibrate' | 'score', detail?: string) => void;
}

export interface BaselineAttackResult {
  attack: string;
  adversarial: number;
  auc: number;
  tprAt1: number;
  tprAt5: number;
  tprAtThreshold: number;
}

export interface BaselineResult {
  name: BaselineName;
  /** What the fit chose (magnitude, regression weights, squeezers, ...). */
  settings: Record<string, unknown>;
  threshold: number;
  /** Share of held-out clean images above the threshold. */
  fprAtThreshold: number;
  cost: {
    fitImages: number;
    fitSeconds: number;
    fitSecondsPerImage: number;
    scoredImages: number;
    scoreSeconds: number;
    scoreSecondsPerImage: number;
  };
  attacks: BaselineAttackResult[];
}

export interface BaselineEvaluation {
  schema: typeof baselineEvaluationSchema;
  fpr: number;
  clean: number;
  calibration: number;
  baselines: BaselineResult[];
  seconds: number;
}

export async function evaluateBaselines(options: BaselineEvaluationOptions): Promise<BaselineEvaluation> {
  const started = performance.now();
  const fpr = options.fpr ?? 0.05;
  const shape = options.model.inputShape;
  const cleanRows = checkImages('heldOut.clean', options.heldOut.clean, shape);
  const calibrationRows = checkImages('calibration', options.calibration, shape);
  const attacks = Object.entries(options.heldOut.attacked);
  for (const [name, images] of attacks) checkImages(`heldOut.attacked.${name}`, images, shape);
  if (cleanRows === 0) throw new RangeError('Expected held-out clean images but received none');
  const progress = options.onProgress ?? (() => {});
  const results: BaselineResult[] = [];
  for (const spec of options.baselines) {
    const baseline = typeof spec === 'string' ? createBaseline(spec, options.model, options.settings) : spec;
    progress(baseline.name, 'fit');
    await baseline.fit(options.fit);
    progress(baseline.name, 'calibrate');
    const threshold = await baseline.calibrate(options.calibration, { fpr });
    // Scoring cost counts the held-out images only, not the calibration.
    baseline.cost.score = { images: 0, seconds: 0 };
    progress(baseline.name, 'score', 'clean');
    const clean = Array.from(await baseline.score(options.heldOut.clean));
    const rows: BaselineAttackResult[] = [];
    for (const [attack, images] of attacks) {
      progress(baseline.name, 'score', attack);
      const adversarial = Array.from(await baseline.score(images));
      rows.push({
        attack,
        adversarial: adversarial.length,
        auc: adversarial.length > 0 ? auc(clean, adversarial) : Number.NaN,
        tprAt1: tprAtFpr(clean, adversarial, 0.01),
        tprAt5: tprAtFpr(clean, adversarial, 0.05),
        tprAtThreshold: rateAbove(adversarial, threshold),
      });
    }
    const { fit, score } = baseline.cost;
    results.push({
      name: baseline.name,
      settings: baseline.settings(),
      threshold,
      fprAtThreshold: rateAbove(clean, threshold),
      cost: {
        fitImages: fit.images,
        fitSeconds: fit.seconds,
        fitSecondsPerImage: fit.images > 0 ? fit.seconds / fit.images : 0,
        scoredImages: score.images,
        scoreSeconds: score.seconds,
        scoreSecondsPerImage: score.images > 0 ? score.seconds / score.images : 0,
      },
      attacks: rows,
    });
  }
  return {
    schema: baselineEvaluationSchema,
    fpr,
    clean: cleanRows,
    calibration: calibrationRows,
    baselines: results,
    seconds: (performance.now() - started) / 1000,
  };
}

/** One markdown row per baseline and attack: AUC, TPR at 1% and 5% FPR, measured FPR, cost per image. */
export function baselineTable(evaluation: BaselineEvaluation): string {
  const ms = (s: number) => (s * 1000).toFixed(s * 1000 < 10 ? 2 : 1);
  const lines = [
    '| detector | attack | adversarial | AUC | TPR at 1% FPR | TPR at 5% FPR | TPR at threshold | measured FPR | ' +
      'fit ms/image | score ms/image |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const b of evaluation.baselines)
    for (const a of b.attacks)
      lines.push(
        `| ${b.name} | ${a.attack} | ${a.adversarial} | ${a.auc.toFixed(4)} | ${a.tprAt1.toFixed(3)} | ` +
          `${a.tprAt5.toFixed(3)} | ${a.tprAtThreshold.toFixed(3)} | ${b.fprAtThreshold.toFixed(3)} | ` +
          `${ms(b.cost.fitSecondsPerImage)} | ${ms(b.cost.scoreSecondsPerImage)} |`,
      );
  return `${lines.join('\n')}\n`;
}
