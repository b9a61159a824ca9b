// `nfp attack`: attacks images with one of the suite's attacks and writes the adversarial images
// (.npy) with their labels, predictions and success flags beside them; a summary (success rate,
// perturbation norms, time) goes to stdout as one JSON line, progress to stderr.
import type { Command } from 'commander';
import { Option } from 'commander';

import { attackNames, boundedAttacks } from '../attacks/index.js';
import type { AttackName, AttackSettings } from '../attacks/index.js';
import { attackExperiment } from '../experiment/index.js';
import { addAttackOptions, addImageOptions, asUsage, attackSettingsOf, imageReadOptionsOf } from './options.js';
import type { AttackOptions, ImageFlags } from './options.js';
import { parseInteger, parsePositive, parsePositiveInt } from './parse.js';
import { ProgressBar } from './progress.js';

export interface AttackCommandOptions extends AttackOptions, ImageFlags {
  model: string;
  data: string;
  labels?: string;
  attack: AttackName;
  stepSize?: number;
  restarts?: number;
  queries?: number;
  earlyStop?: boolean;
  targeted?: boolean;
  target?: string;
  limit?: number;
  batchSize?: number;
  seed?: number;
  out: string;
}

export function registerAttackCommand(program: Command): Command {
  const command = program
    .command('attack')
    .description('attack images and write the adversarial images with their labels, predictions and success flags')
    .requiredOption('--model <model>', 'an ONNX image classifier')
    .requiredOption(
      '--data <path>',
      'images: an IDX file (.gz or not), a .npy tensor [N,C,H,W] in [0,1], or a folder of class folders',
    )
    .option('--labels <path>', 'true labels for --data (.npy or IDX); folders and paired IDX files supply their own')
    .addOption(new Option('--attack <name>', 'the attack').choices([...attackNames]).makeOptionMandatory());
  return addImageOptions(addAttackOptions(command, `perturbation bound (required for ${boundedAttacks.join(', ')})`))
    .option('--step-size <a>', 'step length (fgsm, bim, pgd, mifgsm)', parsePositive)
    .option('--restarts <n>', 'random restarts (pgd)', parsePositiveInt)
    .option('--queries <n>', 'query budget per image (square; default 1000)', parsePositiveInt)
    .option('--early-stop', 'stop each image at its first adversarial iterate (bim, pgd, mifgsm)')
    .option('--targeted', 'targeted attack (see --target)')
    .option('--target <c|random>', "target class, or 'random' for a random other class per image (default random)")
    .option('--limit <n>', 'only the first n images', parsePositiveInt)
    .option(
      '--batch-size <n>',
      'images attacked together, and read from --data at a time (default 128)',
      parsePositiveInt,
    )
    .option('--seed <n>', 'reproduce a run (random starts, targets, Square)', parseInteger)
    .requiredOption(
      '--out <adv.npy>',
      'adversarial images, float32 [N,C,H,W]; <stem>.labels.npy, .predicted.npy, .success.npy (and .targets.npy) ' +
        'beside it',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ nfp attack --model models/fmnist-cnn.onnx --data ' +
        'data/fashion-mnist/t10k-images-idx3-ubyte.gz --limit 1000 \\\n      --attack pgd --eps 0.1 --steps 20 ' +
        '--out pgd.npy\n  $ nfp attack --model models/fmnist-cnn.onnx --data x.npy --labels y.npy --attack cw ' +
        '--targeted --target 3 --out cw-to-3.npy\n',
    )
    .action(async (options: AttackCommandOptions, cmd: Command) => {
      const usage = (message: string): never => cmd.error(`error: ${message}`, { exitCode: 2, code: 'nfp.usage' });
      await asUsage(cmd, () => attackCommand(options, usage));
    });
}

export async function attackCommand(options: AttackCommandOptions, usage: (message: string) => never): Promise<void> {
  if (options.target !== undefined && options.targeted !== true) usage('--target needs --targeted');
  const target = options.targeted !== true ? undefined : parseTarget(options.target ?? 'random', usage);
  const settings: AttackSettings = {
    ...attackSettingsOf(options),
    ...(options.stepSize !== undefined ? { stepSize: options.stepSize } : {}),
    ...(options.restarts !== undefined ? { restarts: options.restarts } : {}),
    ...(options.queries !== undefined ? { queries: options.queries } : {}),
    ...(options.earlyStop ? { earlyStop: true } : {}),
  };
  let bar: ProgressBar | undefined;
  const summary = await attackExperiment({
    model: options.model,
    data: options.data,
    ...(options.labels !== undefined ? { labels: options.labels } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    attack: options.attack,
    settings,
    ...(target !== undefined ? { target } : {}),
    ...(options.batchSize !== undefined ? { batchSize: options.batchSize } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    image: imageReadOptionsOf(options),
    out: options.out,
    onProgress: (done, total) => {
      bar ??= new ProgressBar(options.attack, total);
      bar.update(done);
    },
  });
  bar?.done();
  process.stdout.write(`${JSON.stringify(summary)}\n`);
}

function parseTarget(spec: string, usage: (message: string) => never): number | 'random' {
  if (spec === 'random') return 'random';
  const c = Number(spec);
  if (!/^\d+$/.test(spec) || !Number.isSafeInteger(c))
    usage(`Expected a class or 'random' for --target but received ${spec}`);
  return c;
}
