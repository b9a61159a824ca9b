// FGSM (Goodfellow et al., 2015): one step of size eps along sign(grad) (L-inf), or along the
// L2-normalized gradient (the "fast gradient method", norm 'l2').
import { IterativeAttack } from './iterative.js';
import type { Norm } from './geometry.js';

export interface FgsmOptions {
  eps: number;
  norm?: Norm;
  loss?: 'ce' | 'margin';
}

/**
 * Fast Gradient Sign Method (Goodfellow, Shlens and Szegedy, "Explaining and Harnessing Adversarial
 * Examples", ICLR 2015): x' = clip(x + eps * sign(grad_x loss)), one gradient per image.
 *
 * Arguments: `eps` (the L-inf radius, or the L2 length with `norm: 'l2'`), `norm` ('linf' default),
 * `loss` ('ce' default, or the Carlini-Wagner 'margin').
 * Shapes: images float32 [N, C, H, W] in [0, 1]; `run` returns `adv` of the same shape and per image
 * `success`, `predicted`, `iterations` and `norms`.
 *
 * @example
 * const model = await GradientModel.load('models/fmnist-cnn.onnx', { taps: [] });
 * const { adv, success } = await new FGSM({ eps: 0.1 }).run(model, images, { labels });
 */
export class FGSM extends IterativeAttack {
  readonly name = 'fgsm';

  constructor(options: FgsmOptions) {
    super(
      { ...options, steps: 1, stepSize: options.eps, randomStart: false, restarts: 1, earlyStop: false },
      { steps: 1, stepSize: (eps) => eps, randomStart: false, decay: 0 },
    );
  }
}
