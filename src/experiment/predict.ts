// Classifying images as `nfp predict` does: a file or folder read a batch at a time (memory depends on
// the batch, not on the file), one prediction per image handed to the caller as it is made, and a
// summary with the accuracy when labels are known. Options are checked before the model runs.
import { Classifier } from '../model/index.js';
import type { ImageReadOptions } from './data.js';
import { openData } from './data.js';
import { ExperimentError } from './errors.js';

export interface PredictExperimentOptions {
  model: string;
  data: string;
  labels?: string;
  limit?: number;
  /** Images per inference call, and per read of the data (default 64). */
  batchSize?: number;
  image?: ImageReadOptions;
  /** Each image's prediction, in order, as soon as its batch is classified. */
  onPrediction?: (prediction: Prediction) => void;
}

export interface Prediction {
  index: number;
  label: number;
  /** The true label, when known. */
  truth?: number;
  logits: Float32Array;
}

export interface PredictSummary {
  model: string;
  images: number;
  accuracy?: number;
  correct?: number;
  seconds: number;
  imagesPerSecond: number;
}

export const defaultPredictBatch = 64;

export async function predictExperiment(options: PredictExperimentOptions): Promise<PredictSummary> {
  const batchSize = options.batchSize ?? defaultPredictBatch;
  for (const [option, value] of [
    ['--batch-size', batchSize],
    ['--limit', options.limit],
  ] as const) {
    if (value !== undefined && !(Number.isSafeInteger(value) && value >= 1))
      throw new ExperimentError(`Expected a positive integer for ${option} but received ${value}`, option);
  }
  const classifier = await Classifier.load(options.model, { taps: [], batchSize });
  try {
    const data = await openData(options.data, {
      ...(options.labels !== undefined ? { labels: options.labels } : {}),
      ...(options.limit !== undefined ? { limit: options.limit } : {}),
      ...(options.image !== undefined ? { image: options.image } : {}),
      inputShape: classifier.inputShape,
    });
    const { labels } = data;
    const started = performance.now();
    let correct = 0;
    for await (const batch of data.reader.batches(batchSize, { to: data.rows })) {
      const out = await classifier.run(batch, { activations: false });
      for (let r = 0; r < out.rows; r++) {
        const index = batch.from + r;
        const label = out.labels[r]!;
        if (labels !== undefined && labels[index] === label) correct++;
        options.onPrediction?.({
          index,
          label,
          ...(labels !== undefined ? { truth: labels[index]! } : {}),
          logits: out.logits.subarray(r * out.classes, (r + 1) * out.classes),
        });
      }
    }
    const seconds = (performance.now() - started) / 1000;
    return {
      model: classifier.source,
      images: data.rows,
      ...(labels !== undefined ? { accuracy: data.rows === 0 ? 0 : correct / data.rows, correct } : {}),
      seconds: Number(seconds.toFixed(3)),
      imagesPerSecond: Number((data.rows / Math.max(seconds, 1e-9)).toFixed(1)),
    };
  } finally {
    await classifier.release();
  }
}
