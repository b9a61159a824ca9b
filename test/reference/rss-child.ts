// An experiment in a process of its own, for its peak RSS: `node --import tsx rss-child.ts <json>` with
// {"predict": PredictExperimentOptions} or {"detect": {model, bank, threshold, inputs, batchSize}}.
// Prints one JSON line: images seen and the process's peak RSS in MB.
import { FingerprintDetector } from '../../src/detect/index.js';
import { detectFiles, predictExperiment } from '../../src/experiment/index.js';
import type { PredictExperimentOptions } from '../../src/experiment/index.js';
import { peakRssMB } from './peak-rss.js';

const spec = JSON.parse(process.argv[2]!) as {
  predict?: PredictExperimentOptions;
  detect?: { model: string; bank: string; threshold: number; inputs: string[]; batchSize?: number };
};
let images = 0;
if (spec.predict !== undefined) {
  images = (await predictExperiment(spec.predict)).images;
} else if (spec.detect !== undefined) {
  const { model, bank, threshold, inputs, batchSize } = spec.detect;
  const detector = await FingerprintDetector.load({ model, bank, threshold });
  try {
    for await (const _ of detectFiles(detector, { inputs, ...(batchSize !== undefined ? { batchSize } : {}) }))
      images++;
  } finally {
    await detector.release();
  }
}
process.stdout.write(`${JSON.stringify({ images, maxRssMB: peakRssMB() })}\n`);
