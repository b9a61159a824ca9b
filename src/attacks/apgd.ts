// APGD-CE (Croce & Hein, 2020, the first attack of AutoAttack): PGD with momentum whose step size
// needs no tuning. It starts at 2 * eps and is halved at checkpoints (apgdCheckpoints) when, since the last
// checkpoint, the loss rose in fewer than rho of the steps, or the step was not halved last time and
// the best loss has not improved. After a halving the image restarts from its best point so far.
import { Attack } from './attack.js';
import type { AttackBatch, Perturbation } from './attack.js';
import { ascend, project, randomStart } from './geometry.js';
import type { Norm } from './geometry.js';
import { norm as checkNorm, positive, positiveInt } from './options.js';

export interface ApgdOptions {
  eps: number;
  norm?: Norm;
  /** Gradient evaluations per image (default 100). */
  steps?: number;
  /** Share of steps that must raise the loss between checkpoints to keep the step size (0.75). */
  rho?: number;
  /** Weight of the new step against the previous one (0.75). */
  momentum?: number;
  randomStart?: boolean;
}

/**
 * The iterations (1-based) at which APGD reconsiders its step size. In integers, as AutoAttack
 * computes them: the first window is 22% of the steps, each next one 3% shorter, never below 6%.
 */
export function apgdCheckpoints(steps: number): number[] {
  const first = Math.max(Math.floor(0.22 * steps), 1);
  const shrink = Math.max(Math.floor(0.03 * steps), 1);
  const shortest = Math.max(Math.floor(0.06 * steps), 1);
  const out: number[] = [];
  for (let window = first, at = first; at <= steps; window = Math.max(window - shrink, shortest), at += window)
    out.push(at);
  return out;
}

/**
 * Auto-PGD with cross-entropy (Croce and Hein, "Reliable evaluation of adversarial robustness with an
 * ensemble of diverse parameter-free attacks", ICML 2020): PGD with momentum and a step size that
 * halves at checkpoints when progress stalls, restarting from the best point.
 *
 * Arguments: `eps`, `norm` ('linf' | 'l2'), `steps` (100), `rho` (0.75), `momentum` (0.75),
 * `randomStart`. Shapes: float32 [N, C, H, W] in [0, 1] in and out.
 *
 * @example
 * const r = await new APGD({ eps: 0.1, steps: 100 }).run(model, images, { labels });
 */
export class APGD extends Attack {
  readonly name = 'apgd';
  readonly norm: Norm;
  readonly eps: number;
  readonly steps: number;
  readonly rho: number;
  readonly momentum: number;
  readonly randomStart: boolean;

  constructor(options: ApgdOptions) {
    super();
    this.eps = positive('eps', options.eps);
    this.norm = checkNorm('norm', options.norm ?? 'linf');
    this.steps = positiveInt('steps', options.steps ?? 100);
    this.rho = positive('rho', options.rho ?? 0.75);
    this.momentum = positive('momentum', options.momentum ?? 0.75);
    this.randomStart = options.randomStart ?? true;
  }

  protected async perturb(batch: AttackBatch): Promise<Perturbation> {
    const { x0, perImage, rows } = batch;
    const all = Array.from({ length: rows }, (_, r) => r);
    const eta = new Float64Array(rows).fill(2 * this.eps);
    const adv = x0.slice();
    const found = new Uint8Array(rows);
    const checkpoints = new Set(apgdCheckpoints(this.steps));

    let x: Float32Array = this.randomStart ? randomStart(x0, this.eps, this.norm, perImage, batch.rng) : x0.slice();
    const start = await batch.crossEntropy(x, all);
    let grad: Float32Array = start.grad;
    const loss = start.loss;
    for (let r = 0; r < rows; r++) {
      if (batch.isAdversarial(start.logits, r, r)) {
        adv.set(x.subarray(r * perImage, (r + 1) * perImage), r * perImage);
        found[r] = 1;
      }
    }
    let previous: Float32Array = x.slice();
    const best = x.slice();
    const bestGrad = grad.slice();
    const bestLoss = Float64Array.from(loss);
    const lossNow = Float64Array.from(loss);
    const rises = new Int32Array(rows);
    const reducedLast = new Uint8Array(rows);
    const bestAtLastCheck = Float64Array.from(loss);
    let lastCheckpoint = 0;

    for (let k = 0; k < this.steps - 1; k++) {
      // z = P(x + eta * dir(g)); x' = P(x + a (z - x) + (1 - a)(x - x_prev)), a = 1 on the first step.
      const z = x.slice();
      ascend(z, grad, eta, this.norm, perImage);
      project(z, x0, this.eps, this.norm, perImage);
      const a = k === 0 ? 1 : this.momentum;
      const next = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) next[i] = x[i]! + a * (z[i]! - x[i]!) + (1 - a) * (x[i]! - previous[i]!);
      project(next, x0, this.eps, this.norm, perImage);
      previous = x;
      x = next;
      const out = await batch.crossEntropy(x, all);
      grad = out.grad;
      for (let r = 0; r < rows; r++) {
        const o = r * perImage;
        if (batch.isAdversarial(out.logits, r, r)) {
          adv.set(x.subarray(o, o + perImage), o);
          found[r] = 1;
        }
        const f = out.loss[r]!;
        if (f > lossNow[r]!) rises[r]!++;
        lossNow[r] = f;
        if (f > bestLoss[r]!) {
          bestLoss[r] = f;
          best.set(x.subarray(o, o + perImage), o);
          bestGrad.set(grad.subarray(o, o + perImage), o);
        }
      }
      const iteration = k + 1;
      if (checkpoints.has(iteration)) {
        const window = iteration - lastCheckpoint;
        for (let r = 0; r < rows; r++) {
          const oscillating = rises[r]! < this.rho * window;
          const stalled = !reducedLast[r] && bestAtLastCheck[r]! >= bestLoss[r]!;
          const reduce = oscillating || stalled;
          reducedLast[r] = reduce ? 1 : 0;
          bestAtLastCheck[r] = bestLoss[r]!;
          rises[r] = 0;
          if (reduce) {
            eta[r] = eta[r]! / 2;
            const o = r * perImage;
            x.set(best.subarray(o, o + perImage), o);
            previous.set(best.subarray(o, o + perImage), o);
            grad.set(bestGrad.subarray(o, o + perImage), o);
            lossNow[r] = bestLoss[r]!;
          }
        }
        lastCheckpoint = iteration;
      }
      batch.progress((k + 2) / this.steps);
    }
    // Images never adversarial leave with the point of highest loss.
    for (let r = 0; r < rows; r++)
      if (!found[r]) adv.set(best.subarray(r * perImage, (r + 1) * perImage), r * perImage);
    return { adv, spent: new Int32Array(rows).fill(this.steps) };
  }
}
