// Calibrating a bank as `nfp bank calibrate` does: held-out clean images decoded to the bank's model
// input, thresholds for a target false-positive rate over many random draws, and the calibrated bank
// written atomically. Every option, the bank and the data's header are checked before the model runs.
// `heldOut` takes the rows the bank records as held out from its fit (what a sharded fit leaves for
// the aggregation step), so merged shards calibrate as one `nfp fit` would.
import { readBank, writeBank } from '../bank/index.js';
import type { Calibration, DataRecord } from '../bank/index.js';
import { FingerprintDetector, defaultCalibration, defaultDraws } from '../detect/index.js';
import { readImageInput } from '../model/index.js';
import type { Layout } from '../model/index.js';
import type { ImageReadOptions } from './data.js';
import { openData, readRows } from './data.js';
import type { OpenData } from './data.js';
import { ExperimentError } from './errors.js';
import { checkOutPath } from './fit.js';

export interface CalibrateExperimentOptions {
  model: string;
  /** The bank to calibrate (.nfp). */
  bank: string;
  /** Held-out clean images, not used to fit the bank. */
  data: string;
  limit?: number;
  /** Calibrate on the rows of `data` that the bank records as held out from its fit (its data must be the fit's). */
  heldOut?: boolean;
  /** Seeded draws (reproducible thresholds, as a seeded `nfp fit` calibrates). */
  seed?: number;
  fpr?: number;
  draws?: number;
  drawsPerImage?: number;
  confidence?: boolean;
  image?: ImageReadOptions;
  /** The model input's layout where its declared shape does not tell (default: detected from it). */
  layout?: Layout;
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
  if (options.heldOut === true && options.limit !== undefined)
    throw new ExperimentError('Expected --held-out or --limit but received both', '--limit');
  const bank = readBank(options.bank);
  const layout = (await readImageInput(options.model, options.layout)).layout;
  const data = await openData(options.data, {
    inputShape: bank.header.model.inputShape,
    layout,
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.image !== undefined ? { image: options.image } : {}),
  });
  const detector = await FingerprintDetector.load({
    model: options.model,
    bank,
    draws: options.draws ?? defaultDraws,
    confidence: options.confidence === true,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    layout,
  });
  try {
    // The detector calibrates on one batch: the images of the file are held, and their activations.
    const images = options.heldOut === true ? await heldOutRows(data, bank.header.fit.data) : await readRows(data);
    const calibration = await detector.calibrate(images, {
      fpr,
      drawsPerImage: options.drawsPerImage ?? defaultCalibration.drawsPerImage,
    });
    writeBank(options.out, detector.bank);
    return { out: options.out, ...calibration };
  } finally {
    await detector.release();
  }
}

/** The rows the bank's fit held out, read from data that must be the fit's (the same name and length). */
async function heldOutRows(data: OpenData, record: DataRecord | undefined) {
  const range = record?.calibration;
  if (record === undefined || range === undefined)
    throw new ExperimentError(
      '--held-out needs a bank whose fit held rows out (nfp fit --calibrate-share)',
      '--held-out',
    );
  if (data.reader.dims[0] !== record.images || data.source !== record.source)
    throw new ExperimentError(
      `--held-out needs the data the bank was fitted on (${record.source}, ${record.images} images) but --data is ` +
        `${data.source} with ${data.reader.dims[0]} images`,
      '--data',
    );
  const [, c, h, w] = data.reader.dims;
  const [from, to] = range;
  const images = new Float32Array((to - from) * c * h * w);
  for await (const batch of data.reader.batches(4096, { from, to }))
    images.set(batch.data, (batch.from - from) * c * h * w);
  return { data: images, dims: [to - from, c, h, w] };
}
