// Evaluation's front door: metrics (AUC, TPR at FPR, ROC) and the evaluation of a calibrated detector.
export { auc, rateAbove, rocCurve, summarize, tprAtFpr } from './metrics.js';
export type { Summary } from './metrics.js';
export { defaultEvaluation, evaluate, evaluationSchema } from './evaluate.js';
export type { EvaluateOptions } from './evaluate.js';
export type {
  Ablation,
  AblationAttackRow,
  AblationRow,
  AdversarialSet,
  AttackEvaluation,
  Evaluation,
  EvaluationAttack,
  Scores,
} from './types.js';
export { markdownRow } from './markdown.js';
export { writeReport } from './report.js';
export { matrixSchema, writeMatrix } from './matrix.js';
export type { ReportContext } from './report.js';
export { AblationError, checkAblationTaps, checkAblations, runAblations } from './ablation.js';
export type { AblationOptions } from './ablation.js';
export { ablationParameters, ablationTitles, refitParameters, settingLabel } from './ablation-spec.js';
export type { AblationParameter, AblationSpec } from './ablation-spec.js';
export { keepTopFingerprints } from './top-fingerprints.js';
export { recordedFamilies, refitBank, sameFingerprints } from './refit.js';
export type { RefitOptions } from './refit.js';
