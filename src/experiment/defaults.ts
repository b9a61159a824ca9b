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
  /** Images per ONNX Runtime call while fitting (attacks and activations). */
  batchSize: 128,
};

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
