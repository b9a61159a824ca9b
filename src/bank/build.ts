// Building a bank from data: per class c, clean images of c that the model classifies correctly,
// and, per attack family, images of other classes attacked towards c that the model now labels c;
// their tapped activations go through the screen (fit.ts). Classes can be sharded (`classes`) and
// the shards merged later (FingerprintBank.merge). Activations are computed one class at a time,
// so memory holds one class's rows, not the data set's.
import type { Attack } from '../attacks/index.js';
import type { GradientModel } from '../autodiff/index.js';
import { gatherImages } from '../data/index.js';
import type { ImageBatch } from '../model/index.js';
import { SeededRandom, mixSeed } from '../random.js';
import { FingerprintBank } from './bank.js';
import type { ClassCheckpoints } from './checkpoint.js';
import { defaultScreenSettings, fitClass } from './fit.js';
import type { ActivationSet, BankHeader, ClassFingerprints, DataRecord, FittedClass, ScreenSettings } from './types.js';

export interface AttackFamily {
  /** Name stored in the bank, e.g. 'pgd' or 'cw'. */
  name: string;
  /** Run targeted, towards each class in turn. */
  attack: Attack;
  /** Settings recorded in the bank header. */
  settings: Record<string, unknown>;
}

export interface BuildProgress {
  class: number;
  stage: 'clean' | 'attack' | 'screen' | 'done';
  family?: string;
  /** Classes done, and the total, for an overall bar. */
  classesDone: number;
  classesTotal: number;
  /** Progress of the current attack, images. */
  done?: number;
  total?: number;
}

export type AttackMode = 'untargeted' | 'targeted' | 'mixed';

/** Images per class that a fit takes when not told otherwise. */
export const defaultImagesPerClass = { clean: 400, attacked: 400 } as const;

export interface BuildOptions {
  /** The model with the taps the bank will use. */
  model: GradientModel;
  images: ImageBatch;
  labels: Int32Array;
  families: AttackFamily[];
  /** Classes to fit (a shard); default all. */
  classes?: number[];
  /** Clean images per class (default 400); at most 3/4 of a class's correctly classified images (cleanShare). */
  cleanPerClass?: number;
  /** Attacked images wanted per class and family (default 400). */
  attackedPerClass?: number;
  /**
   * Where attacked images of class c come from: 'untargeted' (images of other classes attacked
   * without a target that land in c), 'targeted' (attacked towards c), or 'mixed' (default:
   * untargeted landings first, topped up with targeted attacks to attackedPerClass).
   */
  attackMode?: AttackMode;
  screen?: Partial<ScreenSettings>;
  /** Reproducible fitting (image choice, candidates, attack randomness). */
  seed?: number;
  onProgress?: (progress: BuildProgress) => void;
  /** Where the images came from, recorded in the bank so that evaluations can hold them out. */
  data?: DataRecord;
  /** The activation memory per class that set the model's neuron budget, recorded in the bank. */
  activationBytes?: number;
  /** Per-class checkpoints: classes found there are not fitted again, each class fitted is saved there. */
  checkpoints?: ClassCheckpoints;
}

/**
 * Fits a bank (the method's bank building): per class, clean images it classifies correctly and, per
 * attack family, adversarial images it now labels as that class; distinct candidate neuron subsets
 * screened by Welch's t-test (p < pMax) and Cohen's d (|d| >= dMin), the top K kept, the budget shared
 * among families. Activations are computed one class at a time.
 *
 * Arguments: `model` (a GradientModel with the bank's taps), `images` float32 [N, C, H, W] with
 * `labels` Int32Array [N], `families` (name, attack, settings), `classes` (a shard), per-class image
 * counts, `attackMode`, `screen` (defaultScreenSettings), `seed`, `data` (recorded rows).
 *
 * @example
 * const model = await GradientModel.load('models/fmnist-cnn.onnx');   // the card's taps, else 'wide'
 * const bank = await buildBank({ model, images, labels, seed: 1, families: [
 *   { name: 'pgd', attack: new PGD({ eps: 0.1 }), settings: { eps: 0.1 } },
 *   { name: 'fgsm', attack: new FGSM({ eps: 0.1 }), settings: { eps: 0.1 } },
 * ] });
 */
export async function buildBank(options: BuildOptions): Promise<FingerprintBank> {
  const plan = planBuild(options);
  const { model, families, classes } = plan;
  const header = bankHeader(plan, options);
  // Each class draws from its own stream, derived from the seed and the class alone, so a class fits
  // the same whichever shard fits it and whether or not its neighbours were resumed from checkpoints.
  const base = options.seed ?? new SeededRandom().nextUint32();
  const classRandom = (c: number) => new SeededRandom(mixSeed(base, 0x636c73, c));
  const fitted = new Map<number, FittedClass>();
  for (const c of classes) {
    const saved = options.checkpoints?.load(c, header);
    if (saved !== undefined) fitted.set(c, saved);
  }
  let classesDone = 0;
  const report = (p: Omit<BuildProgress, 'classesDone' | 'classesTotal'>) =>
    options.onProgress?.({ ...p, classesDone, classesTotal: classes.length });
  for (const c of fitted.keys()) {
    classesDone++;
    report({ class: c, stage: 'done' });
  }
  const todo = classes.filter((c) => !fitted.has(c));
  if (todo.length === 0) return FingerprintBank.fromClasses(header, fitted);

  const rng = new SeededRandom(options.seed);
  const correctOf = await correctlyClassified(plan, rng);
  // Clean images of a class come first in its list, attack sources from the rest: the two never share
  // an image. Every class's clean images are set aside, fitted here or not, so shards agree on the sources.
  const cleanCounts = correctOf.map((rows) => cleanShare(rows.length, plan.cleanPerClass));
  const sourcesOf = correctOf.map((rows, c) => rows.slice(cleanCounts[c]));
  const landed =
    plan.mode === 'targeted'
      ? families.map(() => new Map<number, ImageBatch>())
      : await untargetedLandings(plan, sourcesOf, rng, report);
  for (const c of todo) {
    const classRng = classRandom(c);
    report({ class: c, stage: 'clean' });
    const cleanRows = correctOf[c]!.slice(0, cleanCounts[c]);
    if (cleanRows.length < 2)
      throw new RangeError(
        `Expected at least 2 correctly classified images of class ${c} but found ${cleanRows.length}`,
      );
    const clean = await activationsOf(model, gatherImages(plan.images, cleanRows), c, cleanRows.length);
    const attackedSets: ActivationSet[] = [];
    for (const [f, family] of families.entries()) {
      const have = await activationsOf(model, landed[f]!.get(c), c, plan.attackedPerClass);
      const missing = plan.mode === 'untargeted' ? 0 : plan.attackedPerClass - have.rows;
      attackedSets.push(
        missing <= 0 ? have : stack(have, await targetedTopUp(plan, family, c, missing, sourcesOf, classRng, report)),
      );
    }
    report({ class: c, stage: 'screen' });
    const fit: FittedClass = {
      fingerprints: await fitScreened(plan, c, clean, attackedSets, classRng),
      clean: clean.rows,
      attacked: attackedSets.map((s) => s.rows),
    };
    options.checkpoints?.save(c, header, fit);
    fitted.set(c, fit);
    classesDone++;
    report({ class: c, stage: 'done' });
  }
  return FingerprintBank.fromClasses(header, fitted);
}

interface BuildPlan {
  model: GradientModel;
  images: ImageBatch;
  labels: Int32Array;
  families: AttackFamily[];
  classes: number[];
  classCount: number;
  settings: ScreenSettings;
  cleanPerClass: number;
  attackedPerClass: number;
  mode: AttackMode;
}

/** Checks the options and fills in the defaults. */
function planBuild(options: BuildOptions): BuildPlan {
  const { model, images, labels, families } = options;
  const classCount = model.classes;
  const classes = options.classes ?? Array.from({ length: classCount }, (_, c) => c);
  for (const c of classes)
    if (!Number.isInteger(c) || c < 0 || c >= classCount)
      throw new RangeError(`Expected classes in [0, ${classCount}) for classes but received ${c}`);
  if (families.length === 0) throw new RangeError('Expected at least one attack family for families but received none');
  if (labels.length !== images.dims[0])
    throw new RangeError(`Expected ${images.dims[0]} labels for labels but received ${labels.length}`);
  if (model.neurons === 0) throw new RangeError('Expected a model with taps for model but it taps nothing');
  const mode = options.attackMode ?? 'mixed';
  if (!['untargeted', 'targeted', 'mixed'].includes(mode))
    throw new RangeError(`Expected 'untargeted', 'targeted' or 'mixed' for attackMode but received ${String(mode)}`);
  return {
    model,
    images,
    labels,
    families,
    classes,
    classCount,
    settings: { ...defaultScreenSettings, ...options.screen },
    cleanPerClass: options.cleanPerClass ?? defaultImagesPerClass.clean,
    attackedPerClass: options.attackedPerClass ?? defaultImagesPerClass.attacked,
    mode,
  };
}

/**
 * How many of a class's `correct` images are its clean images: `wanted`, but never more than three
 * quarters of them (from 4 images on), so that the rest stay attack sources. Taking every image as
 * clean when a data set holds fewer than `wanted` per class left nothing to attack, and every class
 * failed to fit. With enough images (4/3 of `wanted`) this is `wanted`, as before.
 */
export function cleanShare(correct: number, wanted: number): number {
  return correct < 4 ? Math.min(correct, wanted) : Math.min(wanted, correct - Math.ceil(correct / 4));
}

/** Per class, the images the model gets right, in a random order so that the first n of a class are a fair sample. */
async function correctlyClassified(plan: BuildPlan, rng: SeededRandom): Promise<number[][]> {
  const { labels, classCount } = plan;
  const logits = await plan.model.logits(plan.images);
  const order = shuffle(
    Array.from({ length: labels.length }, (_, i) => i),
    rng,
  );
  const correctOf = Array.from({ length: classCount }, () => [] as number[]);
  for (const i of order) {
    const z = logits.subarray(i * classCount, (i + 1) * classCount);
    if (z.indexOf(Math.max(...z)) === labels[i]) correctOf[labels[i]!]!.push(i);
  }
  return correctOf;
}

/** One untargeted run per family over a pool of all classes; per family, the adversarial images by class landed in. */
async function untargetedLandings(
  plan: BuildPlan,
  sourcesOf: number[][],
  rng: SeededRandom,
  report: (p: Omit<BuildProgress, 'classesDone' | 'classesTotal'>) => void,
): Promise<Array<Map<number, ImageBatch>>> {
  const { images, labels, classes } = plan;
  const pool = interleave(sourcesOf).slice(0, plan.attackedPerClass * plan.classCount);
  const landed: Array<Map<number, ImageBatch>> = [];
  for (const family of plan.families) {
    const run = await family.attack.run(plan.model, gatherImages(images, pool), {
      labels: Int32Array.from(pool, (i) => labels[i]!),
      seed: rng.nextUint32(),
      onProgress: (done, total) => report({ class: -1, stage: 'attack', family: family.name, done, total }),
    });
    const adv = { data: run.adv, dims: run.dims };
    const byClass = new Map<number, ImageBatch>();
    for (const c of classes) {
      const hits = [...run.success.keys()].filter((i) => run.success[i] && run.predicted[i] === c);
      if (hits.length > 0) byClass.set(c, gatherImages(adv, hits));
    }
    landed.push(byClass);
  }
  return landed;
}

/** Images of the other classes, drawn evenly from them, attacked towards c; the activations of those now labelled c. */
async function targetedTopUp(
  plan: BuildPlan,
  family: AttackFamily,
  c: number,
  missing: number,
  sourcesOf: number[][],
  rng: SeededRandom,
  report: (p: Omit<BuildProgress, 'classesDone' | 'classesTotal'>) => void,
): Promise<ActivationSet> {
  const others = interleave(sourcesOf.filter((_, k) => k !== c)).slice(0, missing);
  const run = await family.attack.run(plan.model, gatherImages(plan.images, others), {
    labels: Int32Array.from(others, (i) => plan.labels[i]!),
    targets: new Int32Array(others.length).fill(c),
    seed: rng.nextUint32(),
    onProgress: (done, total) => report({ class: c, stage: 'attack', family: family.name, done, total }),
  });
  const hits = [...run.success.keys()].filter((i) => run.success[i] && run.predicted[i] === c);
  return activationsOf(plan.model, gatherImages({ data: run.adv, dims: run.dims }, hits), c, missing);
}

/**
 * The screen of one class. A family without attacked images of the class borrows the other families'
 * (all of them, stacked): its term then scores like theirs. Borrowing the clean images instead made
 * its term exactly 0 for every input, and with the default 'max' combination that floored every score
 * of the class at 0: on an adversarially trained ResNet, where FGSM reached no image of one class, the
 * floor set the global threshold to 0 for every class.
 */
async function fitScreened(
  plan: BuildPlan,
  c: number,
  clean: ActivationSet,
  attackedSets: ActivationSet[],
  rng: SeededRandom,
): Promise<ClassFingerprints> {
  const usable = attackedSets.map((s) => s.rows >= 2);
  if (!usable.some(Boolean))
    throw new RangeError(`No attack family produced 2 or more images labelled ${c}: cannot fit class ${c}`);
  const lenders = plan.families.filter((_, f) => usable[f]).map((f) => f.name);
  const borrowed = attackedSets.filter((_, f) => usable[f]).reduce(stack);
  const sets = attackedSets.map((s, f) => (usable[f] ? s : borrowed));
  const fingerprints = await fitClass(clean, sets, plan.model.neurons, plan.settings, rng);
  const missing = plan.families.filter((_, f) => !usable[f]).map((f) => f.name);
  if (missing.length > 0) {
    const lent = `${lenders.join(' + ')} attacked images stand in`;
    const note = `no attacked images reached class ${c} for ${missing.join(', ')} (${lent})`;
    fingerprints.relaxed = fingerprints.relaxed ? `${fingerprints.relaxed}; ${note}` : note;
  }
  return fingerprints;
}

function bankHeader(plan: BuildPlan, options: BuildOptions): Omit<BankHeader, 'classes'> {
  const { model, settings, families } = plan;
  return {
    model: {
      sha256: model.classifier.sha256,
      source: model.classifier.source,
      inputShape: model.inputShape,
      classes: plan.classCount,
      inputRange: pixelRange(plan.images.data),
    },
    taps: model.taps.map((t) => ({ tensor: t.tensor, size: t.size, ...(t.sample ? { sample: t.sample } : {}) })),
    neurons: model.neurons,
    k: settings.k,
    families: families.map((f) => f.name),
    fit: {
      ...settings,
      attacks: Object.fromEntries(families.map((f) => [f.name, f.settings])),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      cleanPerClass: plan.cleanPerClass,
      attackedPerClass: plan.attackedPerClass,
      ...(options.activationBytes !== undefined ? { activationBytes: options.activationBytes } : {}),
      ...(options.data ? { data: options.data } : {}),
    },
    created: new Date().toISOString(),
  };
}

/**
 * The activations of the first `limit` images (in order) that the model labels c, computed in
 * chunks so that no more than about `limit` rows are ever held.
 */
async function activationsOf(
  model: GradientModel,
  images: ImageBatch | undefined,
  c: number,
  limit: number,
): Promise<ActivationSet> {
  const n = model.neurons;
  const total = images?.dims[0] ?? 0;
  const acts = new Float32Array(Math.min(total, limit) * n);
  let rows = 0;
  for (let start = 0; start < total && rows < limit; ) {
    const take = Math.min(total - start, limit - rows);
    const chunk = gatherImages(
      images!,
      Array.from({ length: take }, (_, i) => start + i),
    );
    const out = await model.classifier.run(chunk);
    for (let r = 0; r < out.rows && rows < limit; r++) {
      if (out.labels[r] !== c) continue;
      acts.set(out.activations.subarray(r * n, (r + 1) * n), rows * n);
      rows++;
    }
    start += take;
  }
  return { acts: rows * n === acts.length ? acts : acts.slice(0, rows * n), rows };
}

function stack(a: ActivationSet, b: ActivationSet): ActivationSet {
  if (a.rows === 0) return b;
  if (b.rows === 0) return a;
  const acts = new Float32Array(a.acts.length + b.acts.length);
  acts.set(a.acts);
  acts.set(b.acts, a.acts.length);
  return { acts, rows: a.rows + b.rows };
}

function shuffle<T>(a: T[], rng: SeededRandom): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Round-robin over the lists: an even mix of classes in any prefix. */
function interleave(lists: number[][]): number[] {
  const out: number[] = [];
  const longest = Math.max(0, ...lists.map((l) => l.length));
  for (let i = 0; i < longest; i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

/** [0, 1] when every pixel is in it (the library's convention), else the integer hull of the pixels' range. */
function pixelRange(pixels: Float32Array): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const v of pixels) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!(lo <= hi)) return [0, 1];
  return lo >= 0 && hi <= 1 ? [0, 1] : [Math.floor(lo), Math.ceil(hi)];
}
