// Attacking images as `nfp attack` does: labelled images (limited, and for targeted attacks without
// the images already of their target), one attack of the suite, and the adversarial images written
// as .npy with their labels, predictions, success flags (and targets) beside them.
import { basename, dirname, join } from 'node:path';

import { boundedAttacks, createAttack, randomTargets } from '../attacks/index.js';
import type { AttackName, AttackResult, AttackSettings } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { gatherImages, writeNpy } from '../data/index.js';
import { SeededRandom } from '../random.js';
import { loadLabelled } from './data.js';
import { defaultFit, fitBatchSize } from './defaults.js';
import { ExperimentError } from './errors.js';
import { checkOutPath } from './fit.js';
import { significant } from './summary.js';

export interface AttackExperimentOptions {
  model: string;
  data: string;
  labels?: string;
  limit?: number;
  attack: AttackName;
  settings: AttackSettings;
  /** Targeted: a class, or 'random' (a random other class per image). */
  target?: number | 'random';
  batchSize?: number;
  seed?: number;
  /** adv.npy; <stem>.labels.npy, .predicted.npy, .success.npy (and .targets.npy) go beside it. */
  out: string;
  onProgress?: (done: number, total: number) => void;
}

export async function attackExperiment(options: AttackExperimentOptions): Promise<Record<string, unknown>> {
  if (boundedAttacks.includes(options.attack) && options.settings.eps === undefined)
    throw new ExperimentError(`--attack ${options.attack} needs --eps`, '--eps');
  checkOutPath(options.out, '.npy', '--out');
  const attack = createAttack(options.attack, options.settings);
  const data = await loadLabelled(options.data, options);
  let images = data.images;
  let labels = data.labels;
  const batchSize = options.batchSize ?? fitBatchSize(images.dims.slice(1));
  const model = await GradientModel.load(options.model, {
    taps: [],
    inputShape: images.dims.slice(1),
    batchSize: Math.min(batchSize, defaultFit.batchSize),
  });
  try {
    let targets: Int32Array | undefined;
    let skipped = 0;
    if (options.target !== undefined) {
      targets = chooseTargets(options.target, labels, model.classes, new SeededRandom(options.seed));
      // Images whose label is already the target cannot be attacked towards it: they are left out.
      const keep = [...targets.keys()].filter((i) => targets![i] !== labels[i]);
      skipped = labels.length - keep.length;
      if (skipped > 0) {
        images = gatherImages(images, keep);
        labels = Int32Array.from(keep, (i) => labels[i]!);
        targets = Int32Array.from(keep, (i) => targets![i]!);
      }
    }
    const result = await attack.run(model, images, {
      labels,
      ...(targets ? { targets } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      batchSize,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
    const stem = join(dirname(options.out), basename(options.out, '.npy'));
    const n = labels.length;
    writeNpy(options.out, { dims: result.dims, data: result.adv });
    writeNpy(`${stem}.labels.npy`, { dims: [n], data: labels });
    writeNpy(`${stem}.predicted.npy`, { dims: [n], data: result.predicted });
    writeNpy(`${stem}.success.npy`, { dims: [n], data: result.success });
    if (targets !== undefined) writeNpy(`${stem}.targets.npy`, { dims: [n], data: targets });
    return { ...attackSummary(options, result), ...(skipped > 0 ? { skippedAlreadyTarget: skipped } : {}) };
  } finally {
    await model.release();
  }
}

function chooseTargets(target: number | 'random', labels: Int32Array, classes: number, rng: SeededRandom): Int32Array {
  if (target === 'random') return randomTargets(labels, classes, rng);
  if (!Number.isInteger(target) || target < 0 || target >= classes)
    throw new ExperimentError(
      `Expected a class in [0, ${classes}) or 'random' for --target but received ${target}`,
      '--target',
    );
  return new Int32Array(labels.length).fill(target);
}

/** Success rate, and perturbation norms over the successful images. */
function attackSummary(options: AttackExperimentOptions, r: AttackResult): Record<string, unknown> {
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
    settings: options.settings,
    ...(options.target !== undefined ? { targeted: String(options.target) } : {}),
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
