// FingerprintDetector: one inference with the bank's taps per batch, then, per input, a fresh
// random draw of fingerprints from its predicted class and the native fused score. A threshold
// calibrated on held-out clean images (per class where possible) decides.
import type { FingerprintBank } from '../bank/index.js';
import type { Bank } from '../kernels.js';
import { decodeBank, defaultDraws, readBank, writeBank } from '../bank/index.js';
import type { Calibration, ConfidenceCalibration, KeyInput } from '../bank/index.js';
import { gatherRows, sliceImages } from '../data/index.js';
import type { TapActivations } from '../model/index.js';
import { Classifier, TapError, activationChunkRows } from '../model/index.js';
import type { ImageBatch, Layout, SessionSettings } from '../model/index.js';
import type { Combine } from '../native.js';
import { thresholdFor } from './calibrate.js';
import { combineConfidence, confidenceStatistic, fitConfidence } from './confidence.js';
import { CryptoDraws, SeededDraws, drawDistinct, mixSeed } from './draws.js';
import { collectInputs } from './inputs.js';
import type { DetectInput } from './inputs.js';
import { firstProblem, nonFiniteRows, pixelProblems } from './screen-inputs.js';
import type { DrawSource } from './draws.js';

export type Scorer = 'llr' | 'vote' | 'likelihood';

export interface DetectorOptions extends SessionSettings {
  model: string | Uint8Array;
  /** A .nfp path, its bytes, or a bank in memory. */
  bank: string | Uint8Array | FingerprintBank;
  /** Fingerprints drawn per input (default: the calibration's, else 25). */
  draws?: number;
  /** How attack families combine (default: the calibration's, else 'max'). */
  combine?: Combine;
  scorer?: Scorer;
  /**
   * Score max(fingerprints, logit-margin confidence), each standardized per class on clean images
   * (see confidence.ts): catches the minimal-perturbation attacks (CW-L2, DeepFool) that the
   * fingerprints alone miss. Default: whatever the bank's calibration was made with.
   */
  confidence?: boolean;
  /** Target false-positive rate: the bank's calibration must be for it, and calibrate() uses it (default 0.05). */
  fpr?: number;
  /** A threshold to use instead of the bank's calibration. */
  threshold?: number;
  /** Reproducible draws, for tests and evaluation only; the default is node:crypto. */
  seed?: number;
  /** Accept a bank fitted on a model with other bytes (same taps and shapes). */
  allowModelMismatch?: boolean;
  /**
   * Inputs predicted as a class without fingerprints in the bank cannot be scored: 'flag' (default)
   * reports them attacked, since an attacker can aim at such a class; 'pass' reports them clean.
   */
  unscoredClasses?: 'flag' | 'pass';
  /**
   * Pixel values an input may hold (default: the bank's record of the model's input range, else
   * [0, 1]); inputs outside it are flagged, not scored. 'any' turns the check off.
   */
  inputRange?: readonly [number, number] | 'any';
  /**
   * The deployment's Ed25519 public key (a KeyObject or PEM): the bank must be a file signed with its
   * private key (nfp bank sign) and unaltered since, or loading fails. Without it, a signed bank's
   * signature is not checked.
   */
  publicKey?: KeyInput;
  batchSize?: number;
  /** The model input's layout where its declared shape does not tell (default: detected). */
  layout?: Layout;
  /**
   * Whether detect() fetches from the model only the neurons the bank's fingerprints use, gathered in
   * the graph (default true), or the whole tapped layers (false; the same scores, slower: on the
   * committed CNN's card taps a run returns 740 values per image instead of 54,602).
   */
  readout?: boolean;
}

export interface Detection {
  label: number;
  score: number;
  attacked: boolean;
  threshold: number;
  /** With { explain: true }: the class-local ids of the drawn fingerprints and their score terms. */
  fingerprints?: number[];
  terms?: number[];
  /**
   * Set when the predicted class has no fingerprints in this bank: the input is not scored, and it
   * is reported attacked unless the detector was loaded with unscoredClasses: 'pass'.
   */
  unscored?: string;
  /**
   * Set when the input cannot be judged (an image that does not decode, non-finite or out-of-range
   * pixels, non-finite logits or activations): it is reported attacked, with a NaN score.
   */
  rejected?: string;
}

/**
 * What calibrate() does when not told otherwise; the reasons for minPerClass and
 * minPerClassConfidence are measured in docs/results.md (*The demo*, calibration).
 */
export const defaultCalibration = {
  fpr: 0.05,
  drawsPerImage: 10,
  minPerClass: 100,
  minPerClassConfidence: 200,
} as const;

export interface CalibrateOptions {
  fpr?: number;
  /** Random draws per clean image (default 10). */
  drawsPerImage?: number;
  /**
   * Clean images a class needs for its own threshold; fewer take the global one (default 100: at a 5%
   * rate, 5 images' draws above it). Raw scores differ in scale between classes, so a global
   * threshold misfits a class (docs/results.md, *The demo*, calibration).
   */
  minPerClass?: number;
  /**
   * Clean images a class needs for its own centers and scales in the confidence term; fewer take
   * those of all classes (default 200, kept apart from minPerClass by measurement: docs/results.md).
   */
  minPerClassConfidence?: number;
}

export class DetectorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DetectorError';
  }
}

export interface Scored {
  labels: Int32Array;
  /** The decision scores: the fingerprint score, or with the confidence term the combined one. */
  scores: Float64Array;
  /** With the confidence term: the fingerprint score alone, each family's sum [rows x families], and the confidence
   * statistic. */
  fingerprint?: Float64Array;
  familySums?: Float64Array;
  confidence?: Float64Array;
  draws: Array<number[] | undefined>;
  terms: Array<number[] | undefined>;
  /** Rows left unscored (NaN) because their activations, logits or pixels are not finite: why. */
  rejected: Array<string | undefined>;
}

/**
 * The randomized fingerprint detector (Neural Fingerprints for Adversarial Attack Detection,
 * arXiv:2411.04533): one inference with the bank's taps per batch, then for every input a fresh draw
 * of `draws` fingerprints from its predicted class (node:crypto), scored with the Gaussian
 * log-likelihood ratio (attacked vs clean) summed over the draw, families combined by `max`; a
 * threshold calibrated on held-out clean images for a target false-positive rate decides.
 *
 * Arguments (`load`): `model` (ONNX path or bytes), `bank` (.nfp path or FingerprintBank), `draws`
 * (25), `combine`, `scorer` ('llr'), `confidence` (add the logit-margin term), `fpr`, `threshold`,
 * `seed` (tests only), `allowModelMismatch`. Inputs to `detect`: an ONNX Runtime tensor or
 * `{ data, dims }` float32 [N, C, H, W] or [C, H, W] in the model's input range, image paths or
 * encoded image bytes, or an array of them; one Detection per image.
 *
 * @example
 * const det = await FingerprintDetector.load({ model: 'models/fmnist-cnn.onnx', bank: 'bank.nfp' });
 * await det.calibrate(heldOutClean, { fpr: 0.05 });     // once, if the bank is not calibrated yet
 * const [r] = await det.detect(tensor);                  // { label, score, attacked, threshold }
 * await det.release();
 */
export class FingerprintDetector {
  private constructor(
    readonly classifier: Classifier,
    private bankNow: FingerprintBank,
    readonly draws: number,
    readonly combine: Combine,
    readonly scorer: Scorer,
    private readonly threshold: number | undefined,
    private readonly source: DrawSource,
    /** The false-positive rate asked for, if any. */
    readonly fpr: number | undefined,
    /** Whether scores add the logit-margin confidence term. */
    readonly confidence: boolean,
    private readonly unscoredClasses: 'flag' | 'pass',
    /** Pixel values inputs may hold, or 'any'. */
    readonly inputRange: readonly [number, number] | 'any',
    /** The seed of reproducible draws, if any (tests and evaluations only). */
    private readonly seed: number | undefined,
  ) {}

  /** Set by release(): the ONNX Runtime session is gone. */
  private released = false;

  get bank(): FingerprintBank {
    return this.bankNow;
  }

  static async load(options: DetectorOptions): Promise<FingerprintDetector> {
    const bank = loadBank(options.bank, options.publicKey);
    const h = bank.header;
    const cal = h.calibration;
    const draws = options.draws ?? cal?.draws ?? defaultDraws;
    if (!Number.isInteger(draws) || draws < 1)
      throw new RangeError(`Expected a positive integer for draws but received ${draws}`);
    const combine = options.combine ?? cal?.combine ?? 'max';
    if (combine !== 'max' && combine !== 'logsumexp')
      throw new RangeError(`Expected 'max' or 'logsumexp' for combine but received ${String(combine)}`);
    const scorer = options.scorer ?? 'llr';
    if (!['llr', 'vote', 'likelihood'].includes(scorer))
      throw new RangeError(`Expected 'llr', 'vote' or 'likelihood' for scorer but received ${String(scorer)}`);
    if (options.threshold !== undefined && !Number.isFinite(options.threshold))
      throw new RangeError(`Expected a finite number for threshold but received ${options.threshold}`);
    if (options.fpr !== undefined && !(options.fpr > 0 && options.fpr < 1))
      throw new RangeError(`Expected a rate in (0, 1) for fpr but received ${options.fpr}`);
    const confidence = options.confidence ?? cal?.confidence !== undefined;
    if (confidence && scorer !== 'llr')
      throw new RangeError(`Expected the llr scorer with confidence but received '${scorer}'`);
    const {
      model,
      bank: _bank,
      draws: _d,
      combine: _c,
      scorer: _s,
      threshold: _t,
      fpr,
      seed,
      allowModelMismatch,
      batchSize,
      confidence: _q,
      unscoredClasses = 'flag',
      inputRange = h.model.inputRange ?? [0, 1],
      publicKey: _key,
      readout = true,
      ...settings
    } = options;
    if (unscoredClasses !== 'flag' && unscoredClasses !== 'pass')
      throw new RangeError(`Expected 'flag' or 'pass' for unscoredClasses but received ${String(unscoredClasses)}`);
    if (
      inputRange !== 'any' &&
      !(Number.isFinite(inputRange[0]) && Number.isFinite(inputRange[1]) && inputRange[0] < inputRange[1])
    )
      throw new RangeError(`Expected [lo, hi] with lo < hi or 'any' for inputRange but received ${String(inputRange)}`);
    const classifier = await Classifier.load(model, {
      ...settings,
      taps: bank.tapRequests,
      inputShape: h.model.inputShape,
      ...(batchSize ? { batchSize } : {}),
      ...(readout ? { readout: bankNeurons(bank) } : {}),
    }).catch((error: unknown) => {
      if (!(error instanceof TapError)) throw error;
      // The model lacks a layer the bank taps: almost always a bank fitted on another model.
      const given = typeof model === 'string' ? model : 'the model given';
      throw new DetectorError(
        `The bank was fitted on model ${h.model.source} (sha256 ${h.model.sha256.slice(0, 12)}…) and taps ` +
          `${h.taps.map((t) => t.tensor).join(', ')}, which ${given} does not have (${error.message}); ` +
          'use the bank with the model it was fitted on (nfp bank info shows it) or fit a bank for this model',
      );
    });
    try {
      if (classifier.sha256 !== h.model.sha256 && allowModelMismatch !== true) {
        const fitted = `${h.model.source} (sha256 ${h.model.sha256.slice(0, 12)}…)`;
        throw new DetectorError(
          `The bank was fitted on model ${fitted} but ${classifier.source} ` +
            `has sha256 ${classifier.sha256.slice(0, 12)}…; pass allowModelMismatch to use it anyway`,
        );
      }
      const sizes = classifier.taps.map((t) => t.size);
      if (
        classifier.neurons !== h.neurons ||
        sizes.some((s, i) => s !== h.taps[i]!.size) ||
        classifier.classes !== h.model.classes
      ) {
        throw new DetectorError(
          `The bank's taps ` +
            `(${h.taps.map((t) => `${t.tensor}: ${t.size}`).join(', ')}) and ${h.model.classes} classes do not ` +
            `match the model's ` +
            `(${classifier.taps.map((t) => `${t.tensor}: ${t.size}`).join(', ')}; ${classifier.classes} classes)`,
        );
      }
      // Bind the bank to the model's tap layout now rather than on the first request (at 1,000 classes
      // the binding resolves two million fingerprints).
      bank.tapBinding(classifier.tapReads, classifier.tapShapes);
      return new FingerprintDetector(
        classifier,
        bank,
        draws,
        combine,
        scorer,
        options.threshold,
        seed === undefined ? new CryptoDraws() : new SeededDraws(seed),
        fpr,
        confidence,
        unscoredClasses,
        inputRange,
        seed,
      );
    } catch (error) {
      await classifier.release();
      throw error;
    }
  }

  /**
   * Scores every image of the input(s): one Detection per image, in order. An input that cannot be
   * judged (it does not decode, or holds non-finite or out-of-range pixels, or gives non-finite
   * logits or activations) is reported attacked with the reason in `rejected`; it never fails the
   * other inputs of the call.
   */
  async detect(input: DetectInput | DetectInput[], options: { explain?: boolean } = {}): Promise<Detection[]> {
    this.checkLive('detect');
    const explain = options.explain === true;
    const { batch, name, failed } = await collectInputs(input, this.classifier.inputShape, this.classifier.layout);
    const rows = batch.dims[0]!;
    const pixels = pixelProblems(batch.data, rows, this.inputRange);
    // Each ONNX Runtime call's tapped outputs are scored where they lie (no activation matrix).
    const parts: Array<{ before: Array<string | undefined>; scored: Scored }> = [];
    for await (const run of this.classifier.runTaps(batch)) {
      const end = run.start + run.rows;
      const before = firstProblem(
        failed.slice(run.start, end),
        pixels.slice(run.start, end),
        nonFiniteRows(run.logits, run.rows, 'logits'),
      );
      const scored = await this.scoreActivations(run.taps, run.labels, {
        explain,
        logits: run.logits,
        exclude: before,
        firstRow: run.start,
      });
      parts.push({ before, scored });
    }
    const before = parts.length === 1 ? parts[0]!.before : parts.flatMap((p) => p.before);
    const scored =
      parts.length === 1
        ? parts[0]!.scored
        : concatScored(
            parts.map((p) => p.scored),
            rows,
          );
    const problems = firstProblem(before, scored.rejected);
    // Thresholds per class, looked up once per call rather than once per input.
    const thresholds = new Map<number, number>();
    return Array.from(scored.labels, (label, i) => {
      let threshold = thresholds.get(label);
      if (threshold === undefined) {
        threshold = this.thresholdOf(label);
        thresholds.set(label, threshold);
      }
      if (problems[i] !== undefined) {
        const rejected = `${name(i)}: ${problems[i]}`;
        return { label: failed[i] !== undefined ? -1 : label, score: Number.NaN, attacked: true, threshold, rejected };
      }
      const score = scored.scores[i]!;
      const detection: Detection = { label, score, attacked: score > threshold, threshold };
      if (this.bankNow.header.classes[label]!.count === 0) {
        detection.unscored = `class ${label} has no fingerprints in this bank`;
        detection.attacked = this.unscoredClasses === 'flag';
      }
      if (explain) {
        detection.fingerprints = scored.draws[i] ?? [];
        detection.terms = scored.terms[i] ?? [];
      }
      return detection;
    });
  }

  /**
   * Calibrates thresholds on held-out clean images and keeps them with the bank (see save()). The
   * images are scored in chunks, so memory depends on the chunk, not on how many images there are.
   */
  async calibrate(clean: ImageBatch, options: CalibrateOptions = {}): Promise<Calibration> {
    this.checkLive('calibrate');
    const fpr = options.fpr ?? this.fpr ?? defaultCalibration.fpr;
    if (!(fpr > 0 && fpr < 1)) throw new RangeError(`Expected a rate in (0, 1) for fpr but received ${fpr}`);
    const drawsPerImage = options.drawsPerImage ?? defaultCalibration.drawsPerImage;
    if (!Number.isInteger(drawsPerImage) || drawsPerImage < 1)
      throw new RangeError(`Expected a positive integer for drawsPerImage but received ${drawsPerImage}`);
    const minPerClass = options.minPerClass ?? defaultCalibration.minPerClass;
    const minPerClassConfidence = options.minPerClassConfidence ?? defaultCalibration.minPerClassConfidence;
    const classes = this.bankNow.header.model.classes;
    const { labels, reps } = await this.calibrationScores(clean, drawsPerImage);
    const families = this.bankNow.families;
    // With the confidence term, its per-class statistics are fitted on these same images before the
    // combined scores set the thresholds.
    const confidence = this.confidence
      ? fitConfidence(
          labels,
          reps.map((r) => r.familySums!),
          families,
          reps[0]!.confidence!,
          classes,
          minPerClassConfidence,
        )
      : undefined;
    const byClass = Array.from({ length: classes }, () => [] as number[]);
    const imagesOf = new Int32Array(classes);
    for (const c of labels) imagesOf[c]!++;
    for (const rep of reps) {
      labels.forEach((c, i) => {
        const score =
          confidence === undefined
            ? rep.scores[i]!
            : combineConfidence(
                confidence,
                c,
                rep.familySums!.subarray(i * families, (i + 1) * families),
                rep.confidence![i]!,
              );
        if (Number.isFinite(score)) byClass[c]!.push(score);
      });
    }
    const calibration: Calibration = {
      fpr,
      draws: this.draws,
      combine: this.combine,
      global: thresholdFor(byClass.flat(), fpr),
      perClass: byClass.map((scores, c) => (imagesOf[c]! >= minPerClass ? thresholdFor(scores, fpr) : null)),
      images: labels.length,
      drawsPerImage,
      ...(confidence !== undefined ? { confidence } : {}),
    };
    this.bankNow = this.bankNow.withCalibration(calibration);
    return calibration;
  }

  /** Every clean image's scores under `reps` independent draws, computed chunk by chunk. */
  private async calibrationScores(
    clean: ImageBatch,
    reps: number,
  ): Promise<{ labels: Int32Array; reps: Array<Pick<Scored, 'scores' | 'familySums' | 'confidence'>> }> {
    const rows = clean.dims[0]!;
    const fam = this.bankNow.families;
    const labels = new Int32Array(rows);
    const out = Array.from({ length: reps }, () => ({
      scores: new Float64Array(rows).fill(Number.NaN),
      ...(this.confidence
        ? { familySums: new Float64Array(rows * fam).fill(Number.NaN), confidence: new Float64Array(rows) }
        : {}),
    }));
    const chunk = activationChunkRows(this.classifier.neurons);
    for (let start = 0; start < rows; start += chunk) {
      const images = sliceImages(clean, start, Math.min(rows, start + chunk));
      const run = await this.classifier.run(images);
      labels.set(run.labels, start);
      // Images whose pixels or logits are not finite have no score to calibrate on.
      const exclude = firstProblem(
        pixelProblems(images.data, run.rows, 'any'),
        nonFiniteRows(run.logits, run.rows, 'logits'),
      );
      for (let rep = 0; rep < reps; rep++) {
        // A seeded detector draws anew per repetition (its draws otherwise follow the row alone).
        const draws = this.seed === undefined ? this.source : new SeededDraws(mixSeed(this.seed, 0x63616c, rep));
        const scored = await this.scoreActivations(run.activations, run.labels, {
          logits: run.logits,
          exclude,
          draws,
          firstRow: start,
        });
        out[rep]!.scores.set(scored.scores, start);
        if (scored.familySums) out[rep]!.familySums!.set(scored.familySums, start * fam);
        if (scored.confidence) out[rep]!.confidence!.set(scored.confidence, start);
      }
    }
    return { labels, reps: out };
  }

  /** Writes the bank with its current calibration. */
  save(path: string): void {
    writeBank(path, this.bankNow);
  }

  /** Scores without thresholds, for evaluation: labels and scores per image. */
  async score(batch: ImageBatch, explain = false): Promise<Scored> {
    this.checkLive('score');
    const out = await this.classifier.run(batch);
    const rows = out.rows;
    const exclude = firstProblem(
      pixelProblems(batch.data, rows, this.inputRange),
      nonFiniteRows(out.logits, rows, 'logits'),
    );
    const scored = await this.scoreActivations(out.activations, out.labels, { explain, logits: out.logits, exclude });
    return { ...scored, rejected: firstProblem(exclude, scored.rejected) };
  }

  /** Frees the ONNX Runtime session; calling it again does nothing, and detect() afterwards throws. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.classifier.release();
  }

  private checkLive(method: string): void {
    if (this.released)
      throw new DetectorError(
        `${method}() was called after release(): load a new detector with FingerprintDetector.load()`,
      );
  }

  /** The decision threshold for inputs labelled `label`: the explicit one, or the calibration's. */
  thresholdOf(label: number): number {
    if (this.threshold !== undefined) return this.threshold;
    const cal = this.bankNow.header.calibration;
    if (cal === undefined)
      throw new DetectorError(
        'The bank is not calibrated: call calibrate() on held-out clean images, or pass a threshold',
      );
    if (this.fpr !== undefined && Math.abs(cal.fpr - this.fpr) > 1e-12) {
      throw new DetectorError(
        `The bank was calibrated for a false-positive rate of ${cal.fpr}, not ${this.fpr}: calibrate again or pass ` +
          `a threshold`,
      );
    }
    if ((cal.confidence !== undefined) !== this.confidence) {
      throw new DetectorError(
        `The bank was calibrated ${cal.confidence ? 'with' : 'without'} the confidence term; this detector ` +
          `scores ${this.confidence ? 'with' : 'without'} it: calibrate again or pass a threshold`,
      );
    }
    if (cal.draws !== this.draws || cal.combine !== this.combine || this.scorer !== 'llr') {
      throw new DetectorError(
        `The bank was calibrated for ${cal.draws} draws with '${cal.combine}' and the llr scorer; this detector ` +
          `uses ${this.draws} with '${this.combine}' and '${this.scorer}': calibrate again or pass a threshold`,
      );
    }
    return cal.perClass[label] ?? cal.global;
  }

  /**
   * Scores tapped activations [rows x neurons] of images the model labelled `labels`. `draws` picks
   * the fingerprints: this detector's source (default), another source (an evaluation's independent
   * detectors), or 'fixed': every input of a class gets the same, strongest fingerprints (the
   * non-randomized reference detector, for comparison only). A detector with the confidence term
   * needs the images' `logits` [rows x classes] too; its scores combine both once the bank is
   * calibrated for it (before that, they are the fingerprint scores).
   */
  async scoreActivations(
    acts: Float32Array | TapActivations,
    labels: Int32Array,
    options: {
      explain?: boolean;
      draws?: DrawSource | 'fixed';
      logits?: Float32Array;
      /** Rows not to score (their score stays NaN), e.g. inputs already found unfit: the reason per row. */
      exclude?: ReadonlyArray<string | undefined>;
      /** The position of the first row in a longer sequence scored in chunks: seeded draws follow it. */
      firstRow?: number;
    } = {},
  ): Promise<Scored> {
    const explain = options.explain === true;
    const source = options.draws ?? this.source;
    const scored = emptyScored(labels, this.bankNow.families, this.confidence);
    for (const [m, members] of this.drawGroups(labels, options.exclude)) {
      const firstRow = options.firstRow ?? 0;
      const drawn = this.drawFor(members, labels, m, source, firstRow);
      let result = await this.scoreGroup(acts, labels.length, m, members, drawn, explain).catch((error: unknown) => {
        if ((error as { code?: string }).code !== 'NFP_NON_FINITE') throw error;
        return undefined;
      });
      if (result === undefined) {
        // A drawn activation is not finite: find every such row of the group, leave it unscored, score the rest.
        const neurons = this.bankNow.header.neurons;
        const bad = nonFiniteRows(gatherRows(matrixOf(acts), members, neurons), members.length, 'activations');
        const keep = members.filter((_, at) => bad[at] === undefined);
        members.forEach((r, at) => {
          if (bad[at] !== undefined) scored.rejected[r] = bad[at];
        });
        if (keep.length === 0) continue;
        const kept = this.drawFor(keep, labels, m, source, firstRow);
        result = await this.scoreGroup(acts, labels.length, m, keep, kept, explain);
        this.collect(scored, result, labels, m, kept, explain);
        continue;
      }
      this.collect(scored, result, labels, m, drawn, explain);
    }
    return this.confidence ? this.withConfidence(scored, options.logits) : scored;
  }

  /** Rows grouped by draw size: a class with fewer fingerprints than the draw size draws all it has. */
  private drawGroups(labels: Int32Array, exclude?: ReadonlyArray<string | undefined>): Map<number, number[]> {
    const groups = new Map<number, number[]>();
    labels.forEach((c, r) => {
      const count = this.bankNow.header.classes[c]?.count ?? 0;
      if (count === 0 || exclude?.[r] !== undefined) return;
      const m = Math.min(this.draws, count);
      const group = groups.get(m);
      if (group === undefined) groups.set(m, [r]);
      else group.push(r);
    });
    return groups;
  }

  /** Each member row's m fingerprint ids [members x m], from its predicted class's rows of the bank. */
  private drawFor(
    members: number[],
    labels: Int32Array,
    m: number,
    source: DrawSource | 'fixed',
    firstRow: number,
  ): Uint32Array {
    const drawn = new Uint32Array(members.length * m);
    members.forEach((r, i) => {
      const { start, count } = this.bankNow.range(labels[r]!);
      // Fingerprints are stored strongest first, so the fixed detector takes the first m.
      if (source === 'fixed') for (let j = 0; j < m; j++) drawn[i * m + j] = start + j;
      // A seeded source draws by row position, so concurrent calls reproduce a serial run.
      else drawDistinct(source.forRow?.(firstRow + r) ?? source, start, count, m, drawn, i * m);
    });
    return drawn;
  }

  /**
   * The native scores of one draw-size group. The full-size group is scored in place over every row,
   * the others' rows given some valid draw and their scores dropped: copying most rows' activations
   * cost more than scoring them. Should a dropped row make the kernel fail (a non-finite activation
   * under its stand-in draw), the group is scored again on its own rows, as the smaller groups always are.
   */
  private async scoreGroup(
    acts: Float32Array | TapActivations,
    rows: number,
    m: number,
    members: number[],
    drawn: Uint32Array,
    explain: boolean,
  ): Promise<GroupScores> {
    const bank = this.bankNow;
    const score = (rowsIn: number, groupActs: Float32Array | TapActivations, groupDraws: Uint32Array) => {
      const options = {
        rows: rowsIn,
        draws: groupDraws,
        combine: this.combine,
        ...(explain || this.scorer === 'vote' ? { terms: true } : {}),
        ...(this.scorer === 'likelihood' ? { means: true } : {}),
      };
      if (groupActs instanceof Float32Array) return bank.native.detectScores({ acts: groupActs, ...options });
      // Tap buffers through the bank's binding to this classifier's layout, made on the first batch.
      const buffers = groupActs.buffers;
      return bank.tapBinding(groupActs.reads, buffers).detectScores({ data: buffers.map((b) => b.data), ...options });
    };
    // Tap buffers are scored in place for every group: gathering a group's rows would mean making the matrix.
    if ((m === this.draws || !(acts instanceof Float32Array)) && members.length < rows) {
      const spread = new Uint32Array(rows * m).fill(drawn[0]!);
      members.forEach((r, i) => {
        spread.set(drawn.subarray(i * m, (i + 1) * m), r * m);
      });
      const inPlace = await score(rows, acts, spread).catch(() => undefined);
      if (inPlace !== undefined) return { ...inPlace, members, rowOf: (r) => r };
    }
    const groupActs = members.length === rows ? acts : gatherRows(matrixOf(acts), members, bank.header.neurons);
    const result = await score(members.length, groupActs, drawn);
    return { ...result, members, rowOf: (_, at) => at };
  }

  /** Writes a group's scores (by this detector's scorer), family sums and explanations into `scored`. */
  private collect(
    scored: Scored,
    result: GroupScores,
    labels: Int32Array,
    m: number,
    drawn: Uint32Array,
    explain: boolean,
  ): void {
    const bank = this.bankNow;
    const fam = bank.families;
    result.members.forEach((r, at) => {
      const i = result.rowOf(r, at);
      if (scored.familySums !== undefined)
        for (let a = 0; a < fam; a++) scored.familySums[r * fam + a] = result.familyScores[i * fam + a]!;
      // The llr score is the kernel's own; the others read the terms or the drawn ids.
      scored.scores[r] =
        this.scorer === 'llr'
          ? result.score[i]!
          : scorers[this.scorer]({ result, bank, i, m, ids: drawn.subarray(at * m, (at + 1) * m) });
      if (explain) {
        const { start } = bank.range(labels[r]!);
        scored.draws[r] = Array.from(drawn.subarray(at * m, (at + 1) * m), (id) => id - start);
        scored.terms[r] = Array.from(result.terms!.subarray(i * m * fam, (i + 1) * m * fam));
      }
    });
  }

  /** The fingerprint scores combined with the logit-margin confidence term, once the bank is calibrated for it. */
  private withConfidence(scored: Scored, logits: Float32Array | undefined): Scored {
    const bank = this.bankNow;
    const rows = scored.labels.length;
    const fam = bank.families;
    if (logits === undefined || logits.length !== rows * bank.header.model.classes) {
      throw new DetectorError(
        `This detector scores with the confidence term: pass the images' logits ` +
          `[${rows} x ${bank.header.model.classes}]`,
      );
    }
    const confidence = confidenceStatistic(logits, rows);
    const cal: ConfidenceCalibration | undefined = bank.header.calibration?.confidence;
    const sums = scored.familySums!;
    const combined =
      cal === undefined
        ? scored.scores
        : scored.scores.map((v, r) =>
            Number.isNaN(v)
              ? NaN
              : combineConfidence(cal, scored.labels[r]!, sums.subarray(r * fam, (r + 1) * fam), confidence[r]!),
          );
    return { ...scored, scores: combined, fingerprint: scored.scores, confidence };
  }
}

/** One draw-size group's native results, and where each member row's results sit in them. */
type GroupScores = Awaited<ReturnType<Bank['detectScores']>> & {
  members: number[];
  /** The place of member row r (the at-th member) in the kernel's outputs. */
  rowOf: (r: number, at: number) => number;
};

/** The neurons the bank's fingerprints read, ascending: detect()'s readout of the model. */
function bankNeurons(bank: FingerprintBank): Uint32Array {
  const used = new Uint8Array(bank.header.neurons);
  for (const n of bank.arrays.indices) if (n < used.length) used[n] = 1;
  const out: number[] = [];
  used.forEach((u, n) => {
    if (u === 1) out.push(n);
  });
  return Uint32Array.from(out);
}

/** The activation matrix of either form (tap buffers are copied into one: rare paths only). */
function matrixOf(acts: Float32Array | TapActivations): Float32Array {
  return acts instanceof Float32Array ? acts : acts.matrix();
}

/** The Scored of consecutive chunks of one call's rows, as one. */
function concatScored(parts: Scored[], rows: number): Scored {
  const out: Scored = {
    labels: new Int32Array(rows),
    scores: new Float64Array(rows),
    draws: [],
    terms: [],
    rejected: [],
  };
  const floats = (pick: (p: Scored) => Float64Array | undefined) => {
    if (parts.some((p) => pick(p) === undefined)) return undefined;
    const all = new Float64Array(parts.reduce((n, p) => n + pick(p)!.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(pick(p)!, at);
      at += pick(p)!.length;
    }
    return all;
  };
  let at = 0;
  for (const p of parts) {
    out.labels.set(p.labels, at);
    out.scores.set(p.scores, at);
    at += p.labels.length;
    out.draws.push(...Array.from({ length: p.labels.length }, (_, i) => p.draws[i]));
    out.terms.push(...Array.from({ length: p.labels.length }, (_, i) => p.terms[i]));
    out.rejected.push(...Array.from({ length: p.labels.length }, (_, i) => p.rejected[i]));
  }
  const fingerprint = floats((p) => p.fingerprint);
  const familySums = floats((p) => p.familySums);
  const confidence = floats((p) => p.confidence);
  return {
    ...out,
    ...(fingerprint ? { fingerprint } : {}),
    ...(familySums ? { familySums } : {}),
    ...(confidence ? { confidence } : {}),
  };
}

/** Scores of rows of no group (classes without fingerprints) stay NaN. */
function emptyScored(labels: Int32Array, families: number, confidence: boolean): Scored {
  const rows = labels.length;
  return {
    labels,
    scores: new Float64Array(rows).fill(Number.NaN),
    // Each family's sum, kept for the confidence term, which standardizes the families apart.
    ...(confidence ? { familySums: new Float64Array(rows * families).fill(Number.NaN) } : {}),
    draws: new Array(rows),
    terms: new Array(rows),
    rejected: new Array(rows),
  };
}

interface ScorerInput {
  result: GroupScores;
  bank: FingerprintBank;
  /** The row's place in the kernel's outputs. */
  i: number;
  m: number;
  /** The row's drawn fingerprint ids. */
  ids: Uint32Array;
}

/**
 * The detector's scorers: the Gaussian log-likelihood ratio (the method's), and for comparison the
 * reference code's others: the share of drawn fingerprints that vote attacked, and the mean negative
 * clean log-likelihood of the drawn fingerprints' means.
 */
const scorers: Record<Scorer, (input: ScorerInput) => number> = {
  llr: ({ result, i }) => result.score[i]!,
  vote: ({ result, bank, i, m }) => {
    const fam = bank.families;
    let votes = 0;
    for (let j = 0; j < m; j++) {
      let best = Number.NEGATIVE_INFINITY;
      for (let f = 0; f < fam; f++) best = Math.max(best, result.terms![(i * m + j) * fam + f]!);
      if (best > 0) votes++;
    }
    return votes / m;
  },
  likelihood: ({ result, bank, i, m, ids }) => {
    let nll = 0;
    for (let j = 0; j < m; j++) {
      const id = ids[j]!;
      const sd = bank.arrays.sd0[id]!;
      const z = (result.means![i * m + j]! - bank.arrays.mu0[id]!) / sd;
      nll += 0.5 * z * z + Math.log(sd) + 0.5 * Math.log(2 * Math.PI);
    }
    return nll / m;
  },
};

/** The bank from a path or bytes, its signature checked when a key is given; or a bank already in memory. */
function loadBank(bank: string | Uint8Array | FingerprintBank, publicKey: KeyInput | undefined): FingerprintBank {
  if (typeof bank === 'string') return readBank(bank, publicKey !== undefined ? { publicKey } : {});
  if (bank instanceof Uint8Array) return decodeBank(bank, 'bank', publicKey !== undefined ? { publicKey } : {});
  if (publicKey !== undefined && bank.signature?.verified !== true)
    throw new DetectorError(
      'A public key was given, so the bank must come from a file signed with its private key: pass the path ' +
        '(or bytes) of the signed bank, not a bank in memory',
    );
  return bank;
}
