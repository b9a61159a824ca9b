// The machinery every attack shares (as torchattacks' base class owns it): argument checks, the
// criterion, seeded randomness, splitting into batches, progress, the final verification pass and
// the result. Each attack implements only `perturb`, its own idea, on one batch.
import type { GradientRequest, GradientResult } from '../autodiff/index.js';
import type { ImageBatch } from '../model/index.js';
import { Criterion, argmax } from './criterion.js';
import { perturbationNorms } from './geometry.js';
import type { Norm } from './geometry.js';
import { SeededRandom } from '../random.js';

/** What an attack needs of a model; GradientModel provides it. */
export interface AttackModel {
  readonly inputShape: number[];
  readonly classes: number;
  /** Logits [rows x classes], no gradient. */
  logits(images: ImageBatch): Promise<Float32Array>;
  gradient(images: ImageBatch, request: GradientRequest): Promise<GradientResult>;
}

export interface AttackOptions {
  /** True label per image. */
  labels: Int32Array;
  /** Target class per image: makes the attack targeted (success = predicted as the target). */
  targets?: Int32Array;
  /** Reproduces a run exactly; random (node:crypto) by default. */
  seed?: number;
  /**
   * A random stream to continue instead of `seed`: runs over consecutive parts of the images (a file read
   * in batches) that share one stream draw what one run over all of them draws.
   */
  random?: SeededRandom;
  /** Images attacked together (default 128). */
  batchSize?: number;
  /** Called as work completes, with images done (fractional within a batch) and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface AttackResult {
  attack: string;
  /** The norm the attack bounds or minimizes. */
  norm: Norm;
  /** Adversarial images, same shape as the input, in [0, 1]. */
  adv: Float32Array;
  dims: number[];
  /** 1 where the final image meets the criterion (checked by a final forward pass). */
  success: Uint8Array;
  /** The model's label for each adversarial image. */
  predicted: Int32Array;
  /** Gradient steps spent per image (gradient attacks). */
  iterations?: Int32Array;
  /** Model queries spent per image (score-based attacks). */
  queries?: Int32Array;
  norms: { linf: Float32Array; l2: Float32Array };
  seconds: number;
}

/** One batch as an attack sees it: clean images, criterion, randomness and the model's losses. */
export class AttackBatch {
  constructor(
    readonly model: AttackModel,
    /** Clean images of this batch. */
    readonly x0: Float32Array,
    readonly criterion: Criterion,
    readonly rng: SeededRandom,
    private readonly report: (fraction: number) => void,
  ) {}

  get rows(): number {
    return this.criterion.size;
  }
  get classes(): number {
    return this.model.classes;
  }
  get perImage(): number {
    return this.x0.length / this.rows;
  }

  dims(rows: number): number[] {
    return [rows, ...this.model.inputShape];
  }

  /** Reports the fraction of this batch done. */
  progress(fraction: number): void {
    this.report(Math.min(1, Math.max(0, fraction)));
  }

  /**
   * At images x (rows `rows` of this batch, in order): the gradient of the attack objective
   * direction * CE(lossClass), which the attack climbs, with that objective per image and the logits.
   */
  async crossEntropy(
    x: Float32Array,
    rows: ArrayLike<number>,
  ): Promise<{ grad: Float32Array; loss: Float32Array; logits: Float32Array }> {
    const { grad, value, logits } = await this.signedLoss(x, rows, 'labels');
    return { grad, loss: value, logits };
  }

  /** At images x (rows `rows`): the criterion's margin (negative = adversarial), its gradient and the logits. */
  async margin(
    x: Float32Array,
    rows: ArrayLike<number>,
  ): Promise<{ grad: Float32Array; margin: Float32Array; logits: Float32Array }> {
    const { grad, value, logits } = await this.signedLoss(x, rows, 'marginLabels');
    return { grad, margin: value, logits };
  }

  /** Cross-entropy or margin against the loss classes, negated with its gradient for targeted criteria. */
  private async signedLoss(
    x: Float32Array,
    rows: ArrayLike<number>,
    kind: 'labels' | 'marginLabels',
  ): Promise<{ grad: Float32Array; value: Float32Array; logits: Float32Array }> {
    const sub = this.criterion.subset(rows);
    const out = await this.model.gradient(
      { data: x, dims: this.dims(rows.length) },
      { [kind]: sub.lossClasses, activations: false },
    );
    const value = (kind === 'labels' ? out.loss : out.margin)!;
    if (sub.direction < 0) {
      for (let i = 0; i < out.grad.length; i++) out.grad[i] = -out.grad[i]!;
      for (let i = 0; i < value.length; i++) value[i] = -value[i]!;
    }
    return { grad: out.grad, value, logits: out.logits };
  }

  /** d(sum_r seed[r] . logits[r]) / dx for arbitrary logit seeds (rows need not be batch rows). */
  async logitGradient(
    x: Float32Array,
    rows: number,
    logitSeed: Float32Array,
  ): Promise<{ grad: Float32Array; logits: Float32Array }> {
    const out = await this.model.gradient({ data: x, dims: this.dims(rows) }, { logitSeed, activations: false });
    return { grad: out.grad, logits: out.logits };
  }

  async logits(x: Float32Array, rows: number): Promise<Float32Array> {
    return this.model.logits({ data: x, dims: this.dims(rows) });
  }

  /** Row i of a [n x classes] logits matrix. */
  logitsRow(logits: Float32Array, i: number): Float32Array {
    return logits.subarray(i * this.classes, (i + 1) * this.classes);
  }

  /** Whether row i of `logits` meets the criterion of batch row `row`. */
  isAdversarial(logits: Float32Array, i: number, row: number): boolean {
    return this.criterion.isAdversarial(this.logitsRow(logits, i), row);
  }

  /** The criterion's margin (negative = adversarial) of row i of `logits`, for batch row `row`. */
  marginOf(logits: Float32Array, i: number, row: number): number {
    return this.criterion.margin(this.logitsRow(logits, i), row);
  }
}

/** What `perturb` returns for one batch. */
export interface Perturbation {
  adv: Float32Array;
  /** Per image: gradient iterations or queries, as the attack's `cost` says. */
  spent: Int32Array;
}

export abstract class Attack {
  abstract readonly name: string;
  abstract readonly norm: Norm;
  /** What `spent` counts. */
  readonly cost: 'iterations' | 'queries' = 'iterations';

  /** Attacks a batch of the caller's images; the base class has checked every argument. */
  protected abstract perturb(batch: AttackBatch): Promise<Perturbation>;

  async run(model: AttackModel, images: ImageBatch, options: AttackOptions): Promise<AttackResult> {
    const started = performance.now();
    const { data, dims } = checkImages(model, images);
    const rows = dims[0]!;
    const perImage = rows === 0 ? 0 : data.length / rows;
    const labels = checkClasses('labels', options.labels, rows, model.classes);
    const targets =
      options.targets === undefined ? undefined : checkClasses('targets', options.targets, rows, model.classes);
    if (targets !== undefined) {
      const same = targets.findIndex((t, i) => t === labels[i]);
      if (same >= 0)
        throw new RangeError(
          `Expected targets different from labels but received ` +
            `target ${targets[same]} equal to the label of image ${same}`,
        );
    }
    const batchSize = options.batchSize ?? 128;
    if (!Number.isInteger(batchSize) || batchSize < 1)
      throw new RangeError(`Expected a positive integer for batchSize but received ${batchSize}`);
    const rng = options.random ?? new SeededRandom(options.seed);
    const criterion = targets === undefined ? Criterion.misclassification(labels) : Criterion.targeted(labels, targets);

    const adv = new Float32Array(data.length);
    const spent = new Int32Array(rows);
    for (let start = 0; start < rows; start += batchSize) {
      const n = Math.min(batchSize, rows - start);
      const index = Int32Array.from({ length: n }, (_, i) => start + i);
      const batch = new AttackBatch(
        model,
        data.slice(start * perImage, (start + n) * perImage),
        criterion.subset(index),
        rng,
        (fraction) => options.onProgress?.(start + fraction * n, rows),
      );
      const out = await this.perturb(batch);
      adv.set(out.adv, start * perImage);
      spent.set(out.spent, start);
      options.onProgress?.(start + n, rows);
    }
    // Guarantees the contract whatever an attack did: the box, and success as the model sees it.
    for (let i = 0; i < adv.length; i++) {
      const v = adv[i]!;
      if (!(v >= 0)) adv[i] = 0;
      else if (v > 1) adv[i] = 1;
    }
    const logits = rows === 0 ? new Float32Array(0) : await model.logits({ data: adv, dims: [...dims] });
    const k = model.classes;
    const success = new Uint8Array(rows);
    const predicted = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      predicted[r] = argmax(logits, r, k);
      success[r] = criterion.isAdversarial(logits.subarray(r * k, (r + 1) * k), r) ? 1 : 0;
    }
    return {
      attack: this.name,
      norm: this.norm,
      adv,
      dims: [...dims],
      success,
      predicted,
      ...(this.cost === 'iterations' ? { iterations: spent } : { queries: spent }),
      norms: perturbationNorms(adv, data, perImage),
      seconds: (performance.now() - started) / 1000,
    };
  }
}

function checkImages(model: AttackModel, images: ImageBatch): { data: Float32Array; dims: readonly number[] } {
  const data = images?.data;
  const dims = images?.dims;
  const shape = model.inputShape;
  if (
    !(data instanceof Float32Array) ||
    !Array.isArray(dims) ||
    dims.length !== shape.length + 1 ||
    dims.slice(1).some((d, i) => d !== shape[i]) ||
    !Number.isInteger(dims[0]) ||
    dims[0]! < 0 ||
    data.length !== dims.reduce((a: number, v: number) => a * v, 1)
  ) {
    throw new TypeError(
      `Expected float32 images of shape [N, ${shape.join(', ')}] for images but ` +
        `received ${data?.constructor?.name ?? typeof data} [${Array.isArray(dims) ? dims.join(', ') : String(dims)}]`,
    );
  }
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (!(v >= 0 && v <= 1))
      throw new RangeError(`Expected values in [0, 1] for images but received ${v} at index ${i}`);
  }
  return { data, dims };
}

function checkClasses(name: string, values: Int32Array, rows: number, classes: number): Int32Array {
  if (!(values instanceof Int32Array) || values.length !== rows) {
    const received = `${values?.constructor?.name ?? typeof values} of ${(values as { length?: number })?.length}`;
    throw new TypeError(`Expected an Int32Array of ${rows} classes for ${name} but received ${received}`);
  }
  const bad = values.findIndex((c) => c < 0 || c >= classes);
  if (bad >= 0)
    throw new RangeError(`Expected classes in [0, ${classes}) for ${name} but received ${values[bad]} at index ${bad}`);
  return values;
}
