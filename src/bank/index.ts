// The bank's front door: fitting (screen + filter per class), the bank container, the .nfp file,
// and what a bank says about its family of detectors.
export { BankFormatError, FingerprintBank } from './bank.js';
export type {
  ActivationSet,
  BankArrays,
  BankClass,
  BankHeader,
  BankTap,
  Calibration,
  ClassFingerprints,
  ConfidenceCalibration,
  DataRecord,
  FitRecord,
  FittedClass,
  ScreenSettings,
} from './types.js';
export { buildBank, cleanShare, defaultImagesPerClass } from './build.js';
export type { AttackFamily, AttackMode, BuildOptions, BuildProgress } from './build.js';
export { CheckpointFolder, CheckpointMismatchError } from './checkpoint.js';
export type { ClassCheckpoints } from './checkpoint.js';
export { drawCandidates, subsetCount } from './candidates.js';
export { describeBank } from './describe.js';
export type { BankDescription } from './describe.js';
export { bankFamily, classFamily, defaultDraws, log10Binomial } from './family.js';
export type { ClassFamily } from './family.js';
export { FingerprintColumns, meanAbsCorrelation } from './redundancy.js';
export { defaultScreenSettings, fitClass } from './fit.js';
export { bankMagic, bankVersion, decodeBank, encodeBank, readBank, signedBankVersion, writeBank } from './format.js';
export type { ReadBankOptions } from './format.js';
export { SignatureError, generateSigningKeys, keyId } from './signature.js';
export type { KeyInput } from './signature.js';
