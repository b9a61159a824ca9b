// Attacking images as `nfp attack` does: labelled images (limited, and for targeted attacks without
// the images already of their target) read and attacked a batch at a time, so that memory depends on
// the batch and not on the file; the adversarial images are written as .npy as they come, with their
// labels, predictions, success flags (and targets) beside them.
import { basename, dirname, join } from 'node:path';

import { boundedAttacks, createAttack, randomTargets } from '../attacks/index.js';
import type { Attack, AttackName, AttackResult, AttackSettings } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { NpyWriter, writeNpy } from '../data/index.js';
import type { ImageBatch } from '../data/index.js';
import { SeededRandom } from '../random.js';
import type { ImageReadOptions, OpenData } from './data.js';
import { isFolder, openData } from './data.js';
import { defaultFit } from './defaults.js';
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
  /** Images attacked together, and read from --data at a time (default 128). */
  batchSize?: number;
  seed?: number;
  /** For image folders: formats accepted, animated images. */
  image?: ImageReadOptions;
  /** adv.npy; <stem>.labels.npy, .predicted.npy, .success.npy (and .targets.npy) go beside it. */
  out: string;
  onProgress?: (done: number, total: number) => void;
}

export async function attackExperiment(options: AttackExperimentOptions): Promise<Record<string, unknown>> {
  const batchSize = checkAttackOptions(options);
  const attack = createAttack(options.attack, options.settings);
  const { data, model } = await openDataAndModel(options, batchSize);
  try {
    const plan = planTargets(options, data, model.classes);
    const result = await attackInBatches(attack, model, data, plan, options, batchSize);
    const stem = join(dirname(options.out), basename(options.out, '.npy'));
    const n = plan.keep.length;
    writeNpy(`${stem}.labels.npy`, { dims: [n], data: plan.labels });
    writeNpy(`${stem}.predicted.npy`, { dims: [n], data: result.predicted });
    writeNpy(`${stem}.success.npy`, { dims: [n], data: result.success });
    if (plan.targets !== undefined) writeNpy(`${stem}.targets.npy`, { dims: [n], data: plan.targets });
    const skipped = data.rows - n;
    return { ...attackSummary(options, result), ...(skipped > 0 ? { skippedAlreadyTarget: skipped } : {}) };
  } finally {
    await model.release();
  }
}

/** Options judged without data or model; returns the batch size. */
function checkAttackOptions(options: AttackExperimentOptions): number {
  if (boundedAttacks.includes(options.attack) && options.settings.eps === undefined)
    throw new ExperimentError(`--attack ${options.attack} needs --eps`, '--eps');
  checkOutPath(options.out, '.npy', '--out');
  const batchSize = options.batchSize ?? defaultFit.batchSize;
  if (!(Number.isSafeInteger(batchSize) && batchSize >= 1))
    throw new ExperimentError(`Expected a positive integer for --batch-size but received ${batchSize}`, '--batch-size');
  return batchSize;
}

/**
 * The data (its header and labels) and the model. A folder is decoded to the model's input, so the
 * model comes first; a tensor file gives the model its shape (models with symbolic dims take it).
 */
async function openDataAndModel(
  options: AttackExperimentOptions,
  batchSize: number,
): Promise<{ data: OpenData; model: GradientModel }> {
  const common = {
    ...(options.labels !== undefined ? { labels: options.labels } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.image !== undefined ? { image: options.image } : {}),
    requireLabels: true,
  };
  const file = (await isFolder(options.data)) ? undefined : await openData(options.data, common);
  const load = (inputShape?: number[]) =>
    GradientModel.load(options.model, {
      taps: [],
      ...(inputShape !== undefined ? { inputShape } : {}),
      batchSize: Math.min(batchSize, defaultFit.batchSize),
      maxInputValuesPerRun: defaultFit.inputValuesPerRun,
    });
  const model = file === undefined ? await load() : await load(file.reader.dims.slice(1)).catch(whyNot(load, file));
  try {
    return { data: file ?? (await openData(options.data, { ...common, inputShape: model.inputShape })), model };
  } catch (error) {
    await model.release();
    throw error;
  }
}

/**
 * A model with fixed input dims refuses a tensor file of another shape with ONNX Runtime's raw
 * message; when the model loads at its own shape, say which shapes differ, as a usage error.
 */
function whyNot(load: (inputShape?: number[]) => Promise<GradientModel>, file: OpenData) {
  return async (error: unknown): Promise<never> => {
    const own = await load().catch(() => undefined);
    if (own === undefined) throw error;
    const shape = own.inputShape;
    await own.release();
    const dims = file.reader.dims.slice(1);
    if (dims.some((d, i) => d !== shape[i]))
      throw new ExperimentError(
        `--data holds images [${dims.join(', ')}] but the model takes [${shape.join(', ')}]`,
        '--data',
      );
    throw error;
  };
}

/** The rows attacked (in order), their labels, and for targeted attacks their targets. */
interface TargetPlan {
  keep: Int32Array;
  labels: Int32Array;
  targets?: Int32Array;
}

/** Every row, or for targeted attacks the rows whose label is not already their target (those cannot be attacked). */
function planTargets(options: AttackExperimentOptions, data: OpenData, classes: number): TargetPlan {
  const labels = data.labels!;
  const every = Int32Array.from({ length: data.rows }, (_, i) => i);
  if (options.target === undefined) return { keep: every, labels: labels.slice(0, data.rows) };
  const all = chooseTargets(options.target, labels, classes, new SeededRandom(options.seed));
  const keep = every.filter((i) => all[i] !== labels[i]);
  return {
    keep,
    labels: Int32Array.from(keep, (i) => labels[i]!),
    targets: Int32Array.from(keep, (i) => all[i]!),
  };
}

/**
 * Attacks the kept rows `batchSize` at a time through one random stream, so that the run is the one a
 * single call over all of them would make, writing the adversarial images to the .npy file as they come.
 */
async function attackInBatches(
  attack: Attack,
  model: GradientModel,
  data: OpenData,
  plan: TargetPlan,
  options: AttackExperimentOptions,
  batchSize: number,
): Promise<Omit<AttackResult, 'adv' | 'dims'>> {
  const shape = data.reader.dims.slice(1);
  const n = plan.keep.length;
  const writer = await NpyWriter.open(options.out, [n, ...shape]);
  const parts: AttackResult[] = [];
  const started = performance.now();
  try {
    const random = new SeededRandom(options.seed);
    let done = 0;
    for await (const images of keptBatches(data, plan.keep, batchSize)) {
      const at = done;
      const count = images.dims[0]!;
      const result = await attack.run(model, images, {
        labels: plan.labels.subarray(at, at + count),
        ...(plan.targets ? { targets: plan.targets.subarray(at, at + count) } : {}),
        random,
        batchSize,
        ...(options.onProgress ? { onProgress: (d: number) => options.onProgress!(at + d, n) } : {}),
      });
      await writer.write(result.adv);
      parts.push({ ...result, adv: new Float32Array(0) });
      done += count;
    }
    await writer.close();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  return joinResults(parts, n, (performance.now() - started) / 1000, attack);
}

/** The rows `keep` (sorted) of the data, regrouped into batches of exactly `size` (the last one smaller). */
async function* keptBatches(data: OpenData, keep: Int32Array, size: number): AsyncGenerator<ImageBatch> {
  const shape = data.reader.dims.slice(1);
  const per = shape.reduce((a, b) => a * b, 1);
  const pending = new Float32Array(2 * size * per);
  let held = 0;
  let next = 0;
  for await (const batch of data.reader.batches(size, { to: data.rows })) {
    for (; next < keep.length && keep[next]! < batch.from + batch.dims[0]; next++) {
      const r = keep[next]! - batch.from;
      pending.set(batch.data.subarray(r * per, (r + 1) * per), held * per);
      held++;
    }
    if (held >= size) {
      yield { data: pending.slice(0, size * per), dims: [size, ...shape] };
      pending.copyWithin(0, size * per, held * per);
      held -= size;
    }
  }
  if (held > 0) yield { data: pending.slice(0, held * per), dims: [held, ...shape] };
}

/** The batches' results as one run's (the images left out: they are in the .npy file). */
function joinResults(
  parts: AttackResult[],
  n: number,
  seconds: number,
  attack: { name: string; norm: AttackResult['norm']; cost: 'iterations' | 'queries' },
): Omit<AttackResult, 'adv' | 'dims'> {
  const join = <T extends Int32Array | Uint8Array | Float32Array>(out: T, pick: (r: AttackResult) => T): T => {
    let at = 0;
    for (const part of parts) {
      const values = pick(part);
      out.set(values as never, at);
      at += values.length;
    }
    return out;
  };
  const spent = join(new Int32Array(n), (r) => (r.iterations ?? r.queries)!);
  return {
    attack: attack.name,
    norm: attack.norm,
    success: join(new Uint8Array(n), (r) => r.success),
    predicted: join(new Int32Array(n), (r) => r.predicted),
    ...(attack.cost === 'iterations' ? { iterations: spent } : { queries: spent }),
    norms: {
      linf: join(new Float32Array(n), (r) => r.norms.linf),
      l2: join(new Float32Array(n), (r) => r.norms.l2),
    },
    seconds,
  };
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
function attackSummary(
  options: AttackExperimentOptions,
  r: Omit<AttackResult, 'adv' | 'dims'>,
): Record<string, unknown> {
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
