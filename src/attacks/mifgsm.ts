// MI-FGSM (Dong et al., 2018): BIM whose step follows an accumulated momentum of L1-normalized
// gradients, which escapes poor local maxima and transfers better.
import { IterativeAttack } from './iterative.js';
import type { IterativeOptions } from './iterative.js';

/**
 * Momentum Iterative FGSM (Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018):
 * BIM whose step follows a momentum of L1-normalized gradients (decay 1.0), L-inf only.
 *
 * Arguments: `eps`, `steps` (10), `stepSize` (eps / steps), `decay` (1), `earlyStop`, `loss`.
 * Shapes: float32 [N, C, H, W] in [0, 1] in and out.
 *
 * @example
 * const r = await new MIFGSM({ eps: 0.1 }).run(model, images, { labels });
 */
export class MIFGSM extends IterativeAttack {
  readonly name = 'mifgsm';

  /** Defaults as in the paper: 10 steps of eps / steps, decay 1.0, no random start, L-inf. */
  constructor(options: Omit<IterativeOptions, 'norm'>) {
    super(
      { ...options, norm: 'linf' },
      { steps: 10, stepSize: (eps, steps) => eps / steps, randomStart: false, decay: 1 },
    );
  }
}
