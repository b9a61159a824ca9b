// The evaluation's data types: what an evaluation (evaluate.ts) and its ablations (ablation.ts)
// produce, as metrics.json stores them (schema nfp-evaluation/1). Types only.
import type { Attack } from '../attacks/index.js';
import type { ImageBatch, TapSpec } from '../model/index.js';
import type { AblationParameter } from './ablation-spec.js';
import type { Summary } from './metrics.js';

export interface EvaluationAttack {
  name: string;
  attack: Attack;
  settings: Record<string, unknown>;
}

/** Successful adversarial images of one attack, and how many images were attacked. */
export interface AdversarialSet {
  images: ImageBatch;
  sources: number;
}

export interface Scores {
  clean: number[];
  attacked: number[];
}

export interface AttackEvaluation {
  attack: string;
  settings: Record<string, unknown>;
  sources: number;
  adversarial: number;
  successRate: number;
  auc: number;
  tprAt1: number;
  tprAt5: number;
  /** Share of adversarial images above the calibrated threshold. */
  tprAtThreshold: number;
  perClass: Array<{
    class: number;
    clean: number;
    adversarial: number;
    auc: number | null;
    tprAtThreshold: number | null;
  }>;
  /** R independent random detectors: summaries, and each one's AUC. */
  consistency: { detectors: number; auc: Summary; tprAt5: Summary; tprAtThreshold: Summary; aucs: number[] };
  baselines: { fixedFingerprints: { auc: number; tprAt5: number }; maxSoftmax: { auc: number; tprAt5: number } };
  roc: { fpr: number[]; tpr: number[] };
  /** Score minus the calibrated threshold of the predicted class, for histograms. */
  scores: Scores;
  seconds: number;
}

export interface Evaluation {
  schema: 'nfp-evaluation/1';
  bank: {
    model: string;
    sha256: string;
    neurons: number;
    k: number;
    families: string[];
    fingerprints: number;
    draws: number;
    combine: string;
    fpr: number | null;
    /**
     * Per class, the family of detectors the draw picks from (bank/family.ts): distinct fingerprints
     * and neurons, log10 of the number of distinct draws, redundancy. Absent in reports written
     * before it was added.
     */
    family?: Array<{
      class: number;
      fingerprints: number;
      distinct: number;
      neurons: number;
      log10Draws: number;
      redundancy: number | null;
    }>;
  };
  clean: {
    images: number;
    correct: number;
    accuracy: number;
    fprAtThreshold: number;
    perClassFpr: Array<number | null>;
  };
  attacks: AttackEvaluation[];
  seconds: number;
  /**
   * Optional (nfp evaluate --ablate; absent otherwise, schema unchanged): per ablated parameter
   * (draws, top, k, candidates or taps), one row per setting with the recalibrated detector's
   * measured FPR and, per attack on the same attacked images, AUC, TPR at 5% FPR and at the
   * threshold, and the AUC mean and std over the random detectors. See ablation.ts.
   */
  ablations?: Ablation[];
}

export interface AblationAttackRow {
  attack: string;
  adversarial: number;
  auc: number;
  tprAt5: number;
  tprAtThreshold: number;
  /** AUC over the independent random detectors. */
  aucMean: number;
  aucStd: number;
}

export interface AblationRow {
  /** The setting as given: a number, or for taps 'auto' or the layer names. */
  value: number | TapSpec;
  /** The setting as printed. */
  label: string;
  /** Whether it is the bank's own setting. */
  own: boolean;
  fingerprints: number;
  neurons: number;
  /** Fingerprints drawn per input; a class with fewer draws all it has. */
  draws: number;
  /** The fewest fingerprints any fitted class keeps. */
  smallestClass: number;
  /** Distinct neurons over the fitted classes' fingerprints, summed over classes. */
  distinctNeurons?: number;
  /** Mean over fitted classes of the recorded redundancy (mean |correlation| of a class's fingerprints). */
  redundancy?: number;
  /** For a refit at the bank's own setting: whether it reproduced the bank's fingerprints exactly. */
  reproducesBank?: boolean;
  /** False-positive rate measured on the correctly classified held-out clean images at the recalibrated thresholds. */
  fprAtThreshold: number;
  attacks: AblationAttackRow[];
  seconds: number;
}

export interface Ablation {
  parameter: AblationParameter;
  refit: boolean;
  /** Independent random detectors behind aucMean and aucStd. */
  detectors: number;
  rows: AblationRow[];
}
