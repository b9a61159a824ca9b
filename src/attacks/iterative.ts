// The projected-gradient family in one loop: FGSM (one step of size eps), BIM (no random start),
// PGD (random start, restarts) and MI-FGSM (momentum on L1-normalized gradients). Each file of the
// family only fixes its defaults. Per step: climb the loss along sign(g) (L-inf) or g/||g|| (L2),
// then project onto the eps-ball and [0, 1].
import { gatherRows } from '../data/index.js';
import { Attack } from './attack.js';
import type { AttackBatch, Perturbation } from './attack.js';
import { ascend, l1Of, project, randomStart } from './geometry.js';
import type { Norm } from './geometry.js';
import { nonNegative, norm as checkNorm, oneOf, positive, positiveInt } from './options.js';

export type IterativeLoss = 'ce' | 'margin';

export interface IterativeOptions {
  /** Radius of the allowed perturbation. */
  eps: number;
  norm?: Norm;
  steps?: number;
  /** Step length per iteration (in the attack's norm). */
  stepSize?: number;
  randomStart?: boolean;
  /** Extra random restarts for images not yet adversarial. */
  restarts?: number;
  /** Freeze each image at its first adversarial iterate (fewer gradient calls, smaller perturbations). */
  earlyStop?: boolean;
  /** 'ce': cross-entropy; 'margin': the Carlini-Wagner logit margin. */
  loss?: IterativeLoss;
  /** Momentum decay (MI-FGSM); 0 for none. */
  decay?: number;
}

export abstract class IterativeAttack extends Attack {
  readonly norm: Norm;
  readonly eps: number;
  readonly steps: number;
  readonly stepSize: number;
  readonly randomStart: boolean;
  readonly restarts: number;
  readonly earlyStop: boolean;
  readonly loss: IterativeLoss;
  readonly decay: number;

  protected constructor(
    options: IterativeOptions,
    defaults: { steps: number; stepSize: (eps: number, steps: number) => number; randomStart: boolean; decay: number },
  ) {
    super();
    this.eps = positive('eps', options.eps);
    this.norm = checkNorm('norm', options.norm ?? 'linf');
    this.steps = positiveInt('steps', options.steps ?? defaults.steps);
    this.stepSize = positive('stepSize', options.stepSize ?? defaults.stepSize(this.eps, this.steps));
    this.randomStart = options.randomStart ?? defaults.randomStart;
    this.restarts = positiveInt('restarts', options.restarts ?? 1);
    this.earlyStop = options.earlyStop ?? false;
    this.loss = oneOf('loss', options.loss ?? 'ce', ['ce', 'margin']);
    this.decay = nonNegative('decay', options.decay ?? defaults.decay);
  }

  protected async perturb(batch: AttackBatch): Promise<Perturbation> {
    const { x0, perImage, rows } = batch;
    const adv = x0.slice();
    const spent = new Int32Array(rows);
    const done = new Uint8Array(rows);
    const bestMargin = new Float64Array(rows).fill(Infinity);
    const total = this.restarts * this.steps;
    for (let restart = 0; restart < this.restarts; restart++) {
      let live = Array.from({ length: rows }, (_, r) => r).filter((r) => !done[r]);
      if (live.length === 0) break;
      let clean: Float32Array = gatherRows(x0, live, perImage);
      let x: Float32Array = this.randomStart
        ? randomStart(clean, this.eps, this.norm, perImage, batch.rng)
        : clean.slice();
      let momentum: Float32Array | undefined = this.decay > 0 ? new Float32Array(x.length) : undefined;
      for (let step = 0; step < this.steps && live.length > 0; step++) {
        const { grad, logits } = await this.objective(batch, x, live);
        if (this.earlyStop) {
          const keep: number[] = [];
          live.forEach((r, i) => {
            if (batch.isAdversarial(logits, i, r)) {
              adv.set(x.subarray(i * perImage, (i + 1) * perImage), r * perImage);
              done[r] = 1;
              bestMargin[r] = batch.marginOf(logits, i, r);
            } else keep.push(i);
          });
          if (keep.length < live.length) {
            live = keep.map((i) => live[i]!);
            [x, clean] = [gatherRows(x, keep, perImage), gatherRows(clean, keep, perImage)];
            momentum = momentum && gatherRows(momentum, keep, perImage);
            const g = gatherRows(grad, keep, perImage);
            if (live.length === 0) break;
            this.step(x, clean, g, momentum, perImage);
          } else this.step(x, clean, grad, momentum, perImage);
        } else this.step(x, clean, grad, momentum, perImage);
        for (const r of live) spent[r]!++;
        batch.progress((restart * this.steps + step + 1) / total);
      }
      if (live.length === 0) continue;
      // The final iterate of this restart: kept when adversarial, else when closest to it so far.
      const logits = await batch.logits(x, live.length);
      live.forEach((r, i) => {
        const m = batch.marginOf(logits, i, r);
        const success = batch.isAdversarial(logits, i, r);
        if (success || m < bestMargin[r]!) {
          adv.set(x.subarray(i * perImage, (i + 1) * perImage), r * perImage);
          bestMargin[r] = m;
        }
        if (success) done[r] = 1;
      });
    }
    return { adv, spent };
  }

  private step(
    x: Float32Array,
    clean: Float32Array,
    grad: Float32Array,
    momentum: Float32Array | undefined,
    perImage: number,
  ): void {
    let direction = grad;
    if (momentum !== undefined) {
      // MI-FGSM: g <- decay * g + grad / ||grad||_1, per image.
      for (let o = 0; o < x.length; o += perImage) {
        const inv = 1 / Math.max(l1Of(grad, o, perImage), 1e-12);
        for (let i = o; i < o + perImage; i++) momentum[i] = this.decay * momentum[i]! + grad[i]! * inv;
      }
      direction = momentum;
    }
    ascend(x, direction, this.stepSize, this.norm, perImage);
    project(x, clean, this.eps, this.norm, perImage);
  }

  /** The gradient to climb: cross-entropy, or minus the criterion's margin. */
  private async objective(
    batch: AttackBatch,
    x: Float32Array,
    rows: number[],
  ): Promise<{ grad: Float32Array; logits: Float32Array }> {
    if (this.loss === 'ce') return batch.crossEntropy(x, rows);
    const out = await batch.margin(x, rows);
    for (let i = 0; i < out.grad.length; i++) out.grad[i] = -out.grad[i]!;
    return out;
  }
}
