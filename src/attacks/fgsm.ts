// FGSM (Goodfellow et al., 2015): one step of size eps along sign(grad) (L-inf), or along the
// L2-normalized gradient (the "fast gradient method", norm 'l2').
import { IterativeAttack } from './iterative.js';
import type { Norm } from './geometry.js';

export interface FgsmOptions {
  eps: number;
  norm?: Norm;
  loss?: 'ce' | 'margin';
}

export class FGSM extends IterativeAttack {
  readonly name = 'fgsm';

  constructor(options: FgsmOptions) {
    super(
      { ...options, steps: 1, stepSize: options.eps, randomStart: false, restarts: 1, earlyStop: false },
      { steps: 1, stepSize: (eps) => eps, randomStart: false, decay: 0 },
    );
  }
}
