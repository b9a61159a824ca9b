// BIM (Kurakin et al., 2017): iterated FGSM from the clean image, projected back into the eps-ball.
import { IterativeAttack } from './iterative.js';
import type { IterativeOptions } from './iterative.js';

/**
 * Basic Iterative Method (Kurakin, Goodfellow and Bengio, "Adversarial examples in the physical
 * world", ICLR 2017 workshop): FGSM steps of `stepSize` from the clean image, each projected back
 * into the eps-ball and [0, 1].
 *
 * Arguments: `eps`, `norm` ('linf' | 'l2'), `steps` (10), `stepSize` (eps / 4), `restarts`,
 * `earlyStop` (freeze an image at its first adversarial iterate), `loss` ('ce' | 'margin').
 * Shapes: as every attack, float32 [N, C, H, W] in [0, 1] in and out.
 *
 * @example
 * const r = await new BIM({ eps: 0.1, steps: 10 }).run(model, images, { labels });
 */
export class BIM extends IterativeAttack {
  readonly name = 'bim';

  /** Defaults: 10 steps of eps / 4 (as torchattacks: 8/255 in steps of 2/255), L-inf. */
  constructor(options: Omit<IterativeOptions, 'randomStart' | 'decay'>) {
    super(
      { ...options, randomStart: false, decay: 0 },
      { steps: 10, stepSize: (eps) => eps / 4, randomStart: false, decay: 0 },
    );
  }
}
