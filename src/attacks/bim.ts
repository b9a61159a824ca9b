// BIM (Kurakin et al., 2017): iterated FGSM from the clean image, projected back into the eps-ball.
import { IterativeAttack } from './iterative.js';
import type { IterativeOptions } from './iterative.js';

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
