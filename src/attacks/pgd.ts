// PGD (Madry et al., 2018): BIM from a uniformly random point of the eps-ball, with restarts; L-inf
// or L2, cross-entropy or margin loss.
import { IterativeAttack } from './iterative.js';
import type { IterativeOptions } from './iterative.js';

/**
 * Projected Gradient Descent (Madry et al., "Towards Deep Learning Models Resistant to Adversarial
 * Attacks", ICLR 2018): BIM from a uniformly random point of the eps-ball, with random restarts for
 * images that are not yet adversarial.
 *
 * Arguments: `eps`, `norm` ('linf' default | 'l2'), `steps` (20), `stepSize` (2.5 * eps / steps),
 * `restarts` (1), `earlyStop`, `loss` ('ce' | 'margin'), `randomStart` (true).
 * Shapes: float32 [N, C, H, W] in [0, 1] in and out; targeted with `targets` (Int32Array [N]).
 *
 * @example
 * const pgd = new PGD({ eps: 0.1, steps: 20 });
 * const { adv, success, norms } = await pgd.run(model, images, { labels, seed: 1 });
 */
export class PGD extends IterativeAttack {
  readonly name = 'pgd';

  /** Defaults: 20 steps of 2.5 * eps / steps (Madry et al.), random start, one restart, no early stop. */
  constructor(options: Omit<IterativeOptions, 'decay'>) {
    super(
      { ...options, decay: 0 },
      { steps: 20, stepSize: (eps, steps) => (2.5 * eps) / steps, randomStart: true, decay: 0 },
    );
  }
}
