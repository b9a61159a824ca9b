// `nfp grad`: the input gradient of sum(seed * logits) + sum(tapSeed * activations) for a batch
// of images, through the reverse-mode ONNX transform (src/autodiff), written as .npy files.
import type { Command } from 'commander';

import { GradientModel } from '../autodiff/index.js';
import { imagesFor } from '../experiment/index.js';
import { readNpy, writeNpy } from '../data/index.js';
import type { NpyArray } from '../data/index.js';
import type { Layout, TapSpec } from '../model/index.js';
import { asUsage } from './options.js';
import { layoutOption, parsePositiveInt, parseTaps } from './parse.js';

export interface GradOptions {
  model: string;
  input: string;
  seed: string;
  tapSeed?: string;
  taps?: TapSpec;
  out: string;
  logitsOut?: string;
  batchSize?: number;
  layout?: Layout;
}

/** Registers `grad` on the `nfp` program. Bad usage throws a CommanderError with exit code 2. */
export function registerGradCommand(program: Command): Command {
  return program
    .command('grad')
    .description('write d(sum(seed * logits) + sum(tapSeed * activations)) / d(input) for images in a .npy file')
    .requiredOption('--model <model>', 'an ONNX image classifier')
    .requiredOption('--input <x.npy>', 'float32 images [N, C, H, W] ([N, H, W, C] for a channels-last model)')
    .requiredOption('--seed <s.npy>', 'float32 logit seed [N, classes]')
    .option(
      '--tap-seed <t.npy>',
      'float32 seed for the tapped activations [N, neurons] (laid out as Classifier.run returns them)',
    )
    .option(
      '--taps <auto|names>',
      "tapped layers: 'auto' (penultimate features and logits) or comma-separated node/tensor names; default auto " +
        'with --tap-seed, none without',
      parseTaps,
    )
    .requiredOption('--out <g.npy>', 'where to write the gradient, float32 [N, C, H, W]')
    .option('--logits-out <l.npy>', 'where to write the logits, float32 [N, classes]')
    .option('--batch-size <n>', 'images per ONNX Runtime call (default 32)', parsePositiveInt)
    .addOption(layoutOption())
    .addHelpText(
      'after',
      '\nExample:\n  $ nfp grad --model models/fmnist-cnn.onnx --input x.npy --seed s.npy --out g.npy --logits-out ' +
        'l.npy\n',
    )
    .action(async (options: GradOptions, command: Command) => {
      const usage = (message: string): never => command.error(`error: ${message}`, { exitCode: 2, code: 'nfp.usage' });
      await asUsage(command, () => gradCommand(options, usage));
    });
}

/** Runs the command; `usage` reports bad usage (and must throw or exit). */
export async function gradCommand(options: GradOptions, usage: (message: string) => never): Promise<void> {
  const x = floatArray(readNpy(options.input), '--input', usage);
  if (x.dims.length !== 4)
    usage(`Expected float32 images [N, C, H, W] for --input but received shape [${x.dims.join(', ')}]`);
  const rows = x.dims[0]!;
  const seed = floatArray(readNpy(options.seed), '--seed', usage);
  const tapSeed = options.tapSeed === undefined ? undefined : floatArray(readNpy(options.tapSeed), '--tap-seed', usage);
  const taps: TapSpec = options.taps ?? (tapSeed === undefined ? [] : 'auto');
  const model = await GradientModel.load(options.model, {
    taps,
    inputShape: x.dims.slice(1),
    ...(options.layout ? { layout: options.layout } : {}),
    ...(options.batchSize ? { batchSize: options.batchSize } : {}),
  });
  try {
    const k = model.classes;
    if (seed.dims.length !== 2 || seed.dims[0] !== rows || seed.dims[1] !== k)
      usage(`Expected a float32 seed of shape [${rows}, ${k}] for --seed but received [${seed.dims.join(', ')}]`);
    if (tapSeed !== undefined) {
      if (model.neurons === 0) usage('Expected taps for --tap-seed but --taps names none');
      if (tapSeed.dims.length !== 2 || tapSeed.dims[0] !== rows || tapSeed.dims[1] !== model.neurons) {
        usage(
          `Expected a float32 tap seed of shape ` +
            `[${rows}, ${model.neurons}] for --tap-seed but received [${tapSeed.dims.join(', ')}]`,
        );
      }
    }
    // A channels-last model takes (and gives its gradient) channels-last: channels-first input is transposed.
    const images = imagesFor({ data: x.data, dims: x.dims }, model, '--input');
    const started = performance.now();
    const out = await model.gradient(images, {
      logitSeed: seed.data,
      ...(tapSeed ? { tapSeed: tapSeed.data } : {}),
    });
    const seconds = (performance.now() - started) / 1000;
    writeNpy(options.out, { dims: [...images.dims], data: out.grad });
    if (options.logitsOut !== undefined) writeNpy(options.logitsOut, { dims: [rows, k], data: out.logits });
    const logitsOut = options.logitsOut ? { logitsOut: options.logitsOut } : {};
    const summary = { rows, classes: k, neurons: model.neurons, out: options.out, ...logitsOut };
    process.stdout.write(`${JSON.stringify({ ...summary, seconds: Number(seconds.toFixed(4)) })}\n`);
  } finally {
    await model.release();
  }
}

function floatArray(
  a: NpyArray,
  what: string,
  usage: (message: string) => never,
): { data: Float32Array; dims: number[] } {
  if (!(a.data instanceof Float32Array)) usage(`Expected a float32 array for ${what} but received ${a.dtype}`);
  return { data: a.data as Float32Array, dims: [...a.dims] };
}
