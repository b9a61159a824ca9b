// Calibrating a bank as `nfp bank calibrate` does: held-out clean images decoded to the bank's model
// input, thresholds for a target false-positive rate over many random draws, and the calibrated bank
// written atomically. Every option, the bank and the data's header are checked before the model runs.
import { readBank, writeBank } from '../bank/index.js';
import type { Calibration } from '../bank/index.js';
import { FingerprintDetector, defaultCalibration, defaultDraws } from '../detect/index.js';
import type { ImageReadOptions } from './data.js';
import { openData, readRows } from './data.js';
import { ExperimentError } from './errors.js';
import { checkOutPath } from './fit.js';

export interface CalibrateExperimentOptions {
  model: string;
  /** The bank to calibrate (.nfp). */
  bank: string;
  /** Held-out clean images, not used to fit the bank. */
  data: string;
  limit?: number;
  fpr?: number;
  draws?: number;
  drawsPerImage?: number;
  confidence?: boolean;
  image?: ImageReadOptions;
  /** Where the calibrated bank goes (may be `bank`). */
  out: string;
}

export async function calibrateExperiment(options: CalibrateExperimentOptions): Promise<{ out: string } & Calibration> {
  const fpr = options.fpr ?? defaultCalibration.fpr;
  if (!(fpr > 0 && fpr < 1))
    throw new ExperimentError(`Expected a rate in (0, 1) for --fpr but received ${fpr}`, '--fpr');
  for (const [option, value] of [
    ['--draws', options.draws],
    ['--draws-per-image', options.drawsPerImage],
    ['--limit', options.limit],
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1))
      throw new ExperimentError(`Expected a positive integer for ${option} but received ${value}`, option);
  }
  checkOutPath(options.out, '.nfp', '--out');
  const bank = readBank(options.bank);
  const data = await openData(options.data, {
    inputShape: bank.header.model.inputShape,
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.image !== undefined ? { image: options.image } : {}),
  });
  const detector = await FingerprintDetector.load({
    model: options.model,
    bank,
    draws: options.draws ?? defaultDraws,
    confidence: options.confidence === true,
  });
  try {
    // The detector calibrates on one batch: the images of the file are held, and their activations.
    const calibration = await detector.calibrate(await readRows(data), {
      fpr,
      drawsPerImage: options.drawsPerImage ?? defaultCalibration.drawsPerImage,
    });
    writeBank(options.out, detector.bank);
    return { out: options.out, ...calibration };
  } finally {
    await detector.release();
  }
}
