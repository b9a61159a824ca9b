// The detector's front door: FingerprintDetector (detect, calibrate), random draws, thresholds.
export { DetectorError, FingerprintDetector, defaultCalibration } from './detector.js';
export { defaultDraws } from '../bank/index.js';
export type { CalibrateOptions, Detection, DetectorOptions, Scored, Scorer } from './detector.js';
export { collectInputs, decodeForModel } from './inputs.js';
export type { CollectedInputs, DetectInput } from './inputs.js';
export { firstProblem, nonFiniteRows, pixelProblems } from './screen-inputs.js';
export { CryptoDraws, SeededDraws, drawDistinct, mixSeed } from './draws.js';
export type { DrawSource } from './draws.js';
export { thresholdFor } from './calibrate.js';
export {
  combineConfidence,
  confidenceStatistic,
  fitConfidence,
  logitMargins,
  standardizedStatistics,
} from './confidence.js';
