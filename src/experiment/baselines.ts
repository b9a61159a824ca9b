// The peer detectors of `nfp evaluate --baselines` on the images the fingerprint detector is evaluated
// on: fitted on the bank's fit rows (their clean images and labels, and the bank's attack families run
// untargeted on correctly classified ones), calibrated on the bank's calibration rows for the bank's
// false-positive rate, and scored on the evaluation's held-out clean images (the correctly classified
// ones) and its adversarial images, so each row is comparable to the fingerprint detector's.
import { attackNames, createAttacks } from '../attacks/index.js';
import type { AttackName, AttackSettings } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { baselineNames, evaluateBaselines } from '../baselines/index.js';
import type { BaselineEvaluation, BaselineName } from '../baselines/index.js';
import type { FingerprintBank } from '../bank/index.js';
import { gatherImages } from '../data/index.js';
import type { ImageBatch } from '../data/index.js';
import type { AdversarialSet } from '../eval/index.js';
import { SeededRandom } from '../random.js';
import type { LabelledData } from './data.js';
import { rowsOf } from './data.js';
import { fitBatchSize } from './defaults.js';
import { ExperimentError } from './errors.js';

/** Correctly classified fit images each attack family is run on, for the baselines' regressions. */
export const defaultBaselineFitSources = 1000;

export interface BaselineExperimentOptions {
  model: string;
  bank: FingerprintBank;
  data: LabelledData;
  baselines: readonly BaselineName[];
  /** The evaluation's held-out rows (the correctly classified ones are the clean images scored). */
  heldOut: { images: ImageBatch; labels: Int32Array };
  /** The evaluation's adversarial images per attack. */
  adversarial: ReadonlyMap<string, AdversarialSet>;
  /** A model without taps, for predictions and the fit rows' attacks. */
  attackModel: GradientModel;
  fitSources?: number;
  seed?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** Checks, before any work, that the baselines can be fitted on the bank's rows of `data`. */
export function checkBaselineRequest(
  baselines: readonly string[],
  bank: FingerprintBank,
  data: Pick<LabelledData, 'digest'>,
): void {
  for (const b of baselines)
    if (!(baselineNames as readonly string[]).includes(b))
      throw new ExperimentError(
        `Expected baselines among ${baselineNames.join(', ')} for --baselines but received ${b}`,
        '--baselines',
      );
  const record = bank.header.fit.data;
  if (record === undefined || record.sha256 !== data.digest || record.calibration === undefined)
    throw new ExperimentError(
      '--baselines fit on the rows the bank was fitted and calibrated on: --data must be that data set ' +
        '(the bank records no fit and calibration rows of it)',
      '--baselines',
    );
  const unknown = bank.header.families.filter((f) => !(attackNames as readonly string[]).includes(f));
  if (unknown.length > 0)
    throw new ExperimentError(
      `--baselines run the bank's attack families on its fit rows, but ${unknown.join(', ')} is no attack name`,
      '--baselines',
    );
}

export async function baselineExperiment(options: BaselineExperimentOptions): Promise<BaselineEvaluation> {
  const { bank, data, attackModel } = options;
  checkBaselineRequest(options.baselines, bank, data);
  const record = bank.header.fit.data!;
  const progress = options.onProgress ?? (() => {});
  const seed = options.seed ?? 1;

  // Fit rows: every clean image with its label; the bank's families on shuffled correctly classified ones.
  const fitImages = rowsOf(data.images, record.fit[0], record.fit[1]);
  const fitLabels = data.labels.subarray(record.fit[0], record.fit[1]);
  const fitCorrect = await correctRows(attackModel, fitImages, fitLabels);
  const rng = new SeededRandom(seed);
  for (let i = fitCorrect.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [fitCorrect[i], fitCorrect[j]] = [fitCorrect[j]!, fitCorrect[i]!];
  }
  const perFamily = options.fitSources ?? defaultBaselineFitSources;
  const attacked: Record<string, ImageBatch> = {};
  for (const [f, family] of bank.header.families.entries()) {
    // Disjoint sources per family while there are enough, as many as there are otherwise.
    const from = (f * perFamily) % Math.max(1, fitCorrect.length);
    const chosen = fitCorrect.slice(from, from + perFamily);
    const settings = (bank.header.fit.attacks[family] ?? {}) as AttackSettings;
    const [spec] = createAttacks([family as AttackName], settings);
    progress(`baselines: ${family} on fit rows`, 0, 1);
    const run = await spec!.attack.run(attackModel, gatherImages(fitImages, chosen), {
      labels: Int32Array.from(chosen, (i) => fitLabels[i]!),
      seed: seed + 100 + f,
    });
    const hit = [...run.success.keys()].filter((i) => run.success[i]);
    attacked[family] = gatherImages({ data: run.adv, dims: run.dims }, hit);
    progress(`baselines: ${family} on fit rows`, 1, 1);
  }

  // Held out: the correctly classified images (as the evaluation's clean scores) and its adversarial images.
  const correct = await correctRows(attackModel, options.heldOut.images, options.heldOut.labels);
  const heldAttacked: Record<string, ImageBatch> = {};
  for (const [name, set] of options.adversarial) heldAttacked[name] = set.images;

  const shape = data.images.dims.slice(1);
  const model = await GradientModel.load(options.model, {
    taps: bank.tapRequests,
    inputShape: shape,
    batchSize: fitBatchSize(shape),
  });
  try {
    return await evaluateBaselines({
      model,
      baselines: options.baselines,
      fit: { clean: { images: fitImages, labels: Int32Array.from(fitLabels) }, attacked },
      calibration: rowsOf(data.images, record.calibration![0], record.calibration![1]),
      heldOut: { clean: gatherImages(options.heldOut.images, correct), attacked: heldAttacked },
      fpr: bank.header.calibration?.fpr ?? 0.05,
      onProgress: (name, stage, detail) => progress(`baselines: ${name} ${stage}${detail ? ` ${detail}` : ''}`, 0, 1),
    });
  } finally {
    await model.release();
  }
}

/** Rows whose prediction is their label. */
async function correctRows(model: GradientModel, images: ImageBatch, labels: Int32Array): Promise<number[]> {
  const out = await model.classifier.run(images);
  return [...out.labels.keys()].filter((i) => out.labels[i] === labels[i]);
}
