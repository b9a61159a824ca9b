// The bank's front door: fitting (screen + filter per class), the bank container, the .nfp file.
export { BankFormatError, FingerprintBank } from './bank.js';
export type {
  BankArrays,
  BankClass,
  BankHeader,
  BankTap,
  Calibration,
  ConfidenceCalibration,
  DataRecord,
  FitRecord,
} from './bank.js';
export { buildBank, defaultImagesPerClass } from './build.js';
export type { AttackFamily, AttackMode, BuildOptions, BuildProgress } from './build.js';
export { drawCandidates, subsetCount } from './candidates.js';
export { describeBank } from './describe.js';
export type { BankDescription } from './describe.js';
export { bankFamily, classFamily, log10Binomial } from './family.js';
export type { ClassFamily } from './family.js';
export { FingerprintColumns, meanAbsCorrelation } from './redundancy.js';
export { defaultScreenSettings, fitClass } from './fit.js';
export type { ActivationSet, ClassFingerprints, ScreenSettings } from './fit.js';
export { bankMagic, bankVersion, decodeBank, encodeBank, readBank, writeBank } from './format.js';
