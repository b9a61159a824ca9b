// The adaptive evaluation (nfp evaluate --adaptive, docs/security.md): plain PGD, PGD against a static
// draw, PGD against the expectation over draws (T3: the deployed bank file; T2: the attacker's own
// bank) and local rejection sampling, each judged by the deployed detector (independent seeded draws,
// calibrated thresholds) and by the static detector (the class's strongest fingerprints).
import { PGD } from '../attacks/index.js';
import {
  AdaptivePGD,
  DetectorTerm,
  drawnCopy,
  expectationCopy,
  rejectionSample,
  tappedModel,
} from '../attacks/adaptive/index.js';
import type { LocalCopy, TappedAttackModel, TermOptions } from '../attacks/adaptive/index.js';
import { GradientModel } from '../autodiff/index.js';
import type { FingerprintBank } from '../bank/index.js';
import { FingerprintDetector, SeededDraws, defaultCalibration, mixSeed, thresholdFor } from '../detect/index.js';
import type { ImageBatch } from '../model/index.js';
import type { Combine } from '../native.js';
import { ExperimentError } from './errors.js';

export interface AdaptiveSettings {
  /** L-inf bounds swept. */
  eps: number[];
  /** Weights of the detector's score against the margin, swept. */
  weights: number[];
  steps: number;
  restarts: number;
  kappa: number;
  /** The detector term's hinge: it stops pushing this far under the threshold (absent: never stops). */
  slack?: number;
  /** The adaptive attacks' first run starts at a random point of the eps-ball (default) or at the clean image. */
  randomStart?: boolean;
  /** The static and EOT attacks take one fused gradient run per step (AdaptivePgdOptions.fused; k = 1 banks). */
  fused?: boolean;
  /** The adaptive attacks' step length (default 2.5 eps / steps). */
  stepSize?: number;
  /** Correctly classified held-out images attacked. */
  images: number;
  /** Local detector copies of rejection sampling; 'all': the copy using every fingerprint. */
  copies: Array<number | 'all'>;
  /** Attack runs (seeds) giving each image its candidates for rejection sampling. */
  candidateRuns: number;
  /** The candidates' attack: EOT PGD (the first weight) or plain PGD. */
  candidates: 'eot' | 'pgd';
  /** The attacks run (rejection sampling aside). */
  attacks: Array<AdaptiveRow['attack']>;
  /** Independent deployed detectors (draws per input) each result is averaged over. */
  detectors: number;
  /** The first data row attacked (default: the first held-out row), e.g. past an attacker's own rows. */
  start?: number;
  /**
   * BPDA: the attacks' gradients take sigmoid(x / T) for each ReLU's step (GradientModelOptions.reluSurrogate),
   * so they reach neurons a ReLU has switched off; absent: the exact gradient. Only the attacks' gradients:
   * the judge (misclassification, detection) and rejection sampling's local checks use the exact model.
   */
  reluSurrogate?: number;
}

export const defaultAdaptiveSettings: AdaptiveSettings = {
  eps: [0.1],
  weights: [1],
  steps: 100,
  restarts: 1,
  kappa: 0,
  images: 100,
  copies: [1, 10, 100, 'all'],
  candidateRuns: 5,
  candidates: 'eot',
  attacks: ['pgd', 'static', 'eot'],
  detectors: 25,
};

/** The false-positive rates every result is given at: the calibrated one and a stricter one. */
export const adaptiveFprs = [0.05, 0.01] as const;

/**
 * Settings as `key=value;key=value` (lists comma-separated), e.g.
 * 'eps=0.03,0.05,0.1;weights=0.3,1,3;steps=100;images=100;copies=1,10,100,all;candidate-runs=5;detectors=25'.
 * Keys: eps, weights, steps, step-size, restarts, kappa, slack, random-start (0|1), images, copies (or none),
 * candidate-runs, candidates (eot|pgd), attacks (pgd,static,eot), detectors, start, and relu-surrogate=T
 * (the attacks' gradients with the smooth ReLU backward sigmoid(x / T), T > 0; AdaptiveSettings.reluSurrogate).
 */
export function parseAdaptiveSettings(text: string): AdaptiveSettings {
  const settings: AdaptiveSettings = { ...defaultAdaptiveSettings };
  const positive = (key: string, v: string) => {
    const n = Number(v);
    if (!(Number.isFinite(n) && n > 0))
      throw new ExperimentError(`--adaptive ${key}: expected a positive number but received '${v}'`, '--adaptive');
    return n;
  };
  const count = (key: string, v: string) => {
    const n = positive(key, v);
    if (!Number.isInteger(n))
      throw new ExperimentError(`--adaptive ${key}: expected an integer but received '${v}'`, '--adaptive');
    return n;
  };
  for (const part of text
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p !== '')) {
    const [key, value, ...rest] = part.split('=').map((s) => s.trim());
    if (value === undefined || value === '' || rest.length > 0)
      throw new ExperimentError(`--adaptive: expected key=value but received '${part}'`, '--adaptive');
    const list = value.split(',').map((s) => s.trim());
    switch (key) {
      case 'eps':
        settings.eps = list.map((v) => positive(key, v));
        break;
      case 'weights':
        settings.weights = list.map((v) => (v === '0' ? 0 : positive(key, v)));
        break;
      case 'steps':
        settings.steps = count(key, value);
        break;
      case 'restarts':
        settings.restarts = count(key, value);
        break;
      case 'kappa':
        settings.kappa = value === '0' ? 0 : positive(key, value);
        break;
      case 'slack':
        settings.slack = value === '0' ? 0 : positive(key, value);
        break;
      case 'fused':
        if (value !== '0' && value !== '1')
          throw new ExperimentError(`--adaptive fused: expected 0 or 1 but received '${value}'`, '--adaptive');
        settings.fused = value === '1';
        break;
      case 'random-start':
        if (value !== '0' && value !== '1')
          throw new ExperimentError(`--adaptive random-start: expected 0 or 1 but received '${value}'`, '--adaptive');
        settings.randomStart = value === '1';
        break;
      case 'step-size':
        settings.stepSize = positive(key, value);
        break;
      case 'images':
        settings.images = count(key, value);
        break;
      case 'copies':
        settings.copies = value === 'none' ? [] : list.map((v) => (v === 'all' ? 'all' : count(key, v)));
        break;
      case 'candidate-runs':
        settings.candidateRuns = count(key, value);
        break;
      case 'candidates':
        if (value !== 'eot' && value !== 'pgd')
          throw new ExperimentError(`--adaptive candidates: expected eot or pgd but received '${value}'`, '--adaptive');
        settings.candidates = value;
        break;
      case 'attacks':
        settings.attacks = list.map((v) => {
          if (v !== 'pgd' && v !== 'static' && v !== 'eot')
            throw new ExperimentError(
              `--adaptive attacks: expected pgd, static or eot but received '${v}'`,
              '--adaptive',
            );
          return v;
        });
        break;
      case 'detectors':
        settings.detectors = count(key, value);
        break;
      case 'start':
        settings.start = value === '0' ? 0 : count(key, value);
        break;
      case 'relu-surrogate':
        settings.reluSurrogate = positive(key, value);
        break;
      default:
        throw new ExperimentError(
          `--adaptive: unknown setting '${key}' (eps, weights, steps, step-size, restarts, kappa, slack, ` +
            'random-start, fused, images, copies, candidate-runs, candidates, attacks, detectors, start, ' +
            'relu-surrogate)',
          '--adaptive',
        );
    }
  }
  return settings;
}

/** How often one set of adversarial images fools both the model and a detector, at each false-positive rate. */
export interface Evasion {
  fpr: number;
  /** Share of images misclassified and not flagged by the randomized detector (mean over its independent draws). */
  randomized: number;
  /** Same for the static detector (the class's strongest m fingerprints, its own calibrated threshold). */
  static: number;
  /**
   * Same for the two-sided randomized detector: the same draws flag an input whose LLR is high or whose
   * clean negative log-likelihood is high (an input pushed past the clean means), each at fpr / 2.
   */
  twoSided: number;
}

export interface AdaptiveRow {
  /** 'T1': the attacker ignores the detector; 'T3': it has the deployed bank file; 'T2': its own bank. */
  threat: 'T1' | 'T2' | 'T3';
  attack: 'pgd' | 'static' | 'eot';
  eps: number;
  weight: number;
  /** Share misclassified. */
  success: number;
  evasion: Evasion[];
  /** Means over the images. */
  linf: number;
  l2: number;
  gradientSteps: number;
  seconds: number;
}

export interface RejectionRow {
  threat: 'T3';
  copies: number | 'all';
  eps: number;
  /** Share of images with a candidate that fooled the model and passed every local copy. */
  passedLocal: number;
  /** Among those, the share the deployed detector flags at 5% FPR (mean over its draws). */
  caught: number;
  /** Share of all images sent and not flagged at 5% FPR. */
  evasion: number;
}

export interface AdaptiveResults {
  /** The attacked model (file name and sha256), so that a saved run names what it measured. */
  model?: { source: string; sha256: string };
  settings: AdaptiveSettings;
  images: number;
  /** Data rows the attacked images came from. */
  rows: [number, number];
  /** The deployed detector's draws, and how its thresholds were set. */
  detector: { draws: number; combine: string; calibration: string };
  attacks: AdaptiveRow[];
  rejection: RejectionRow[];
  /** Measured false-positive rates on the clean attacked images (held out), for each detector and target. */
  cleanFpr: Array<{ fpr: number; randomized: number; static: number; twoSided: number }>;
}

export interface AdaptiveExperimentOptions {
  model: string;
  /** The deployed bank, calibrated. */
  bank: FingerprintBank;
  /** The attacker's own bank (T2), calibrated; without it no T2 rows. */
  attackerBank?: FingerprintBank;
  /** Clean held-out images to attack (the first correctly classified `settings.images` are used). */
  images: ImageBatch;
  labels: Int32Array;
  /** The data rows `images` start at, for the report. */
  firstRow: number;
  /** Clean images the deployed bank was calibrated on: thresholds at 1% and of the static detector. */
  calibration: ImageBatch;
  settings: AdaptiveSettings;
  seed: number;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** Thresholds per class (per class with enough clean images, else global), as calibrate() sets them. */
type Thresholds = (c: number) => number;

/** What the deployed side does with an image set: the randomized and the static detector at each FPR. */
class Judge {
  private constructor(
    private readonly detector: FingerprintDetector,
    /** The same bank scored by the clean negative log-likelihood of the drawn fingerprints. */
    private readonly likelihood: FingerprintDetector,
    private readonly model: TappedAttackModel,
    private readonly randomized: Map<number, Thresholds>,
    private readonly fixed: Map<number, Thresholds>,
    private readonly twoSided: Map<number, { llr: Thresholds; nll: Thresholds }>,
    private readonly reps: number,
    private readonly seed: number,
  ) {}

  static async create(
    detector: FingerprintDetector,
    likelihood: FingerprintDetector,
    model: TappedAttackModel,
    calibration: ImageBatch,
    reps: number,
    seed: number,
  ): Promise<Judge> {
    const { logits, activations } = await model.forward(calibration);
    const labels = labelsOf(logits, model.classes);
    const randomScores: Array<Float64Array> = [];
    const nllScores: Array<Float64Array> = [];
    for (let rep = 0; rep < defaultCalibration.drawsPerImage; rep++) {
      const draws = () => new SeededDraws(mixSeed(seed, 0x63616c, rep));
      randomScores.push((await detector.scoreActivations(activations, labels, { draws: draws(), logits })).scores);
      nllScores.push((await likelihood.scoreActivations(activations, labels, { draws: draws() })).scores);
    }
    const fixedScores = (await detector.scoreActivations(activations, labels, { draws: 'fixed', logits })).scores;
    const randomized = new Map<number, Thresholds>();
    const fixed = new Map<number, Thresholds>();
    const twoSided = new Map<number, { llr: Thresholds; nll: Thresholds }>();
    for (const fpr of adaptiveFprs) {
      // The calibrated rate keeps the bank's own thresholds: those are the deployed detector's.
      randomized.set(
        fpr,
        Math.abs(fpr - (detector.bank.header.calibration?.fpr ?? -1)) < 1e-12
          ? (c) => detector.thresholdOf(c)
          : classThresholds(labels, randomScores, fpr, model.classes),
      );
      fixed.set(fpr, classThresholds(labels, [fixedScores], fpr, model.classes));
      twoSided.set(fpr, {
        llr: classThresholds(labels, randomScores, fpr / 2, model.classes),
        nll: classThresholds(labels, nllScores, fpr / 2, model.classes),
      });
    }
    return new Judge(detector, likelihood, model, randomized, fixed, twoSided, reps, seed);
  }

  /** The static detector's threshold at the calibrated rate, for the static-draw attack's term. */
  staticThreshold(fpr: number): Thresholds {
    return this.fixed.get(fpr)!;
  }

  /**
   * Judges images whose true labels are `labels`: evasion at each rate. With `clean`, every image counts as
   * fooling the model, so the evasion figures are 1 - the false-positive rates on clean images.
   */
  async judge(
    adv: Float32Array,
    dims: number[],
    labels: Int32Array,
    clean = false,
  ): Promise<{ success: number; evasion: Evasion[]; flagged: Float64Array }> {
    const n = labels.length;
    const { logits, activations } = await this.model.forward({ data: adv, dims });
    const predicted = labelsOf(logits, this.model.classes);
    const fooled = predicted.map((p, i) => (clean || p !== labels[i] ? 1 : 0));
    const reps: Float64Array[] = [];
    const nll: Float64Array[] = [];
    for (let rep = 0; rep < this.reps; rep++) {
      // The same draw for both statistics: two detectors with one seed draw alike, row by row.
      const draws = () => new SeededDraws(mixSeed(this.seed, 0x646570, rep));
      reps.push((await this.detector.scoreActivations(activations, predicted, { draws: draws(), logits })).scores);
      nll.push((await this.likelihood.scoreActivations(activations, predicted, { draws: draws() })).scores);
    }
    const fixedScores = (await this.detector.scoreActivations(activations, predicted, { draws: 'fixed', logits }))
      .scores;
    const passes = (score: number, threshold: number, c: number) =>
      this.detector.bank.header.classes[c]!.count > 0 && score <= threshold;
    const evasion = adaptiveFprs.map((fpr) => {
      const t = this.randomized.get(fpr)!;
      const s = this.fixed.get(fpr)!;
      const two = this.twoSided.get(fpr)!;
      let randomized = 0;
      let fixed = 0;
      let twoSided = 0;
      for (let i = 0; i < n; i++) {
        if (!fooled[i]) continue;
        const c = predicted[i]!;
        reps.forEach((scores, rep) => {
          if (passes(scores[i]!, t(c), c)) randomized += 1 / this.reps;
          if (passes(scores[i]!, two.llr(c), c) && passes(nll[rep]![i]!, two.nll(c), c)) twoSided += 1 / this.reps;
        });
        if (passes(fixedScores[i]!, s(c), c)) fixed++;
      }
      return { fpr, randomized: randomized / n, static: fixed / n, twoSided: twoSided / n };
    });
    // Per image, the share of the randomized detector's draws that flag it at the calibrated rate.
    const t = this.randomized.get(adaptiveFprs[0])!;
    const flagged = Float64Array.from({ length: n }, (_, i) => {
      const c = predicted[i]!;
      return reps.filter((scores) => !passes(scores[i]!, t(c), c)).length / this.reps;
    });
    const success = fooled.reduce((a, v) => a + v, 0) / n;
    return { success, evasion, flagged };
  }
}

function labelsOf(logits: Float32Array, classes: number): Int32Array {
  const n = logits.length / classes;
  return Int32Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let j = 1; j < classes; j++) if (logits[i * classes + j]! > logits[i * classes + best]!) best = j;
    return best;
  });
}

function classThresholds(labels: Int32Array, reps: Float64Array[], fpr: number, classes: number): Thresholds {
  const byClass = Array.from({ length: classes }, () => [] as number[]);
  const images = new Int32Array(classes);
  for (const c of labels) images[c]!++;
  for (const scores of reps)
    labels.forEach((c, i) => {
      if (Number.isFinite(scores[i]!)) byClass[c]!.push(scores[i]!);
    });
  const global = thresholdFor(byClass.flat(), fpr);
  const perClass = byClass.map((s, c) =>
    images[c]! >= defaultCalibration.minPerClass ? thresholdFor(s, fpr) : global,
  );
  return (c) => perClass[c]!;
}

/**
 * What the attacker's term needs to model the detector of `bank`: its draws and combination, the
 * thresholds, and, for a bank calibrated with the confidence term, that calibration (the detector then
 * standardizes each family's sum and the margin statistic, and flags on the largest).
 */
export function termOptions(
  bank: FingerprintBank,
  draws: number,
  combine: Combine,
  threshold: Thresholds,
): TermOptions {
  const confidence = bank.header.calibration?.confidence;
  return { draws, combine, threshold, ...(confidence !== undefined ? { confidence } : {}) };
}

/** The bank's calibrated thresholds as a function of the class. */
export function bankThresholds(bank: FingerprintBank): Thresholds {
  const cal = bank.header.calibration;
  if (cal === undefined) throw new ExperimentError('the adaptive evaluation needs calibrated banks', '--adaptive');
  return (c) => cal.perClass[c] ?? cal.global;
}

/** Runs every adaptive attack of `settings` and judges it by the deployed detector. */
export async function adaptiveExperiment(options: AdaptiveExperimentOptions): Promise<AdaptiveResults> {
  const { settings, bank, seed } = options;
  const progress = options.onProgress ?? (() => {});
  const detector = await FingerprintDetector.load({ model: options.model, bank });
  // The clean likelihood of the two-sided test scores the fingerprints alone, with or without the confidence term.
  const likelihood = await FingerprintDetector.load({
    model: options.model,
    bank,
    scorer: 'likelihood',
    confidence: false,
  });
  const models: GradientModel[] = [];
  // `smooth`: the attacks' model, with the smooth ReLU backward when the settings ask for it.
  const load = async (b: FingerprintBank, smooth = false) => {
    const T = smooth ? settings.reluSurrogate : undefined;
    const m = await GradientModel.load(options.model, {
      taps: b.tapRequests,
      inputShape: options.images.dims.slice(1),
      ...(T !== undefined ? { reluSurrogate: { temperature: T } } : {}),
    });
    models.push(m);
    return tappedModel(m);
  };
  try {
    // The judge's model (and rejection sampling's): exact. The attacks differentiate `attackModel`.
    const model = await load(bank);
    const attackModel = settings.reluSurrogate !== undefined ? await load(bank, true) : model;
    const { images, labels, rows } = await correctlyClassified(model, options.images, options.labels, settings.images);
    const n = labels.length;
    const dims = images.dims;
    const judge = await Judge.create(detector, likelihood, model, options.calibration, settings.detectors, seed);
    const cleanJudged = await judge.judge(images.data, dims, labels, true);
    const cleanFpr = cleanJudged.evasion.map((e) => ({
      fpr: e.fpr,
      randomized: 1 - e.randomized,
      static: 1 - e.static,
      twoSided: 1 - e.twoSided,
    }));
    const draws = detector.draws;
    const combine = detector.combine;
    const attacks: AdaptiveRow[] = [];
    const rejection: RejectionRow[] = [];
    const attackerModel = options.attackerBank ? await load(options.attackerBank, true) : undefined;
    const row = async (
      threat: AdaptiveRow['threat'],
      kind: AdaptiveRow['attack'],
      eps: number,
      weight: number,
      run: () => Promise<{
        adv: Float32Array;
        norms: { linf: Float32Array; l2: Float32Array };
        iterations?: Int32Array;
      }>,
    ) => {
      const started = performance.now();
      const out = await run();
      const seconds = (performance.now() - started) / 1000;
      const { success, evasion } = await judge.judge(out.adv, dims, labels);
      const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / Math.max(1, a.length);
      const r: AdaptiveRow = {
        threat,
        attack: kind,
        eps,
        weight,
        success,
        evasion,
        linf: mean(out.norms.linf),
        l2: mean(out.norms.l2),
        gradientSteps: mean(out.iterations ?? []),
        seconds,
      };
      attacks.push(r);
      progress(`adaptive ${threat} ${kind} eps ${eps} weight ${weight}`, 1, 1);
      return out;
    };
    const attackOptions = { labels, seed };
    const deployedT = bankThresholds(bank);
    for (const eps of settings.eps) {
      const runs = new Set(settings.attacks);
      const plain = new PGD({ eps, steps: settings.steps, loss: 'margin', restarts: settings.restarts });
      if (runs.has('pgd')) await row('T1', 'pgd', eps, 0, () => plain.run(attackModel, images, attackOptions));
      for (const weight of settings.weights) {
        if (!runs.has('static') && !runs.has('eot')) break;
        const common = {
          eps,
          steps: settings.steps,
          restarts: settings.restarts,
          weight,
          kappa: settings.kappa,
          ...(settings.slack !== undefined ? { slack: settings.slack } : {}),
          ...(settings.randomStart !== undefined ? { randomStart: settings.randomStart } : {}),
          ...(settings.fused !== undefined ? { fused: settings.fused } : {}),
          ...(settings.stepSize !== undefined ? { stepSize: settings.stepSize } : {}),
        };
        const staticTerm = DetectorTerm.staticDraw(
          bank,
          termOptions(bank, draws, combine, judge.staticThreshold(0.05)),
        );
        if (runs.has('static'))
          await row('T3', 'static', eps, weight, () =>
            new AdaptivePGD(staticTerm, common).run(attackModel, images, attackOptions),
          );
        const eot = DetectorTerm.expectation(bank, termOptions(bank, draws, combine, deployedT));
        if (runs.has('eot'))
          await row('T3', 'eot', eps, weight, () =>
            new AdaptivePGD(eot, common).run(attackModel, images, attackOptions),
          );
        if (options.attackerBank !== undefined && attackerModel !== undefined) {
          const own = options.attackerBank;
          const ownT = bankThresholds(own);
          const ownStatic = DetectorTerm.staticDraw(own, termOptions(own, draws, combine, ownT));
          if (runs.has('static'))
            await row('T2', 'static', eps, weight, () =>
              new AdaptivePGD(ownStatic, common).run(attackerModel, images, attackOptions),
            );
          const ownEot = DetectorTerm.expectation(own, termOptions(own, draws, combine, ownT));
          if (runs.has('eot'))
            await row('T2', 'eot', eps, weight, () =>
              new AdaptivePGD(ownEot, common).run(attackerModel, images, attackOptions),
            );
        }
      }
      if (settings.copies.length > 0) {
        // Candidates: one attack run per seed, each from a fresh random start. EOT PGD by default: plain
        // PGD's examples are flagged by nearly every draw, so there would be nothing to sample.
        const candidates: Float32Array[] = [];
        const eotTerm = DetectorTerm.expectation(bank, termOptions(bank, draws, combine, deployedT));
        const attack =
          settings.candidates === 'eot'
            ? new AdaptivePGD(eotTerm, {
                eps,
                steps: settings.steps,
                weight: settings.weights[0]!,
                kappa: settings.kappa,
              })
            : new PGD({ eps, steps: settings.steps, loss: 'margin' });
        for (let c = 0; c < settings.candidateRuns; c++) {
          const run = await attack.run(attackModel, images, { labels, seed: mixSeed(seed, 0x636e64, c) });
          candidates.push(run.adv);
          progress(`adaptive rejection candidates eps ${eps}`, c + 1, settings.candidateRuns);
        }
        const eot = DetectorTerm.expectation(bank, termOptions(bank, draws, combine, deployedT));
        for (const copies of settings.copies) {
          // The attacker's copies: the deployed bank file with its own seeded draws.
          const local: LocalCopy[] =
            copies === 'all'
              ? [expectationCopy(eot)]
              : Array.from({ length: copies }, (_, i) => drawnCopy(detector, mixSeed(seed, 0x617474), i));
          const sampled = await rejectionSample(model, images, labels, candidates, local);
          const { flagged } = await judge.judge(sampled.adv, dims, labels);
          let sent = 0;
          let caught = 0;
          sampled.passed.forEach((p, i) => {
            if (!p) return;
            sent++;
            caught += flagged[i]!;
          });
          rejection.push({
            threat: 'T3',
            copies,
            eps,
            passedLocal: sent / n,
            caught: sent === 0 ? 0 : caught / sent,
            evasion: (sent - caught) / n,
          });
          progress(`adaptive rejection eps ${eps} copies ${copies}`, 1, 1);
        }
      }
    }
    return {
      model: { source: detector.classifier.source, sha256: detector.classifier.sha256 },
      settings,
      images: n,
      rows: [options.firstRow + rows[0]!, options.firstRow + rows[rows.length - 1]! + 1],
      detector: {
        draws,
        combine,
        calibration:
          `5%: the bank's calibrated thresholds; 1% and the static detector: ` +
          `${options.calibration.dims[0]} clean calibration images (${defaultCalibration.drawsPerImage} draws each)`,
      },
      attacks,
      rejection,
      cleanFpr,
    };
  } finally {
    await detector.release();
    await likelihood.release();
    for (const m of models) await m.release();
  }
}

/** The first `count` images the model classifies correctly, and their positions. */
export async function correctlyClassified(
  model: Pick<TappedAttackModel, 'classes' | 'logits'>,
  images: ImageBatch,
  labels: Int32Array,
  count: number,
): Promise<{ images: { data: Float32Array; dims: number[] }; labels: Int32Array; rows: number[] }> {
  const total = images.dims[0]!;
  const perImage = total === 0 ? 0 : images.data.length / total;
  const rows: number[] = [];
  const chunk = 256;
  for (let start = 0; start < total && rows.length < count; start += chunk) {
    const end = Math.min(total, start + chunk);
    const part = {
      data: images.data.subarray(start * perImage, end * perImage),
      dims: [end - start, ...images.dims.slice(1)],
    };
    const predicted = labelsOf(await model.logits(part), model.classes);
    predicted.forEach((p, i) => {
      if (p === labels[start + i] && rows.length < count) rows.push(start + i);
    });
  }
  if (rows.length === 0) throw new ExperimentError('no correctly classified image to attack', '--adaptive');
  const data = new Float32Array(rows.length * perImage);
  rows.forEach((r, i) => {
    data.set(images.data.subarray(r * perImage, (r + 1) * perImage), i * perImage);
  });
  return {
    images: { data, dims: [rows.length, ...images.dims.slice(1)] },
    labels: Int32Array.from(rows, (r) => labels[r]!),
    rows,
  };
}
