// The evaluation of a calibrated detector on held-out images: per attack, the attack's success
// rate and the detector's AUC, TPR at 1% and 5% FPR, TPR at its calibrated threshold, a per-class
// breakdown, the consistency of R independent random detectors (draws), and two baselines on the
// same images: the non-randomized detector (every input of a class scored with the same, strongest
// fingerprints) and max-softmax confidence.
import type { AttackModel } from '../attacks/index.js';
import { bankFamily } from '../bank/index.js';
import { gatherImages, gatherRows, sliceImages } from '../data/index.js';
import type { FingerprintDetector } from '../detect/index.js';
import { SeededDraws, defaultCalibration } from '../detect/index.js';
import { activationChunkRows } from '../model/index.js';
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

/** Raw scores of images, computed in chunks: the deployed detector's, each random detector's, the fixed draw's. */
interface ImageScores {
  /** Indices (into the images) of the rows kept. */
  kept: number[];
  labels: Int32Array;
  logits: Float32Array;
  own: number[];
  byDetector: number[][];
  fixed: number[];
}

/**
 * Scores images chunk by chunk, so that activation memory depends on the chunk (activationChunkRows),
 * not on how many images there are; `keep` picks the rows that count (the correctly classified clean
 * ones). Random detector r draws for the i-th kept row by its position, whatever the chunking.
 */
async function scoreImages(
  plan: ScoringPlan,
  images: ImageBatch,
  keep: (label: number, index: number) => boolean = () => true,
): Promise<ImageScores> {
  const { detector } = plan;
  const total = images.dims[0]!;
  const chunk = activationChunkRows(detector.classifier.neurons);
  const scores: ImageScores = {
    kept: [],
    labels: new Int32Array(0),
    logits: new Float32Array(0),
    own: [],
    byDetector: Array.from({ length: plan.detectors }, () => []),
    fixed: [],
  };
  const labels: number[] = [];
  const logits: Float32Array[] = [];
  for (let start = 0; start < total; start += chunk) {
    const out = await detector.classifier.run(sliceImages(images, start, Math.min(total, start + chunk)));
    const kept = [...out.labels.keys()].filter((i) => keep(out.labels[i]!, start + i));
    const rows = {
      activations: gatherRows(out.activations, kept, detector.classifier.neurons),
      labels: Int32Array.from(kept, (i) => out.labels[i]!),
      logits: gatherRows(out.logits, kept, plan.classes),
    };
    const firstRow = scores.kept.length;
    const score = async (draws: 'own' | 'fixed' | number) => {
      const choice =
        draws === 'own'
          ? {}
          : draws === 'fixed'
            ? { draws: 'fixed' as const }
            : { draws: new SeededDraws(plan.seed * 1_000_003 + draws) };
      const options = { ...choice, logits: rows.logits, firstRow };
      return Array.from((await detector.scoreActivations(rows.activations, rows.labels, options)).scores);
    };
    scores.own.push(...(await score('own')));
    for (let r = 0; r < plan.detectors; r++) scores.byDetector[r]!.push(...(await score(r)));
    scores.fixed.push(...(await score('fixed')));
    scores.kept.push(...kept.map((i) => start + i));
    labels.push(...rows.labels);
    logits.push(rows.logits);
  }
  scores.labels = Int32Array.from(labels);
  scores.logits = concatenate(logits);
  return scores;
}

/** Score margins over each row's class threshold. */
function margins(plan: ScoringPlan, scores: ArrayLike<number>, labels: Int32Array): number[] {
  return Array.from(scores, (v, i) => v - plan.thresholds[labels[i]!]!);
}

async function scoreClean(plan: ScoringPlan, images: ImageBatch, labels: Int32Array): Promise<CleanScores> {
  const s = await scoreImages(plan, images, (label, i) => label === labels[i]);
  return {
    correct: s.kept,
    labels: s.labels,
    main: margins(plan, s.own, s.labels),
    byDetector: s.byDetector.map((d) => margins(plan, d, s.labels)),
    fixed: s.fixed,
    softmax: maxSoftmaxScore(s.logits, plan.classes),
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
  const s = await scoreImages(plan, set.images);
  const out = { labels: s.labels, logits: s.logits };
  const main = margins(plan, s.own, out.labels);
  const aucs: number[] = [];
  const tprs5: number[] = [];
  const tprsT: number[] = [];
  for (let r = 0; r < plan.detectors; r++) {
    const adv = margins(plan, s.byDetector[r]!, out.labels);
    aucs.push(has ? auc(clean.byDetector[r]!, adv) : NaN);
    tprs5.push(tprAtFpr(clean.byDetector[r]!, adv, 0.05));
    tprsT.push(rateAbove(adv, 0));
  }
  const cleanLabels = Array.from(clean.labels);
  const advLabels = Array.from(out.labels);
  const fixedAdv = s.fixed;
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

function concatenate(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
