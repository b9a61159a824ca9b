// `nfp detect`: scores images with a model and its bank; one JSON line per image on stdout.
import { readFileSync } from 'node:fs';

import type { Command } from 'commander';
import { Option } from 'commander';

import { FingerprintDetector } from '../detect/index.js';
import type { Scorer } from '../detect/index.js';
import { detectFiles } from '../experiment/index.js';
import { addImageOptions, asUsage, imageReadOptionsOf } from './options.js';
import type { ImageFlags } from './options.js';
import { parseInteger, parseNumber, parsePositiveInt } from './parse.js';
import { significant } from './table.js';

export interface DetectCommandOptions extends ImageFlags {
  model: string;
  bank: string;
  draws?: number;
  threshold?: number;
  scorer?: Scorer;
  seed?: number;
  explain?: boolean;
  allowModelMismatch?: boolean;
  unscoredClasses?: 'flag' | 'pass';
  publicKey?: string;
  batchSize?: number;
}

export function registerDetectCommand(program: Command): Command {
  const command = program
    .command('detect')
    .description(
      'score images for adversarial manipulation: one JSON line per image {input, index, label, score, attacked, ' +
        'threshold}',
    )
    .argument('<inputs...>', 'image files, .npy tensors [N,C,H,W] or IDX files (as many as you like)')
    .requiredOption('--model <model>', 'the ONNX classifier the bank was fitted on')
    .requiredOption('--bank <bank.nfp>', 'a calibrated bank (nfp fit)')
    .option('--draws <n>', "fingerprints drawn per image (default: the calibration's)", parsePositiveInt)
    .option('--threshold <t>', 'decide with this threshold instead of the calibration', parseNumber)
    .addOption(
      new Option(
        '--scorer <name>',
        'score: Gaussian log-likelihood ratio, vote share, or clean log-likelihood',
      ).choices(['llr', 'vote', 'likelihood']),
    )
    .option('--seed <n>', 'reproducible draws (testing only)', parseInteger)
    .option('--explain', 'add the drawn fingerprints and their terms')
    .option('--allow-model-mismatch', 'accept a bank fitted on a model with other bytes')
    .option('--public-key <key.pub>', 'refuse the bank unless it is signed with this key (nfp bank sign)')
    .addOption(
      new Option(
        '--unscored-classes <flag|pass>',
        'inputs predicted as a class without fingerprints: reported attacked (flag, the default) or clean (pass)',
      ).choices(['flag', 'pass']),
    )
    .option('--batch-size <n>', 'rows of a tensor file scored at a time (default 128)', parsePositiveInt);
  return addImageOptions(command)
    .addHelpText(
      'after',
      '\nExamples:\n  $ nfp detect --model models/fmnist-cnn.onnx --bank bank.nfp suspicious.png\n  $ nfp detect ' +
        '--model models/fmnist-cnn.onnx --bank bank.nfp pgd.npy | jq -c "select(.attacked)"\n',
    )
    .action(async (inputs: string[], options: DetectCommandOptions, cmd: Command) => {
      await asUsage(cmd, () => detectCommand(inputs, options));
    });
}

export async function detectCommand(inputs: string[], options: DetectCommandOptions): Promise<void> {
  const detector = await FingerprintDetector.load({
    model: options.model,
    bank: options.bank,
    ...(options.draws !== undefined ? { draws: options.draws } : {}),
    ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
    ...(options.scorer !== undefined ? { scorer: options.scorer } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(options.allowModelMismatch ? { allowModelMismatch: true } : {}),
    ...(options.unscoredClasses !== undefined ? { unscoredClasses: options.unscoredClasses } : {}),
    ...(options.publicKey !== undefined ? { publicKey: readFileSync(options.publicKey) } : {}),
  });
  try {
    const results = detectFiles(detector, {
      inputs,
      ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
      image: imageReadOptionsOf(options),
      explain: options.explain === true,
    });
    for await (const { input, index, detection: d } of results) {
      const line = {
        input,
        index,
        label: d.label,
        score: significant(d.score, 6),
        attacked: d.attacked,
        threshold: significant(d.threshold, 6),
        ...(d.unscored ? { unscored: d.unscored } : {}),
        ...(d.rejected ? { rejected: d.rejected } : {}),
        ...(d.fingerprints ? { fingerprints: d.fingerprints, terms: d.terms!.map((t) => significant(t, 6)) } : {}),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  } finally {
    await detector.release();
  }
}
