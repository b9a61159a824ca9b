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
export { buildBank } from './build.js';
export type { AttackFamily, BuildOptions, BuildProgress } from './build.js';
export { drawCandidates } from './candidates.js';
export { defaultScreenSettings, fitClass } from './fit.js';
export type { ActivationSet, ClassFingerprints, ScreenSettings } from './fit.js';
export { bankMagic, bankVersion, decodeBank, encodeBank, readBank, writeBank } from './format.js';
