// The public API of neural-fingerprints.
export { Bank, info, screen, screenSync, setBackend, setThreads, subsetMeans, subsetMeansSync } from './kernels.js';
export type {
  BackendName,
  BankSpec,
  Combine,
  DetectOptions,
  DetectResult,
  DrawOptions,
  NativeInfo,
  ScreenOptions,
  ScreenResult,
  SubsetMeansOptions,
  TTest,
} from './native.js';
export { version } from './version.js';
export { Classifier, ClassifierError, ModelFormatError, TapError } from './model/index.js';
export type { ClassifierOptions, ClassifierOutput, ImageBatch, LayerInfo, Preprocess, SessionSettings, TapLayout, TapSpec } from './model/index.js';
