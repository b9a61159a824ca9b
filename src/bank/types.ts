// The bank's data types: what a fit produces per class, the bank header and its arrays, as the
// .nfp file stores them. Types only, shared by fitting (fit.ts, build.ts), the bank (bank.ts) and
// the file format (format.ts).
import type { TapSample } from '../model/index.js';

export interface ScreenSettings {
  /** Distinct subsets screened per class, at most all of them (default 100,000; at k = 1: every neuron). */
  candidates: number;
  /** Neurons per subset (default 1, the measured best: docs/results.md, *Ablations*). */
  k: number;
  /** Significance required of the t-test (default 1e-3). */
  pMax: number;
  /** Effect size required, |Cohen's d| (default 1.5). */
  dMin: number;
  /** Fingerprints kept per class (default 2,000). */
  topK: number;
  /**
   * Below this many passing fingerprints a class is relaxed: the best by |d| among p < pMax, then
   * the best by |d| (default 25).
   */
  minFingerprints: number;
  /**
   * A fingerprint is not kept when its values on the clean images correlate above this (in absolute
   * value) with one already kept; 1 keeps every one (default 1; docs/results.md, *The detector family*).
   */
  maxCorrelation: number;
}

export interface ActivationSet {
  /** Row-major [rows x neurons]. */
  acts: Float32Array;
  rows: number;
}

export interface ClassFingerprints extends BankArrays {
  /** Candidates that passed p < pMax and |d| >= dMin for at least one family. */
  passed: number;
  /** Why the class kept fingerprints that did not pass, when it had to. */
  relaxed?: string;
  /** Mean |correlation| of the kept fingerprints on the clean images (redundancy.ts); absent when undefined. */
  redundancy?: number;
}

export interface BankTap {
  /** Tensor name in the model. */
  tensor: string;
  /** Neurons the tap contributes to the activation vector. */
  size: number;
  /** Present when the tap is a seeded random sample of the layer's neurons (a large layer under a neuron budget). */
  sample?: TapSample;
}

export interface BankClass {
  /** Whether this bank fitted the class (a shard fits some classes only). */
  fitted: boolean;
  /** Fingerprints kept. */
  count: number;
  /** Clean images, and attacked images per family, that the statistics came from. */
  clean: number;
  attacked: number[];
  /** Candidates that passed the screen. */
  passed: number;
  relaxed?: string;
  /** Mean |correlation| of the class's fingerprints on its clean fit images (absent in banks that predate it). */
  redundancy?: number;
}

/** Clean-image statistics for the detector's optional confidence term (src/detect/confidence.ts). */
export interface ConfidenceCalibration {
  /** Per class, per attack family: [center, scale] of the clean family sum (median, upper-tail spread). */
  fingerprint: Array<Array<[number, number]>>;
  /** The same for the clean confidence statistic, -log(top-1 minus top-2 logit). */
  margin: Array<[number, number]>;
}

export interface Calibration {
  fpr: number;
  draws: number;
  combine: 'max' | 'logsumexp';
  /** Threshold from all classes' clean scores. */
  global: number;
  /** Per class threshold where that class had enough clean images, else null (the global one applies). */
  perClass: Array<number | null>;
  /** Clean images and draws per image the thresholds came from. */
  images: number;
  drawsPerImage: number;
  /** Present when the thresholds are for fingerprints combined with the confidence term. */
  confidence?: ConfidenceCalibration;
}

/** Which images a bank was fitted and calibrated on, so an evaluation can hold them out. */
export interface DataRecord {
  /** File or folder name, for people. */
  source: string;
  /** SHA-256 of the float32 image tensor, to recognise the same data later. */
  sha256: string;
  images: number;
  /** Rows [start, end) used to fit, and to calibrate. */
  fit: [number, number];
  calibration?: [number, number];
}

export type FitRecord = ScreenSettings & {
  /** Activation memory per class that set the taps' neuron budget, when the fit applied one. */
  activationBytes?: number;
  attacks: Record<string, unknown>;
  seed?: number;
  cleanPerClass?: number;
  attackedPerClass?: number;
  data?: DataRecord;
};

export interface BankHeader {
  model: {
    sha256: string;
    source: string;
    inputShape: number[];
    classes: number;
    /**
     * Pixel values the model takes, as the fit images held them: [0, 1] for images in the library's
     * convention, else the integer hull of their range. Detection flags inputs outside it. Banks
     * written before it was recorded have none ([0, 1] is assumed).
     */
    inputRange?: [number, number];
  };
  taps: BankTap[];
  neurons: number;
  k: number;
  /** Attack family names, in the order of the attacked statistics. */
  families: string[];
  classes: BankClass[];
  fit: FitRecord;
  calibration?: Calibration;
  created: string;
}

export interface BankArrays {
  /** [F x k] */
  indices: Uint32Array;
  mu0: Float32Array;
  sd0: Float32Array;
  /** Family-major [families x F]. */
  mu1: Float32Array;
  sd1: Float32Array;
  /** Largest |d| over families, [F]. */
  effect: Float32Array;
}
