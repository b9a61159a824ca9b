// The evaluation of a calibrated detector on held-out images: per attack, the attack's success
// rate and the detector's AUC, TPR at 1% and 5% FPR, TPR at its calibrated threshold, a per-class
// breakdown, the consistency of R independent random detectors (draws), and two baselines on the
// same images: the non-randomized detector (every input of a class scored with the same, strongest
// fingerprints) and max-softmax confidence.
import type { Attack, AttackModel } from '../attacks/index.js';
import { gatherImages, gatherRows } from '../data/index.js';
import type { FingerprintDetector } from '../detect/index.js';
import { SeededDraws } from '../detect/index.js';
import type { ImageBatch } from '../model/index.js';
import { auc, rateAbove, rocCurve, summarize, tprAtFpr } from './metrics.js';
import type { AdversarialSet, AttackEvaluation, Evaluation, EvaluationAttack, Scores } from './types.js';

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
  const R = options.detectors ?? 100;
  const seed = options.seed ?? 1;
  const classes = detector.classifier.classes;
  const progress = options.onProgress ?? (() => {});
  const thresholds = Array.from({ length: classes }, (_, c) => detector.thresholdOf(c));
  const fpr = detector.bank.header.calibration?.fpr ?? 0.05;

  progress('clean', 0, 1);
  const cleanOut = await detector.classifier.run(images);
  const correct = [...cleanOut.labels.keys()].filter((i) => cleanOut.labels[i] === labels[i]);
  const n = detector.classifier.neurons;
  const cleanActs = gatherRows(cleanOut.activations, correct, n);
  const cleanLabels = Int32Array.from(correct, (i) => cleanOut.labels[i]!);
  const cleanLogits = gatherRows(cleanOut.logits, correct, classes);
  const margin = (scores: Float64Array, ls: Int32Array) => Array.from(scores, (v, i) => v - thresholds[ls[i]!]!);
  const cleanMain = margin(
    (await detector.scoreActivations(cleanActs, cleanLabels, { logits: cleanLogits })).scores,
    cleanLabels,
  );
  const perClassFpr = Array.from({ length: classes }, (_, c) => {
    const v = cleanMain.filter((_, i) => cleanLabels[i] === c);
    return v.length === 0 ? null : rateAbove(v, 0);
  });
  // Independent random detectors: their own seeded draws on the same clean activations.
  const cleanByDetector: number[][] = [];
  for (let r = 0; r < R; r++)
    cleanByDetector.push(
      margin(
        (
          await detector.scoreActivations(cleanActs, cleanLabels, {
            draws: new SeededDraws(seed * 1_000_003 + r),
            logits: cleanLogits,
          })
        ).scores,
        cleanLabels,
      ),
    );
  const cleanFixed = Array.from(
    (await detector.scoreActivations(cleanActs, cleanLabels, { draws: 'fixed', logits: cleanLogits })).scores,
  );
  const cleanSoftmax = maxSoftmaxScore(cleanLogits, classes);
  progress('clean', 1, 1);

  const sources = correct.slice(0, options.maxSources ?? 1000);
  const sourceImages = gatherImages(images, sources);
  const sourceLabels = Int32Array.from(sources, (i) => labels[i]!);
  const results: AttackEvaluation[] = [];
  for (const [a, spec] of options.attacks.entries()) {
    const t0 = performance.now();
    let set = options.adversarial?.get(spec.name);
    if (set === undefined) {
      const run = await spec.attack.run(options.attackModel, sourceImages, {
        labels: sourceLabels,
        seed: seed + a,
        onProgress: (done, total) => progress(spec.name, done, total),
      });
      const hit = [...run.success.keys()].filter((i) => run.success[i]);
      set = { images: gatherImages({ data: run.adv, dims: run.dims }, hit), sources: sources.length };
    }
    options.onAdversarial?.(spec.name, set);
    const count = set.images.dims[0]!;
    const has = count > 0;
    const advOut = await detector.classifier.run(set.images);
    const advLabels = advOut.labels;
    const advMain = margin(
      (await detector.scoreActivations(advOut.activations, advLabels, { logits: advOut.logits })).scores,
      advLabels,
    );
    const aucs: number[] = [];
    const tprs5: number[] = [];
    const tprsT: number[] = [];
    for (let r = 0; r < R; r++) {
      const adv = margin(
        (
          await detector.scoreActivations(advOut.activations, advLabels, {
            draws: new SeededDraws(seed * 1_000_003 + r),
            logits: advOut.logits,
          })
        ).scores,
        advLabels,
      );
      const cleanR = cleanByDetector[r]!;
      aucs.push(has ? auc(cleanR, adv) : NaN);
      tprs5.push(tprAtFpr(cleanR, adv, 0.05));
      tprsT.push(rateAbove(adv, 0));
    }
    const fixedAdv = Array.from(
      (await detector.scoreActivations(advOut.activations, advLabels, { draws: 'fixed', logits: advOut.logits }))
        .scores,
    );
    const fixed = perClassMargins(cleanFixed, Array.from(cleanLabels), fixedAdv, Array.from(advLabels), classes, fpr);
    const soft = perClassMargins(
      cleanSoftmax,
      Array.from(cleanLabels),
      maxSoftmaxScore(advOut.logits, classes),
      Array.from(advLabels),
      classes,
      fpr,
    );
    results.push({
      attack: spec.name,
      settings: spec.settings,
      sources: set.sources,
      adversarial: count,
      successRate: count / Math.max(1, set.sources),
      auc: has ? auc(cleanMain, advMain) : NaN,
      tprAt1: tprAtFpr(cleanMain, advMain, 0.01),
      tprAt5: tprAtFpr(cleanMain, advMain, 0.05),
      tprAtThreshold: rateAbove(advMain, 0),
      perClass: Array.from({ length: classes }, (_, c) => {
        const neg = cleanMain.filter((_, i) => cleanLabels[i] === c);
        const pos = advMain.filter((_, i) => advLabels[i] === c);
        return {
          class: c,
          clean: neg.length,
          adversarial: pos.length,
          auc: neg.length > 0 && pos.length > 0 ? auc(neg, pos) : null,
          tprAtThreshold: pos.length > 0 ? rateAbove(pos, 0) : null,
        };
      }),
      consistency: {
        detectors: R,
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
      roc: has ? rocCurve(cleanMain, advMain) : { fpr: [0, 1], tpr: [0, 1] },
      scores: { clean: cleanMain, attacked: advMain },
      seconds: (performance.now() - t0) / 1000,
    });
  }
  const h = detector.bank.header;
  return {
    schema: evaluationSchema,
    bank: {
      model: h.model.source,
      sha256: h.model.sha256,
      neurons: h.neurons,
      k: h.k,
      families: h.families,
      fingerprints: detector.bank.fingerprints,
      draws: detector.draws,
      combine: detector.combine,
      fpr: h.calibration?.fpr ?? null,
    },
    clean: {
      images: labels.length,
      correct: correct.length,
      accuracy: correct.length / Math.max(1, labels.length),
      fprAtThreshold: rateAbove(cleanMain, 0),
      perClassFpr,
    },
    attacks: results,
    seconds: (performance.now() - started) / 1000,
  };
}
