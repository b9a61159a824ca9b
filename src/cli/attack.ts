// `nfp attack`: attacks images with one of the suite's attacks and writes the adversarial images
// (.npy) with their labels, predictions and success flags beside them; a summary (success rate,
// perturbation norms, time) goes to stdout as one JSON line, progress to stderr.
import { basename, dirname, join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';

import { GradientModel } from '../autodiff/index.js';
import { AttackRandom, attackNames, boundedAttacks, createAttack, randomTargets } from '../attacks/index.js';
import type { AttackName, AttackResult, AttackSettings, Norm } from '../attacks/index.js';
import { gatherImages, loadLabelFile, loadTensorFile, writeNpy } from '../data/index.js';
import { requireModel } from './check.js';
import { ProgressBar } from './progress.js';
import type { Layout } from '../model/index.js';
import { layoutOption, parseInteger, parseNonNegative, parsePositive, parsePositiveInt } from './parse.js';
import { significant } from './table.js';

export interface AttackCommandOptions {
  model: string;
  data: string;
  labels?: string;
  attack: AttackName;
  eps?: number;
  norm?: Norm;
  steps?: number;
  kappa?: number;
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
  layout?: Layout;
}

export function registerAttackCommand(program: Command): Command {
  return program
    .command('attack')
    .description('attack images and write the adversarial images with their labels, predictions and success flags')
    .requiredOption('--model <model>', 'an ONNX image classifier')
    .requiredOption(
      '--data <path>',
      'images: an IDX file (.gz or not), a .npy tensor [N,C,H,W] in [0,1], or a folder of class folders',
    )
    .option('--labels <path>', 'true labels for --data (.npy or IDX); folders and paired IDX files supply their own')
    .addOption(new Option('--attack <name>', 'the attack').choices([...attackNames]).makeOptionMandatory())
    .option('--eps <e>', `perturbation bound (required for ${boundedAttacks.join(', ')})`, parsePositive)
    .addOption(
      new Option('--norm <norm>', "the attack's norm (fgsm, bim, pgd, apgd, deepfool)").choices(['linf', 'l2']),
    )
    .option('--steps <n>', 'iterations (defaults per attack)', parsePositiveInt)
    .option('--kappa <k>', 'cw: confidence margin past the decision boundary (default 0)', parseNonNegative)
    .option('--step-size <a>', 'step length (fgsm, bim, pgd, mifgsm)', parsePositive)
    .option('--restarts <n>', 'random restarts (pgd)', parsePositiveInt)
    .option('--queries <n>', 'query budget per image (square; default 1000)', parsePositiveInt)
    .option('--early-stop', 'stop each image at its first adversarial iterate (bim, pgd, mifgsm)')
    .option('--targeted', 'targeted attack (see --target)')
    .option('--target <c|random>', "target class, or 'random' for a random other class per image (default random)")
    .option('--limit <n>', 'only the first n images', parsePositiveInt)
    .option('--batch-size <n>', 'images attacked together (default 128)', parsePositiveInt)
    .option('--seed <n>', 'reproduce a run (random starts, targets, Square)', parseInteger)
    .addOption(layoutOption())
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
    .action(async (options: AttackCommandOptions, command: Command) => {
      await attackCommand(options, (message) => command.error(`error: ${message}`, { exitCode: 2, code: 'nfp.usage' }));
    });
}

/** Runs the command; `usage` reports bad usage (and must throw or exit). */
export async function attackCommand(options: AttackCommandOptions, usage: (message: string) => never): Promise<void> {
  if (boundedAttacks.includes(options.attack) && options.eps === undefined)
    usage(`--attack ${options.attack} needs --eps`);
  if (options.target !== undefined && options.targeted !== true) usage('--target needs --targeted');
  if (!options.out.endsWith('.npy')) usage(`Expected a .npy path for --out but received ${options.out}`);
  const settings: AttackSettings = {
    ...(options.eps !== undefined ? { eps: options.eps } : {}),
    ...(options.norm !== undefined ? { norm: options.norm } : {}),
    ...(options.steps !== undefined ? { steps: options.steps } : {}),
    ...(options.stepSize !== undefined ? { stepSize: options.stepSize } : {}),
    ...(options.restarts !== undefined ? { restarts: options.restarts } : {}),
    ...(options.queries !== undefined ? { queries: options.queries } : {}),
    ...(options.kappa !== undefined ? { kappa: options.kappa } : {}),
    ...(options.earlyStop ? { earlyStop: true } : {}),
  };
  const attack = createAttack(options.attack, settings);

  // The model first: one that cannot be attacked stops here, with every reason, before any data is read.
  const checked = await requireModel(options.model, 'attack', options.layout ? { layout: options.layout } : {});
  const tensor = await loadTensorFile(options.data, { layout: checked.input!.layout });
  let labels = options.labels !== undefined ? loadLabelFile(options.labels) : tensor.labels;
  if (labels === undefined) usage('--data carries no labels: pass --labels');
  let { data } = tensor;
  let dims = [...tensor.dims];
  if (options.limit !== undefined && options.limit < dims[0]!) {
    data = data.subarray(0, options.limit * (data.length / dims[0]!));
    dims = [options.limit, ...dims.slice(1)];
    labels = labels.subarray(0, options.limit);
  }
  if (labels.length < dims[0]!) usage(`--labels has ${labels.length} labels but --data has ${dims[0]} images`);
  labels = labels.subarray(0, dims[0]);

  const model = await GradientModel.load(options.model, {
    taps: [],
    inputShape: dims.slice(1),
    batchSize: Math.min(options.batchSize ?? 128, 128),
    ...(options.layout ? { layout: options.layout } : {}),
  });
  try {
    const rng = new AttackRandom(options.seed);
    let targets: Int32Array | undefined;
    let skipped = 0;
    if (options.targeted === true) {
      targets = chooseTargets(options.target ?? 'random', labels, model.classes, rng, usage);
      // Images whose label is already the target cannot be attacked towards it: they are left out.
      const keep = [...targets.keys()].filter((i) => targets![i] !== labels![i]);
      skipped = labels.length - keep.length;
      if (skipped > 0) {
        ({ data, dims } = gatherImages({ data, dims }, keep));
        labels = Int32Array.from(keep, (i) => labels![i]!);
        targets = Int32Array.from(keep, (i) => targets![i]!);
      }
    }
    const progress = new ProgressBar(options.attack, dims[0]!);
    const result = await attack.run(
      model,
      { data, dims },
      {
        labels,
        ...(targets ? { targets } : {}),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        batchSize: options.batchSize ?? 128,
        onProgress: (done) => progress.update(done),
      },
    );
    progress.done();
    const stem = join(dirname(options.out), basename(options.out, '.npy'));
    writeNpy(options.out, { dims: result.dims, data: result.adv });
    writeNpy(`${stem}.labels.npy`, { dims: [labels.length], data: labels });
    writeNpy(`${stem}.predicted.npy`, { dims: [labels.length], data: result.predicted });
    writeNpy(`${stem}.success.npy`, { dims: [labels.length], data: result.success });
    if (targets !== undefined) writeNpy(`${stem}.targets.npy`, { dims: [labels.length], data: targets });
    const summary = {
      ...summarize(options, settings, result),
      ...(skipped > 0 ? { skippedAlreadyTarget: skipped } : {}),
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await model.release();
  }
}

function chooseTargets(
  spec: string,
  labels: Int32Array,
  classes: number,
  rng: AttackRandom,
  usage: (message: string) => never,
): Int32Array {
  if (spec === 'random') return randomTargets(labels, classes, rng);
  const c = Number(spec);
  if (!Number.isInteger(c) || c < 0 || c >= classes)
    usage(`Expected a class in [0, ${classes}) or 'random' for --target but received ${spec}`);
  return new Int32Array(labels.length).fill(c);
}

/** Success rate, and perturbation norms over the successful images. */
function summarize(options: AttackCommandOptions, settings: AttackSettings, r: AttackResult): Record<string, unknown> {
  const n = r.success.length;
  const ok = [...r.success.keys()].filter((i) => r.success[i]);
  const stat = (values: Float32Array) => {
    const v = ok.map((i) => values[i]!).sort((a, b) => a - b);
    return v.length === 0
      ? null
      : {
          mean: significant(v.reduce((a, b) => a + b, 0) / v.length, 5),
          median: significant(v[v.length >> 1]!, 5),
          max: significant(v[v.length - 1]!, 5),
        };
  };
  const spent = r.iterations ?? r.queries!;
  return {
    attack: options.attack,
    settings,
    ...(options.targeted ? { targeted: options.target ?? 'random' } : {}),
    images: n,
    successRate: n === 0 ? 0 : significant(ok.length / n, 5),
    successes: ok.length,
    linf: stat(r.norms.linf),
    l2: stat(r.norms.l2),
    [r.iterations ? 'meanIterations' : 'meanQueries']:
      n === 0 ? 0 : significant(spent.reduce((a, b) => a + b, 0) / n, 5),
    seconds: significant(r.seconds, 5),
    imagesPerSecond: significant(n / Math.max(r.seconds, 1e-9), 5),
    out: options.out,
  };
}
