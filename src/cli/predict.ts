// `nfp predict --model <m> --data <idx|npy|folder> [--labels <npy|idx>]`: predictions as JSON
// lines on stdout (or a summary with --summary), and the accuracy when labels are known.
import { loadLabelFile, loadTensorFile } from '../data/index.js';
import { Classifier, readImageInput } from '../model/index.js';
import type { Layout } from '../model/index.js';

export interface PredictOptions {
  model: string;
  data: string;
  labels?: string;
  batchSize?: number;
  limit?: number;
  summary?: boolean;
  /** The model input's layout where its shape does not tell; the data are loaded in it. */
  layout?: Layout;
}

export async function predictCommand(options: PredictOptions): Promise<void> {
  const tensor = await loadTensorFile(options.data, {
    layout: (await readImageInput(options.model, options.layout)).layout,
  });
  let labels = options.labels !== undefined ? loadLabelFile(options.labels) : tensor.labels;
  let data = tensor.data;
  let dims: readonly number[] = tensor.dims;
  if (options.limit !== undefined && options.limit < dims[0]!) {
    const per = data.length / dims[0]!;
    data = data.subarray(0, options.limit * per);
    dims = [options.limit, ...dims.slice(1)];
    labels = labels?.subarray(0, options.limit);
  }
  if (labels !== undefined && labels.length !== dims[0]) {
    throw new Error(`--labels has ${labels.length} labels but --data has ${dims[0]} images`);
  }
  const classifier = await Classifier.load(options.model, {
    taps: [],
    batchSize: options.batchSize ?? 64,
    inputShape: dims.slice(1),
    ...(options.layout ? { layout: options.layout } : {}),
  });
  try {
    const started = performance.now();
    const out = await classifier.run({ data, dims });
    const seconds = (performance.now() - started) / 1000;
    let correct = 0;
    for (let i = 0; i < out.rows; i++) {
      const label = out.labels[i]!;
      if (labels !== undefined && labels[i] === label) correct++;
      if (options.summary !== true) {
        const logits = Array.from(out.logits.subarray(i * out.classes, (i + 1) * out.classes), (v) =>
          Number(v.toPrecision(6)),
        );
        process.stdout.write(
          `${JSON.stringify({ index: i, label, ...(labels ? { truth: labels[i] } : {}), logits })}\n`,
        );
      }
    }
    const summary = {
      model: classifier.source,
      images: out.rows,
      ...(labels !== undefined ? { accuracy: correct / out.rows, correct } : {}),
      seconds: Number(seconds.toFixed(3)),
      imagesPerSecond: Number((out.rows / seconds).toFixed(1)),
    };
    (options.summary === true ? process.stdout : process.stderr).write(`${JSON.stringify(summary)}\n`);
  } finally {
    await classifier.release();
  }
}
