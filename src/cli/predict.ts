// `nfp predict --model <m> --data <idx|npy|folder> [--labels <npy|idx>]`: predictions as JSON
// lines on stdout (or a summary with --summary), and the accuracy when labels are known.
import type { Command } from 'commander';

import { predictExperiment } from '../experiment/index.js';
import { addImageOptions, asUsage, imageReadOptionsOf } from './options.js';
import type { ImageFlags } from './options.js';
import { parsePositiveInt } from './parse.js';

export interface PredictOptions extends ImageFlags {
  model: string;
  data: string;
  labels?: string;
  batchSize?: number;
  limit?: number;
  summary?: boolean;
}

export function registerPredictCommand(program: Command): Command {
  const command = program
    .command('predict')
    .description('classify images; with labels, report the accuracy')
    .requiredOption('--model <model>', 'an ONNX image classifier')
    .requiredOption(
      '--data <path>',
      'images: an IDX file (.gz or not), a .npy tensor [N,C,H,W], or a folder of class folders',
    )
    .option('--labels <path>', 'labels for --data: .npy (int) or IDX; folders and paired IDX files supply their own')
    .option('--batch-size <n>', 'images per inference call, and per read of --data (default 64)', parsePositiveInt)
    .option('--limit <n>', 'only the first n images', parsePositiveInt)
    .option('--summary', 'print only the summary line (JSON) on stdout');
  return addImageOptions(command)
    .addHelpText(
      'after',
      '\nExample:\n  $ nfp predict --model models/fmnist-cnn.onnx ' +
        '--data data/fashion-mnist/t10k-images-idx3-ubyte.gz --summary\n',
    )
    .action(async (options: PredictOptions, cmd: Command) => {
      await asUsage(cmd, () => predictCommand(options));
    });
}

export async function predictCommand(options: PredictOptions): Promise<void> {
  const lines = options.summary !== true;
  const summary = await predictExperiment({
    model: options.model,
    data: options.data,
    ...(options.labels !== undefined ? { labels: options.labels } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    image: imageReadOptionsOf(options),
    ...(lines
      ? {
          onPrediction: ({ index, label, truth, logits }) => {
            const rounded = Array.from(logits, (v) => Number(v.toPrecision(6)));
            const line = { index, label, ...(truth !== undefined ? { truth } : {}), logits: rounded };
            process.stdout.write(`${JSON.stringify(line)}\n`);
          },
        }
      : {}),
  });
  (lines ? process.stderr : process.stdout).write(`${JSON.stringify(summary)}\n`);
}
