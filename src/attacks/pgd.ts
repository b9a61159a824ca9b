// PGD (Madry et al., 2018): BIM from a uniformly random point of the eps-ball, with restarts; L-inf
// or L2, cross-entropy or margin loss.
import { IterativeAttack } from './iterative.js';
import type { IterativeOptions } from './iterative.js';

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
