// The experiment layer's front door: fit -> calibrate -> evaluate -> report as composed calls that
// the CLI, the demo, the scripts and the benches share. Each takes options and returns results; none
// parses arguments or prints (the CLI does), and every option is checked before work starts.
export { attackExperiment } from './attack.js';
export type { AttackExperimentOptions } from './attack.js';
export { imageOptionsFor, limitRows, loadLabelled, openData, readRows, rowsOf } from './data.js';
export type { ImageReadOptions, LabelledData, OpenData, OpenDataOptions } from './data.js';
export { calibrateExperiment } from './calibrate.js';
export type { CalibrateExperimentOptions } from './calibrate.js';
export { defaultEvaluationAttacks, defaultFit, fitBatchSize } from './defaults.js';
export { defaultDetectBatch, detectFiles } from './detect.js';
export type { DetectFilesOptions, FileDetection } from './detect.js';
export { runDemo } from './demo.js';
export type { DemoOptions, DemoResult } from './demo.js';
export { ExperimentError } from './errors.js';
export { evaluateExperiment, heldOut, reportNames } from './evaluate.js';
export { baselineExperiment, checkBaselineRequest, defaultBaselineFitSources } from './baselines.js';
export type { BaselineExperimentOptions } from './baselines.js';
export type { EvaluateExperimentOptions, EvaluateExperimentResult } from './evaluate.js';
export { defaultEotFamily, eotFamilies, eotFamilyName } from './eot-family.js';
export type { EotFamilyOptions } from './eot-family.js';
export { checkFitOptions, checkOutPath, describeTapPlan, fitExperiment } from './fit.js';
export type { FitExperimentOptions, FitSummary } from './fit.js';
export { parseShard, shardClasses, shardIndexVariable } from './shard.js';
export type { Shard } from './shard.js';
export { defaultPredictBatch, predictExperiment } from './predict.js';
export type { Prediction, PredictExperimentOptions, PredictSummary } from './predict.js';
export { evaluationSummary, significant } from './summary.js';
export type { EvaluationSummary } from './summary.js';
export {
  checkModel,
  fitDefaults,
  fitMemory,
  groupedProblems,
  ModelCheckError,
  purposes,
  requireModel,
} from './check.js';
export type { CheckOptions, FitMemory, FitSize, ModelCheck, Purpose } from './check.js';
export { dataForModel, imagesFor } from './data.js';
export type { DataBatch, DataReader } from './data.js';
export {
  adaptiveExperiment,
  adaptiveFprs,
  correctlyClassified,
  defaultAdaptiveSettings,
  parseAdaptiveSettings,
} from './adaptive.js';
export type {
  AdaptiveExperimentOptions,
  AdaptiveResults,
  AdaptiveRow,
  AdaptiveSettings,
  Evasion,
  RejectionRow,
} from './adaptive.js';
export { adaptiveMarkdown } from './adaptive-report.js';
