// `nfp detect`: scores images with a model and its bank; one JSON line per image on stdout.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';

import { imageExtensions, loadTensorFile } from '../data/index.js';
import { FingerprintDetector } from '../detect/index.js';
import type { Scorer } from '../detect/index.js';
import type { Layout } from '../model/index.js';
import { layoutOption, parseInteger, parseNumber, parsePositiveInt } from './parse.js';
import { significant } from './table.js';

export interface DetectCommandOptions {
  layout?: Layout;
  model: string;
  bank: string;
  draws?: number;
  threshold?: number;
  scorer?: Scorer;
  seed?: number;
  explain?: boolean;
  allowModelMismatch?: boolean;
}

export function registerDetectCommand(program: Command): Command {
  return program
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
    .addOption(layoutOption())
    .option('--explain', 'add the drawn fingerprints and their terms')
    .option('--allow-model-mismatch', 'accept a bank fitted on a model with other bytes')
    .addHelpText(
      'after',
      '\nExamples:\n  $ nfp detect --model models/fmnist-cnn.onnx --bank bank.nfp suspicious.png\n  $ nfp detect ' +
        '--model models/fmnist-cnn.onnx --bank bank.nfp pgd.npy | jq -c "select(.attacked)"\n',
    )
    .action(async (inputs: string[], options: DetectCommandOptions) => {
      await detectCommand(inputs, options);
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
    ...(options.layout ? { layout: options.layout } : {}),
  });
  try {
    for (const input of expand(inputs)) {
      const isImage = imageExtensions.some((e) => input.toLowerCase().endsWith(e));
      const batch = isImage ? input : await loadTensorFile(input, { layout: detector.classifier.layout });
      const results = await detector.detect(batch, { explain: options.explain === true });
      results.forEach((d, index) => {
        const line = {
          input,
          index,
          label: d.label,
          score: significant(d.score, 6),
          attacked: d.attacked,
          threshold: significant(d.threshold, 6),
          ...(d.unscored ? { unscored: d.unscored } : {}),
          ...(d.fingerprints ? { fingerprints: d.fingerprints, terms: d.terms!.map((t) => significant(t, 6)) } : {}),
        };
        process.stdout.write(`${JSON.stringify(line)}\n`);
      });
    }
  } finally {
    await detector.release();
  }
}

/** Folders are walked (sorted, recursively) and their image files scored one by one. */
function* expand(inputs: string[]): Generator<string> {
  for (const input of inputs) {
    let isDir = false;
    try {
      isDir = statSync(input).isDirectory();
    } catch {
      // Not there: loading it reports the error with its name.
    }
    if (!isDir) {
      yield input;
      continue;
    }
    const entries = readdirSync(input, { withFileTypes: true }).sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
    );
    for (const e of entries) {
      const path = join(input, e.name);
      if (e.isDirectory()) yield* expand([path]);
      else if (imageExtensions.some((x) => e.name.toLowerCase().endsWith(x))) yield path;
    }
  }
}
