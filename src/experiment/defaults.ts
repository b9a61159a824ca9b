// The experiments' defaults, in one place: what `nfp fit`, `nfp evaluate` and `nfp demo` do when not
// told otherwise. Defaults of the layers below have their own owners (defaultScreenSettings and
// defaultImagesPerClass in bank/, defaultCalibration in detect/, defaultEvaluation in eval/,
// defaultActivationBytes in model/), which the CLI reads as well.
import type { AttackName } from '../attacks/index.js';
import type { AttackMode } from '../bank/index.js';

export const defaultFit = {
  /** Attack families of a bank: PGD and FGSM, the measured best (docs/results.md, *Full evaluation*). */
  attacks: ['pgd', 'fgsm'] as readonly AttackName[],
  attackMode: 'mixed' as AttackMode,
  /** Share of the data, taken from its end, held out to calibrate the thresholds. */
  calibrateShare: 0.2,
  /** Images per ONNX Runtime call while fitting (attacks and activations), at most (see fitBatchSize). */
  batchSize: 128,
  /**
   * Input values per gradient run at most: a gradient run holds every intermediate tensor of the
   * batch, about 220 MB per 224x224 image on ResNet-50, so large inputs take small batches
   * (6 images of 224x224x3; 128 of Fashion-MNIST's 28x28).
   */
  inputValuesPerRun: 2 ** 20,
};

/** Images per run for a model input of `inputShape`: defaultFit.batchSize, fewer for large inputs. */
export function fitBatchSize(inputShape: readonly number[]): number {
  const values = inputShape.reduce((a, b) => a * b, 1);
  return Math.max(1, Math.min(defaultFit.batchSize, Math.floor(defaultFit.inputValuesPerRun / values)));
}

/** The attacks `nfp evaluate` runs when not told which. */
export const defaultEvaluationAttacks: readonly AttackName[] = [
  'pgd',
  'fgsm',
  'mifgsm',
  'cw',
  'deepfool',
  'square',
  'apgd',
];
