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
