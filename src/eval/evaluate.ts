// The evaluation of a calibrated detector on held-out images: per attack, the attack's success
// rate and the detector's AUC, TPR at 1% and 5% FPR, TPR at its calibrated threshold, a per-class
// breakdown, the consistency of R independent random detectors (draws), and two baselines on the
// same images: the non-randomized detector (every input of a class scored with the same, strongest
// fingerprints) and max-softmax confidence.
import type { AttackModel } from '../attacks/index.js';
import { bankFamily } from '../bank/index.js';
import { gatherImages, gatherRows } from '../data/index.js';
import type { FingerprintDetector } from '../detect/index.js';
import { SeededDraws, defaultCalibration } from '../detect/index.js';
import type { ImageBatch } from '../model/index.js';
import { auc, rateAbove, rocCurve, summarize, tprAtFpr } from './metrics.js';
import type { AdversarialSet, AttackEvaluation, Evaluation, EvaluationAttack } from './types.js';

/** Random detectors for the consistency figures, and the most images attacked, when not told otherwise. */
export const defaultEvaluation = { detectors: 100, maxSources: 1000 } as const;

export const evaluationSchema: Evaluation['schema'] = 'nfp-evaluation/1';

export interface EvaluateOptions {
  detector: FingerprintDetector;
  /** The model the attacks differentiate (same weights as the detector's). */
  attackModel: AttackModel;
  /** Held-out images: never used to fit or calibrate the bank. */
  images: ImageBatch;
  labels: Int32Array;
  attacks: EvaluationAttack[];
  /** Independent random detectors for the consistency figures (default 100). */
  detectors?: number;
  /** Attack at most this many correctly classified images (default 1,000). */
  maxSources?: number;
  seed?: number;
  onProgress?: (stage: string, done: number, total: number) => void;
  /**
   * Adversarial images already made for an attack name (by an earlier evaluation of the same model
   * and images): the attack is not run again. Lets several banks be compared on the same images.
   */
  adversarial?: ReadonlyMap<string, AdversarialSet>;
  /** Receives each attack's adversarial images, for reuse through `adversarial`. */
  onAdversarial?: (attack: string, set: AdversarialSet) => void;
}

/** Per class c: scores minus the (1 - fpr) quantile of that class's clean scores, so classes share one scale. */
function perClassMargins(
  cleanScores: number[],
  cleanLabels: number[],
  scores: number[],
  labels: number[],
  classes: number,
  fpr: number,
): { clean: number[]; attacked: number[] } {
  const cut = Array.from({ length: classes }, (_, c) => {
    const s = cleanScores.filter((_, i) => cleanLabels[i] === c).sort((a, b) => a - b);
    return s.length === 0 ? 0 : s[Math.max(0, s.length - 1 - Math.floor(fpr * s.length))]!;
  });
  return {
    clean: cleanScores.map((v, i) => v - cut[cleanLabels[i]!]!),
    attacked: scores.map((v, i) => v - cut[labels[i]!]!),
  };
}

function maxSoftmaxScore(logits: Float32Array, classes: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < logits.length / classes; r++) {
    const z = logits.subarray(r * classes, (r + 1) * classes);
    const max = Math.max(...z);
    const sum = z.reduce((a, v) => a + Math.exp(v - max), 0);
    out.push(-1 / sum); // -max softmax: less confident = more suspicious
  }
  return out;
}

export async function evaluate(options: EvaluateOptions): Promise<Evaluation> {
  const started = performance.now();
  const { detector, images, labels } = options;
  const progress = options.onProgress ?? (() => {});
  const plan: ScoringPlan = {
    detector,
    detectors: options.detectors ?? defaultEvaluation.detectors,
    seed: options.seed ?? 1,
    classes: detector.classifier.classes,
    thresholds: Array.from({ length: detector.classifier.classes }, (_, c) => detector.thresholdOf(c)),
    fpr: detector.bank.header.calibration?.fpr ?? defaultCalibration.fpr,
  };
  progress('clean', 0, 1);
  const clean = await scoreClean(plan, images, labels);
  progress('clean', 1, 1);
  const sources = clean.correct.slice(0, options.maxSources ?? defaultEvaluation.maxSources);
  const sourceImages = gatherImages(images, sources);
  const sourceLabels = Int32Array.from(sources, (i) => labels[i]!);
  const attacks: AttackEvaluation[] = [];
  for (const [a, spec] of options.attacks.entries()) {
    const t0 = performance.now();
    const set =
      options.adversarial?.get(spec.name) ??
      (await runAttack(spec, options.attackModel, sourceImages, sourceLabels, plan.seed + a, progress));
    options.onAdversarial?.(spec.name, set);
    attacks.push({ ...(await scoreAttack(plan, clean, spec, set)), seconds: (performance.now() - t0) / 1000 });
  }
  return {
    schema: evaluationSchema,
    bank: bankSummary(detector),
    clean: {
      images: labels.length,
      correct: clean.correct.length,
      accuracy: clean.correct.length / Math.max(1, labels.length),
      fprAtThreshold: rateAbove(clean.main, 0),
      perClassFpr: Array.from({ length: plan.classes }, (_, c) => {
        const v = clean.main.filter((_, i) => clean.labels[i] === c);
        return v.length === 0 ? null : rateAbove(v, 0);
      }),
    },
    attacks,
    seconds: (performance.now() - started) / 1000,
  };
}

/** What every scoring in one evaluation shares. */
interface ScoringPlan {
  detector: FingerprintDetector;
  /** Independent random detectors (R), each with its own seeded draws. */
  detectors: number;
  seed: number;
  classes: number;
  thresholds: number[];
  fpr: number;
}

/** Scores of the correctly classified clean images, as margins over their class's threshold where they decide. */
interface CleanScores {
  correct: number[];
  labels: Int32Array;
  /** The deployed detector's margins. */
  main: number[];
  /** Each random detector's margins. */
  byDetector: number[][];
  /** Raw scores of the fixed-fingerprint baseline and of max-softmax. */
  fixed: number[];
  softmax: number[];
}

/** Score margins over each row's class threshold. */
function margins(plan: ScoringPlan, scores: Float64Array, labels: Int32Array): number[] {
  return Array.from(scores, (v, i) => v - plan.thresholds[labels[i]!]!);
}

/** The detector's scores of tapped rows under its own draws, the r-th random detector's, or the fixed draw. */
async function scoreRows(
  plan: ScoringPlan,
  rows: { activations: Float32Array; labels: Int32Array; logits: Float32Array },
  draws: 'own' | 'fixed' | number,
): Promise<Float64Array> {
  const choice =
    draws === 'own'
      ? {}
      : draws === 'fixed'
        ? { draws: 'fixed' as const }
        : { draws: new SeededDraws(plan.seed * 1_000_003 + draws) };
  return (await plan.detector.scoreActivations(rows.activations, rows.labels, { ...choice, logits: rows.logits }))
    .scores;
}

async function scoreClean(plan: ScoringPlan, images: ImageBatch, labels: Int32Array): Promise<CleanScores> {
  const out = await plan.detector.classifier.run(images);
  const correct = [...out.labels.keys()].filter((i) => out.labels[i] === labels[i]);
  const rows = {
    activations: gatherRows(out.activations, correct, plan.detector.classifier.neurons),
    labels: Int32Array.from(correct, (i) => out.labels[i]!),
    logits: gatherRows(out.logits, correct, plan.classes),
  };
  const byDetector: number[][] = [];
  for (let r = 0; r < plan.detectors; r++) byDetector.push(margins(plan, await scoreRows(plan, rows, r), rows.labels));
  return {
    correct,
    labels: rows.labels,
    main: margins(plan, await scoreRows(plan, rows, 'own'), rows.labels),
    byDetector,
    fixed: Array.from(await scoreRows(plan, rows, 'fixed')),
    softmax: maxSoftmaxScore(rows.logits, plan.classes),
  };
}

/** Runs one attack on the source images; keeps the successful adversarial images. */
async function runAttack(
  spec: EvaluationAttack,
  model: AttackModel,
  images: ImageBatch,
  labels: Int32Array,
  seed: number,
  progress: (stage: string, done: number, total: number) => void,
): Promise<AdversarialSet> {
  const run = await spec.attack.run(model, images, {
    labels,
    seed,
    onProgress: (done, total) => progress(spec.name, done, total),
  });
  const hit = [...run.success.keys()].filter((i) => run.success[i]);
  return { images: gatherImages({ data: run.adv, dims: run.dims }, hit), sources: labels.length };
}

/** One attack's metrics against the clean scores: the deployed detector, the random detectors and the baselines. */
async function scoreAttack(
  plan: ScoringPlan,
  clean: CleanScores,
  spec: EvaluationAttack,
  set: AdversarialSet,
): Promise<Omit<AttackEvaluation, 'seconds'>> {
  const count = set.images.dims[0]!;
  const has = count > 0;
  const out = await plan.detector.classifier.run(set.images);
  const rows = { activations: out.activations, labels: out.labels, logits: out.logits };
  const main = margins(plan, await scoreRows(plan, rows, 'own'), out.labels);
  const aucs: number[] = [];
  const tprs5: number[] = [];
  const tprsT: number[] = [];
  for (let r = 0; r < plan.detectors; r++) {
    const adv = margins(plan, await scoreRows(plan, rows, r), out.labels);
    aucs.push(has ? auc(clean.byDetector[r]!, adv) : NaN);
    tprs5.push(tprAtFpr(clean.byDetector[r]!, adv, 0.05));
    tprsT.push(rateAbove(adv, 0));
  }
  const cleanLabels = Array.from(clean.labels);
  const advLabels = Array.from(out.labels);
  const fixedAdv = Array.from(await scoreRows(plan, rows, 'fixed'));
  const fixed = perClassMargins(clean.fixed, cleanLabels, fixedAdv, advLabels, plan.classes, plan.fpr);
  const softAdv = maxSoftmaxScore(out.logits, plan.classes);
  const soft = perClassMargins(clean.softmax, cleanLabels, softAdv, advLabels, plan.classes, plan.fpr);
  return {
    attack: spec.name,
    settings: spec.settings,
    sources: set.sources,
    adversarial: count,
    successRate: count / Math.max(1, set.sources),
    auc: has ? auc(clean.main, main) : NaN,
    tprAt1: tprAtFpr(clean.main, main, 0.01),
    tprAt5: tprAtFpr(clean.main, main, 0.05),
    tprAtThreshold: rateAbove(main, 0),
    perClass: Array.from({ length: plan.classes }, (_, c) => {
      const neg = clean.main.filter((_, i) => clean.labels[i] === c);
      const pos = main.filter((_, i) => out.labels[i] === c);
      return {
        class: c,
        clean: neg.length,
        adversarial: pos.length,
        auc: neg.length > 0 && pos.length > 0 ? auc(neg, pos) : null,
        tprAtThreshold: pos.length > 0 ? rateAbove(pos, 0) : null,
      };
    }),
    consistency: {
      detectors: plan.detectors,
      auc: summarize(aucs),
      tprAt5: summarize(tprs5),
      tprAtThreshold: summarize(tprsT),
      aucs,
    },
    baselines: {
      fixedFingerprints: {
        auc: has ? auc(fixed.clean, fixed.attacked) : NaN,
        tprAt5: tprAtFpr(fixed.clean, fixed.attacked, 0.05),
      },
      maxSoftmax: {
        auc: has ? auc(soft.clean, soft.attacked) : NaN,
        tprAt5: tprAtFpr(soft.clean, soft.attacked, 0.05),
      },
    },
    roc: has ? rocCurve(clean.main, main) : { fpr: [0, 1], tpr: [0, 1] },
    scores: { clean: clean.main, attacked: main },
  };
}

/** The bank as the evaluation saw it, with its family of detectors per class. */
function bankSummary(detector: FingerprintDetector): Evaluation['bank'] {
  const h = detector.bank.header;
  return {
    model: h.model.source,
    sha256: h.model.sha256,
    neurons: h.neurons,
    k: h.k,
    families: h.families,
    fingerprints: detector.bank.fingerprints,
    draws: detector.draws,
    combine: detector.combine,
    fpr: h.calibration?.fpr ?? null,
    family: bankFamily(detector.bank, detector.draws).map((f) => ({
      class: f.class,
      fingerprints: f.fingerprints,
      distinct: f.distinct,
      neurons: f.neurons,
      log10Draws: f.log10Draws,
      redundancy: f.redundancy,
    })),
  };
}
