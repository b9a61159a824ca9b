// The public API of neural-fingerprints.
export {
  Bank,
  addonSource,
  info,
  rowsWithin,
  screen,
  screenSync,
  setBackend,
  setThreads,
  subsetMeans,
  subsetMeansSync,
} from './kernels.js';
export type {
  AddonSource,
  BackendName,
  BankSpec,
  Combine,
  DetectOptions,
  DetectResult,
  BoundDetectOptions,
  DrawOptions,
  NativeInfo,
  NativeTapBinding,
  RowsWithinOptions,
  ScreenOptions,
  ScreenResult,
  SubsetMeansOptions,
  TTest,
  TapBuffer,
  TapDrawOptions,
  TapShape,
} from './native.js';
export { version } from './version.js';
export {
  Classifier,
  ClassifierError,
  ModelFormatError,
  TapError,
  measureReadoutCost,
  shippedModel,
  shippedModels,
} from './model/index.js';
export type {
  ClassifierOptions,
  ClassifierOutput,
  ImageBatch,
  LayerInfo,
  Layout,
  OutputKind,
  Preprocess,
  ReadoutCost,
  ReadoutCostOptions,
  ReadoutCosts,
  SessionSettings,
  TapLayout,
  TapSpec,
} from './model/index.js';
export {
  DataFormatError,
  decodeImage,
  fashionMnistClasses,
  imagesForModel,
  loadFashionMnist,
  loadImageFolder,
  loadLabelFile,
  loadTensorFile,
  readIdx,
  readIdxImages,
  readIdxLabels,
  readNpy,
  toLayout,
  writeNpy,
} from './data/index.js';
export { ModelCheckError, checkModel, requireModel } from './experiment/index.js';
export type { CheckOptions, ModelCheck } from './experiment/index.js';
export type { FashionMnist, ImageFolder, ImageFolderOptions, NpyArray, TensorFile } from './data/index.js';
export { GradientError, GradientModel } from './autodiff/index.js';
export type { GradientModelOptions, GradientRequest, GradientResult } from './autodiff/index.js';
export {
  APGD,
  Attack,
  AttackBatch,
  BIM,
  CarliniWagnerL2,
  Criterion,
  DeepFool,
  FGSM,
  MIFGSM,
  PGD,
  Square,
  attackNames,
  createAttack,
  randomTargets,
} from './attacks/index.js';
export type {
  ApgdOptions,
  AttackModel,
  AttackName,
  AttackOptions,
  AttackResult,
  AttackSettings,
  CwOptions,
  DeepFoolOptions,
  FgsmOptions,
  IterativeOptions,
  Norm,
  SquareOptions,
} from './attacks/index.js';
export {
  BankFormatError,
  FingerprintBank,
  buildBank,
  decodeBank,
  encodeBank,
  fitClass,
  readBank,
  writeBank,
} from './bank/index.js';
export type {
  AttackFamily,
  BankHeader,
  BuildOptions,
  BuildProgress,
  Calibration,
  ClassFingerprints,
  ScreenSettings,
} from './bank/index.js';
export { DetectorError, FingerprintDetector } from './detect/index.js';
export type { CalibrateOptions, DetectInput, Detection, DetectorOptions, Scorer } from './detect/index.js';
export {
  Baseline,
  BaselineError,
  FeatureSqueezingDetector,
  LidDetector,
  MahalanobisDetector,
  baselineNames,
  createBaseline,
  evaluateBaselines,
} from './baselines/index.js';
export type {
  BaselineEvaluation,
  BaselineEvaluationOptions,
  BaselineFitData,
  BaselineName,
  BaselineResult,
  LidOptions,
  MahalanobisOptions,
  SqueezeOptions,
  Squeezer,
} from './baselines/index.js';
export { auc, tprAtFpr } from './eval/index.js';
export { SeededRandom } from './random.js';
