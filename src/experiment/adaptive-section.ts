// nfp evaluate --adaptive: the adaptive evaluation of one bank on its held-out rows, added to the
// report folder that the evaluation wrote (metrics.json gains `adaptive`, report.md a section).
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';

import { readBank } from '../bank/index.js';
import type { FingerprintBank } from '../bank/index.js';
import type { ImageBatch } from '../model/index.js';
import { adaptiveExperiment } from './adaptive.js';
import type { AdaptiveResults, AdaptiveSettings } from './adaptive.js';
import { adaptiveMarkdown } from './adaptive-report.js';
import { rowsOf } from './data.js';
import { ExperimentError } from './errors.js';

export interface AdaptiveSectionOptions {
  model: string;
  bank: FingerprintBank;
  attackerBank?: string | FingerprintBank;
  /** The whole data file, in the model's layout, and its digest (to find the bank's calibration rows). */
  data: { images: ImageBatch; labels: Int32Array; digest: string };
  /** The first row neither the bank's fit nor its calibration used. */
  heldOutStart: number;
  settings: AdaptiveSettings;
  seed: number;
  paths: { metrics: string; markdown: string };
  onProgress?: (stage: string, done: number, total: number) => void;
}

export async function adaptiveSection(options: AdaptiveSectionOptions): Promise<AdaptiveResults> {
  const { bank, data, settings } = options;
  const record = bank.header.fit.data;
  const cal = record?.calibration;
  if (record === undefined || record.sha256 !== data.digest || cal === undefined)
    throw new ExperimentError(
      '--adaptive needs --data to be the data the bank was fitted and calibrated on (it takes the 1% and static ' +
        'thresholds from the calibration rows)',
      '--adaptive',
    );
  const start = settings.start ?? options.heldOutStart;
  const rows = data.images.dims[0]!;
  if (start < options.heldOutStart || start >= rows)
    throw new ExperimentError(
      `--adaptive start=${start}: expected a held-out row in [${options.heldOutStart}, ${rows})`,
      '--adaptive',
    );
  const attackerBank = typeof options.attackerBank === 'string' ? readBank(options.attackerBank) : options.attackerBank;
  const results = await adaptiveExperiment({
    model: options.model,
    bank,
    ...(attackerBank !== undefined ? { attackerBank } : {}),
    images: rowsOf(data.images, start, rows),
    labels: data.labels.subarray(start),
    firstRow: start,
    calibration: rowsOf(data.images, cal[0], cal[1]),
    settings,
    seed: options.seed,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  const metrics = JSON.parse(readFileSync(options.paths.metrics, 'utf8')) as Record<string, unknown>;
  writeFileSync(options.paths.metrics, `${JSON.stringify({ ...metrics, adaptive: results }, null, 1)}\n`);
  appendFileSync(options.paths.markdown, `\n${adaptiveMarkdown(results)}`);
  return results;
}
