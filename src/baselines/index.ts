// The peer detectors' front door: Mahalanobis (Lee et al. 2018), LID (Ma et al. 2018) and feature
// squeezing (Xu et al. 2018) behind one interface, and their evaluation side by side.
export { Baseline, BaselineError, baselineNames } from './baseline.js';
export type { BaselineFitData, BaselineName, Cost, LabelledImages } from './baseline.js';
export { MahalanobisDetector, mahalanobisMagnitudes } from './mahalanobis.js';
export type { MahalanobisOptions } from './mahalanobis.js';
export { LidDetector, lidEstimate } from './lid.js';
export type { LidModel, LidOptions } from './lid.js';
export {
  FeatureSqueezingDetector,
  defaultSqueezers,
  medianFilter,
  reduceBitDepth,
  softmaxRows,
  squeeze,
} from './squeeze.js';
export type { SqueezeOptions, Squeezer } from './squeeze.js';
export { decisionFunction, defaultCs, fitLogistic, fitLogisticCV, stratifiedFolds } from './logistic.js';
export type { CrossValidated, CrossValidationOptions, FeatureMatrix, LogisticModel } from './logistic.js';
export { TiedGaussians } from './gaussians.js';
export { channelLayers, channelMeans, spreadChannelGradient } from './layers.js';
export type { ChannelLayer } from './layers.js';
export { baselineEvaluationSchema, baselineTable, createBaseline, evaluateBaselines } from './evaluate.js';
export type {
  BaselineAttackResult,
  BaselineEvaluation,
  BaselineEvaluationOptions,
  BaselineResult,
  BaselineSettings,
} from './evaluate.js';
