// What counts as success, kept apart from the attacks (as Foolbox does): misclassification away
// from the true label, or classification as a chosen target. Every attack asks the criterion; none
// branches on "targeted" to decide success.
import type { SeededRandom } from '../random.js';

export class Criterion {
  private constructor(
    /** True label per image. */
    readonly labels: Int32Array,
    /** Target class per image, for targeted attacks. */
    readonly targets: Int32Array | undefined,
  ) {}

  static misclassification(labels: Int32Array): Criterion {
    return new Criterion(labels, undefined);
  }

  static targeted(labels: Int32Array, targets: Int32Array): Criterion {
    return new Criterion(labels, targets);
  }

  get targeted(): boolean {
    return this.targets !== undefined;
  }

  get size(): number {
    return this.labels.length;
  }

  /** The class whose cross-entropy (or margin) a loss is taken against: the label, or the target. */
  get lossClasses(): Int32Array {
    return this.targets ?? this.labels;
  }

  /** +1: climb the loss of the label (untargeted); -1: descend the loss of the target. */
  get direction(): 1 | -1 {
    return this.targets === undefined ? 1 : -1;
  }

  /** The rows `rows` (indices into this criterion) as a criterion of their own. */
  subset(rows: ArrayLike<number>): Criterion {
    const pick = (a: Int32Array) => Int32Array.from({ length: rows.length }, (_, i) => a[rows[i]!]!);
    return new Criterion(pick(this.labels), this.targets && pick(this.targets));
  }

  /**
   * Signed distance to success in logits: untargeted z_label - max_{j != label} z_j, targeted
   * max_{j != target} z_j - z_target. Negative means adversarial (ties aside). `logits` is the
   * one row of logits of image `row`.
   */
  margin(logits: Float32Array, row: number): number {
    const c = this.lossClasses[row]!;
    let other = -Infinity;
    for (let j = 0; j < logits.length; j++) if (j !== c && logits[j]! > other) other = logits[j]!;
    const own = logits[c]!;
    return this.targets === undefined ? own - other : other - own;
  }

  /** Success of image `row` by its predicted label (the first maximum of its logits row). */
  isAdversarial(logits: Float32Array, row: number): boolean {
    const predicted = argmax(logits, 0, logits.length);
    return this.targets === undefined ? predicted !== this.labels[row] : predicted === this.targets[row];
  }
}

export function argmax(logits: Float32Array, row: number, classes: number): number {
  const base = row * classes;
  let best = 0;
  for (let j = 1; j < classes; j++) if (logits[base + j]! > logits[base + best]!) best = j;
  return best;
}

/** A target per image drawn uniformly from the classes other than its label. */
export function randomTargets(labels: Int32Array, classes: number, rng: SeededRandom): Int32Array {
  if (classes < 2) throw new RangeError(`Expected at least 2 classes for random targets but received ${classes}`);
  return labels.map((label) => {
    const t = rng.int(classes - 1);
    return t >= label ? t + 1 : t;
  });
}
