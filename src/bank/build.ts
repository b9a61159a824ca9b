// Building a bank from data: per class c, clean images of c that the model classifies correctly,
// and, per attack family, images of other classes attacked towards c that the model now labels c;
// their tapped activations go through the screen (fit.ts). Classes can be sharded (`classes`) and
// the shards merged later (FingerprintBank.merge).
import type { Attack } from '../attacks/index.js';
import { AttackRandom } from '../attacks/index.js';
import type { GradientModel } from '../autodiff/index.js';
import { gatherImages, gatherRows } from '../data/index.js';
import type { ImageBatch } from '../model/index.js';
import { FingerprintBank } from './bank.js';
import type { DataRecord } from './bank.js';
import { defaultScreenSettings, fitClass } from './fit.js';
import type { ActivationSet, ClassFingerprints, ScreenSettings } from './fit.js';

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

export interface BuildOptions {
  /** The model with the taps the bank will use. */
  model: GradientModel;
  images: ImageBatch;
  labels: Int32Array;
  families: AttackFamily[];
  /** Classes to fit (a shard); default all. */
  classes?: number[];
  /** Clean images per class (default 400). */
  cleanPerClass?: number;
  /** Attacked images wanted per class and family (default 400). */
  attackedPerClass?: number;
  /**
   * Where attacked images of class c come from: 'untargeted' (images of other classes attacked
   * without a target that land in c), 'targeted' (attacked towards c), or 'mixed' (default:
   * untargeted landings first, topped up with targeted attacks to attackedPerClass).
   */
  attackMode?: 'untargeted' | 'targeted' | 'mixed';
  screen?: Partial<ScreenSettings>;
  /** Reproducible fitting (image choice, candidates, attack randomness). */
  seed?: number;
  onProgress?: (progress: BuildProgress) => void;
  /** Where the images came from, recorded in the bank so that evaluations can hold them out. */
  data?: DataRecord;
}

export async function buildBank(options: BuildOptions): Promise<FingerprintBank> {
  const { model, images, labels, families } = options;
  const classCount = model.classes;
  const settings: ScreenSettings = { ...defaultScreenSettings, ...options.screen };
  const classes = options.classes ?? Array.from({ length: classCount }, (_, c) => c);
  for (const c of classes)
    if (!Number.isInteger(c) || c < 0 || c >= classCount)
      throw new RangeError(`Expected classes in [0, ${classCount}) for classes but received ${c}`);
  if (families.length === 0) throw new RangeError('Expected at least one attack family for families but received none');
  if (labels.length !== images.dims[0])
    throw new RangeError(`Expected ${images.dims[0]} labels for labels but received ${labels.length}`);
  if (model.neurons === 0) throw new RangeError('Expected a model with taps for model but it taps nothing');
  const cleanPerClass = options.cleanPerClass ?? 400;
  const attackedPerClass = options.attackedPerClass ?? 400;
  const rng = new AttackRandom(options.seed);
  const neurons = model.neurons;

  // Which images the model gets right, in a random order so that the first n of a class are a fair sample.
  const logits = await model.logits(images);
  const order = shuffle(
    Array.from({ length: labels.length }, (_, i) => i),
    rng,
  );
  const correctOf = Array.from({ length: classCount }, () => [] as number[]);
  for (const i of order) {
    const z = logits.subarray(i * classCount, (i + 1) * classCount);
    if (z.indexOf(Math.max(...z)) === labels[i]) correctOf[labels[i]!]!.push(i);
  }

  const mode = options.attackMode ?? 'mixed';
  if (!['untargeted', 'targeted', 'mixed'].includes(mode))
    throw new RangeError(`Expected 'untargeted', 'targeted' or 'mixed' for attackMode but received ${String(mode)}`);
  const fitted = new Map<number, { fingerprints: ClassFingerprints; clean: number; attacked: number[] }>();
  let classesDone = 0;
  const report = (p: Omit<BuildProgress, 'classesDone' | 'classesTotal'>) =>
    options.onProgress?.({ ...p, classesDone, classesTotal: classes.length });
  // Clean images of each class come first in its list; attack sources come from the rest, so the two never share an
  // image.
  const sourcesOf = correctOf.map((rows, c) => (classes.includes(c) ? rows.slice(cleanPerClass) : rows));
  const wanted = new Set(classes);
  // Untargeted landings, one run per family over a pool mixing all classes.
  const landed: LabelledSet[][] = families.map(() => []);
  if (mode !== 'targeted') {
    const pool = interleave(sourcesOf).slice(0, attackedPerClass * classCount);
    for (const [f, family] of families.entries()) {
      const run = await family.attack.run(model, gatherImages(images, pool), {
        labels: Int32Array.from(pool, (i) => labels[i]!),
        seed: rng.nextUint32(),
        onProgress: (done, total) => report({ class: -1, stage: 'attack', family: family.name, done, total }),
      });
      const hits = [...run.success.keys()].filter((i) => run.success[i] && wanted.has(run.predicted[i]!));
      const set = await activations(model, gatherImages({ data: run.adv, dims: run.dims }, hits));
      for (const c of classes) landed[f]![c] = keepLabelled(set, c, attackedPerClass);
    }
  }
  for (const c of classes) {
    report({ class: c, stage: 'clean' });
    const cleanRows = correctOf[c]!.slice(0, cleanPerClass);
    if (cleanRows.length < 2)
      throw new RangeError(
        `Expected at least 2 correctly classified images of class ${c} but found ${cleanRows.length}`,
      );
    const clean = await activations(model, gatherImages(images, cleanRows));
    const attackedSets: ActivationSet[] = [];
    for (const [f, family] of families.entries()) {
      const have = landed[f]![c] ?? { acts: new Float32Array(0), rows: 0, labels: new Int32Array(0) };
      const missing = mode === 'untargeted' ? 0 : attackedPerClass - have.rows;
      if (missing <= 0) {
        attackedSets.push(have);
        continue;
      }
      // Targeted top-up: images of the other classes, drawn evenly from them, attacked towards c.
      const others = interleave(sourcesOf.filter((_, k) => k !== c)).slice(0, missing);
      const run = await family.attack.run(model, gatherImages(images, others), {
        labels: Int32Array.from(others, (i) => labels[i]!),
        targets: new Int32Array(others.length).fill(c),
        seed: rng.nextUint32(),
        onProgress: (done, total) => report({ class: c, stage: 'attack', family: family.name, done, total }),
      });
      const hits = [...run.success.keys()].filter((i) => run.success[i] && run.predicted[i] === c);
      const targeted = keepLabelled(
        await activations(model, gatherImages({ data: run.adv, dims: run.dims }, hits)),
        c,
        missing,
      );
      attackedSets.push(stack(have, targeted));
    }
    report({ class: c, stage: 'screen' });
    const usable = attackedSets.map((s) => s.rows >= 2);
    let fingerprints: ClassFingerprints;
    if (usable.some(Boolean)) {
      // A family without attacked images of this class still needs statistics: borrow the clean ones, so it never
      // fires.
      const sets = attackedSets.map((s) => (s.rows >= 2 ? s : clean));
      fingerprints = await fitClass(clean, sets, neurons, settings, rng);
      const missing = families.filter((_, f) => !usable[f]).map((f) => f.name);
      if (missing.length > 0)
        fingerprints.relaxed =
          `${fingerprints.relaxed ? `${fingerprints.relaxed}; ` : ''}no attacked images ` +
          `reached class ${c} for ${missing.join(', ')} (clean statistics stand in)`;
    } else {
      throw new RangeError(`No attack family produced 2 or more images labelled ${c}: cannot fit class ${c}`);
    }
    fitted.set(c, { fingerprints, clean: clean.rows, attacked: attackedSets.map((s) => s.rows) });
    classesDone++;
    report({ class: c, stage: 'done' });
  }
  return FingerprintBank.fromClasses(
    {
      model: {
        sha256: model.classifier.sha256,
        source: model.classifier.source,
        inputShape: model.inputShape,
        classes: classCount,
      },
      taps: model.taps.map((t) => ({ tensor: t.tensor, size: t.size })),
      neurons,
      k: settings.k,
      families: families.map((f) => f.name),
      fit: {
        ...settings,
        attacks: Object.fromEntries(families.map((f) => [f.name, f.settings])),
        ...(options.seed !== undefined ? { seed: options.seed } : {}),
        cleanPerClass,
        attackedPerClass,
        ...(options.data ? { data: options.data } : {}),
      },
      created: new Date().toISOString(),
    },
    fitted,
  );
}

interface LabelledSet extends ActivationSet {
  labels: Int32Array;
}

async function activations(model: GradientModel, batch: ImageBatch): Promise<LabelledSet> {
  if (batch.dims[0] === 0) return { acts: new Float32Array(0), rows: 0, labels: new Int32Array(0) };
  const out = await model.classifier.run(batch);
  return { acts: out.activations, rows: out.rows, labels: out.labels };
}

/** The first `limit` rows of `set` that the model labels c. */
function keepLabelled(set: LabelledSet, c: number, limit: number): LabelledSet {
  const rows = [...set.labels.keys()].filter((i) => set.labels[i] === c).slice(0, limit);
  if (rows.length === set.rows) return set;
  const n = set.rows === 0 ? 0 : set.acts.length / set.rows;
  return { acts: gatherRows(set.acts, rows, n), rows: rows.length, labels: new Int32Array(rows.length).fill(c) };
}

function stack(a: LabelledSet, b: LabelledSet): LabelledSet {
  if (a.rows === 0) return b;
  if (b.rows === 0) return a;
  const acts = new Float32Array(a.acts.length + b.acts.length);
  acts.set(a.acts);
  acts.set(b.acts, a.acts.length);
  const labels = new Int32Array(a.rows + b.rows);
  labels.set(a.labels);
  labels.set(b.labels, a.rows);
  return { acts, rows: a.rows + b.rows, labels };
}

function shuffle<T>(a: T[], rng: AttackRandom): T[] {
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
