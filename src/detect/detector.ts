// FingerprintDetector: one inference with the bank's taps per batch, then, per input, a fresh
// random draw of fingerprints from its predicted class and the native fused score. A threshold
// calibrated on held-out clean images (per class where possible) decides.
import type * as ort from 'onnxruntime-node';
import type { FingerprintBank } from '../bank/index.js';
import type { Bank } from '../kernels.js';
import { defaultDraws, readBank, writeBank } from '../bank/index.js';
import type { Calibration, ConfidenceCalibration } from '../bank/index.js';
import { decodeImage, gatherRows } from '../data/index.js';
import { Classifier } from '../model/index.js';
import type { ImageBatch, SessionSettings } from '../model/index.js';
import type { Combine } from '../native.js';
import { thresholdFor } from './calibrate.js';
import { combineConfidence, confidenceStatistic, fitConfidence } from './confidence.js';
import { CryptoDraws, SeededDraws, drawDistinct } from './draws.js';
import type { DrawSource } from './draws.js';

export type Scorer = 'llr' | 'vote' | 'likelihood';

/** One image: an ONNX Runtime tensor or {data, dims} ([C,H,W] or [N,C,H,W], float32 in the model's input range), an
 * image file path, or encoded image bytes. */
export type DetectInput = ort.Tensor | ImageBatch | string | Uint8Array;

export interface DetectorOptions extends SessionSettings {
  model: string | Uint8Array;
  bank: string | FingerprintBank;
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
  batchSize?: number;
}

export interface Detection {
  label: number;
  score: number;
  attacked: boolean;
  threshold: number;
  /** With { explain: true }: the class-local ids of the drawn fingerprints and their score terms. */
  fingerprints?: number[];
  terms?: number[];
  /** Set when the predicted class has no fingerprints in this bank: the input is not scored. */
  unscored?: string;
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
  ) {}

  get bank(): FingerprintBank {
    return this.bankNow;
  }

  static async load(options: DetectorOptions): Promise<FingerprintDetector> {
    const bank = typeof options.bank === 'string' ? readBank(options.bank) : options.bank;
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
      ...settings
    } = options;
    const classifier = await Classifier.load(model, {
      ...settings,
      taps: bank.tapRequests,
      inputShape: h.model.inputShape,
      ...(batchSize ? { batchSize } : {}),
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
      );
    } catch (error) {
      await classifier.release();
      throw error;
    }
  }

  /** Scores every image of the input(s): one Detection per image. */
  async detect(input: DetectInput | DetectInput[], options: { explain?: boolean } = {}): Promise<Detection[]> {
    const batch = await this.toBatch(input);
    const scored = await this.score(batch, options.explain === true);
    return Array.from(scored.labels, (label, i) => {
      const score = scored.scores[i]!;
      const count = this.bankNow.header.classes[label]!.count;
      const threshold = this.thresholdOf(label);
      const detection: Detection = { label, score, attacked: score > threshold, threshold };
      if (count === 0) detection.unscored = `class ${label} has no fingerprints in this bank`;
      if (options.explain === true) {
        detection.fingerprints = scored.draws[i] ?? [];
        detection.terms = scored.terms[i] ?? [];
      }
      return detection;
    });
  }

  /** Calibrates thresholds on held-out clean images and keeps them with the bank (see save()). */
  async calibrate(clean: ImageBatch, options: CalibrateOptions = {}): Promise<Calibration> {
    const fpr = options.fpr ?? this.fpr ?? defaultCalibration.fpr;
    if (!(fpr > 0 && fpr < 1)) throw new RangeError(`Expected a rate in (0, 1) for fpr but received ${fpr}`);
    const drawsPerImage = options.drawsPerImage ?? defaultCalibration.drawsPerImage;
    const minPerClass = options.minPerClass ?? defaultCalibration.minPerClass;
    const minPerClassConfidence = options.minPerClassConfidence ?? defaultCalibration.minPerClassConfidence;
    const out = await this.classifier.run(clean);
    const classes = this.bankNow.header.model.classes;
    const byClass = Array.from({ length: classes }, () => [] as number[]);
    const imagesOf = new Int32Array(classes);
    out.labels.forEach((c) => {
      imagesOf[c]!++;
    });
    // Fingerprint scores of every repeated draw; with the confidence term, its per-class statistics
    // are fitted on these same images before the combined scores set the thresholds.
    const families = this.bankNow.families;
    const reps: Scored[] = [];
    for (let rep = 0; rep < drawsPerImage; rep++)
      reps.push(await this.scoreActivations(out.activations, out.labels, { logits: out.logits }));
    const confidence = this.confidence
      ? fitConfidence(
          out.labels,
          reps.map((r) => r.familySums!),
          families,
          reps[0]!.confidence!,
          classes,
          minPerClassConfidence,
        )
      : undefined;
    for (const rep of reps) {
      out.labels.forEach((c, i) => {
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
    const all = byClass.flat();
    const calibration: Calibration = {
      fpr,
      draws: this.draws,
      combine: this.combine,
      global: thresholdFor(all, fpr),
      perClass: byClass.map((scores, c) => (imagesOf[c]! >= minPerClass ? thresholdFor(scores, fpr) : null)),
      images: out.rows,
      drawsPerImage,
      ...(confidence !== undefined ? { confidence } : {}),
    };
    this.bankNow = this.bankNow.withCalibration(calibration);
    return calibration;
  }

  /** Writes the bank with its current calibration. */
  save(path: string): void {
    writeBank(path, this.bankNow);
  }

  /** Scores without thresholds, for evaluation: labels and scores per image. */
  async score(batch: ImageBatch, explain = false): Promise<Scored> {
    const out = await this.classifier.run(batch);
    return this.scoreActivations(out.activations, out.labels, { explain, logits: out.logits });
  }

  async release(): Promise<void> {
    await this.classifier.release();
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
    acts: Float32Array,
    labels: Int32Array,
    options: { explain?: boolean; draws?: DrawSource | 'fixed'; logits?: Float32Array } = {},
  ): Promise<Scored> {
    const explain = options.explain === true;
    const source = options.draws ?? this.source;
    const scored = emptyScored(labels, this.bankNow.families, this.confidence);
    for (const [m, members] of this.drawGroups(labels)) {
      const drawn = this.drawFor(members, labels, m, source);
      const result = await this.scoreGroup(acts, labels.length, m, members, drawn, explain);
      this.collect(scored, result, labels, m, drawn, explain);
    }
    return this.confidence ? this.withConfidence(scored, options.logits) : scored;
  }

  /** Rows grouped by draw size: a class with fewer fingerprints than the draw size draws all it has. */
  private drawGroups(labels: Int32Array): Map<number, number[]> {
    const groups = new Map<number, number[]>();
    labels.forEach((c, r) => {
      const count = this.bankNow.header.classes[c]?.count ?? 0;
      if (count === 0) return;
      const m = Math.min(this.draws, count);
      const group = groups.get(m);
      if (group === undefined) groups.set(m, [r]);
      else group.push(r);
    });
    return groups;
  }

  /** Each member row's m fingerprint ids [members x m], from its predicted class's rows of the bank. */
  private drawFor(members: number[], labels: Int32Array, m: number, source: DrawSource | 'fixed'): Uint32Array {
    const drawn = new Uint32Array(members.length * m);
    members.forEach((r, i) => {
      const { start, count } = this.bankNow.range(labels[r]!);
      // Fingerprints are stored strongest first, so the fixed detector takes the first m.
      if (source === 'fixed') for (let j = 0; j < m; j++) drawn[i * m + j] = start + j;
      else drawDistinct(source, start, count, m, drawn, i * m);
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
    acts: Float32Array,
    rows: number,
    m: number,
    members: number[],
    drawn: Uint32Array,
    explain: boolean,
  ): Promise<GroupScores> {
    const bank = this.bankNow;
    const score = (rowsIn: number, groupActs: Float32Array, groupDraws: Uint32Array) =>
      bank.native.detectScores({
        acts: groupActs,
        rows: rowsIn,
        draws: groupDraws,
        combine: this.combine,
        ...(explain || this.scorer === 'vote' ? { terms: true } : {}),
        ...(this.scorer === 'likelihood' ? { means: true } : {}),
      });
    if (m === this.draws && members.length < rows) {
      const spread = new Uint32Array(rows * m).fill(drawn[0]!);
      members.forEach((r, i) => {
        spread.set(drawn.subarray(i * m, (i + 1) * m), r * m);
      });
      const inPlace = await score(rows, acts, spread).catch(() => undefined);
      if (inPlace !== undefined) return { ...inPlace, members, rowOf: (r) => r };
    }
    const groupActs = members.length === rows ? acts : gatherRows(acts, members, bank.header.neurons);
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
      scored.scores[r] = scorers[this.scorer]({ result, bank, i, m, ids: drawn.subarray(at * m, (at + 1) * m) });
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

  private async toBatch(input: DetectInput | DetectInput[]): Promise<ImageBatch> {
    const items = Array.isArray(input) ? input : [input];
    const shape = this.classifier.inputShape;
    const per = shape.reduce((a, v) => a * v, 1);
    const parts: Float32Array[] = [];
    for (const [i, item] of items.entries()) {
      const where = Array.isArray(input) ? `input[${i}]` : 'input';
      if (typeof item === 'string' || item instanceof Uint8Array) {
        const [c, h, w] = shape as [number, number, number];
        if (c !== 1 && c !== 3)
          throw new TypeError(
            `Expected a model with 1 or 3 input channels to decode images for ${where} but it takes ${c}`,
          );
        const image = await decodeImage(item, { channels: c, resize: Math.min(h, w), crop: h === w ? h : null });
        if (image.dims[2] !== h || image.dims[3] !== w)
          throw new RangeError(
            `Expected an image that resizes to ${h}x${w} for ${where} but it became ${image.dims[2]}x${image.dims[3]}`,
          );
        parts.push(image.data);
        continue;
      }
      const data = (item as ImageBatch).data;
      const dims = [...(item as ImageBatch).dims].map(Number);
      const full = dims.length === 3 ? [1, ...dims] : dims;
      if (
        !(data instanceof Float32Array) ||
        full.length !== 4 ||
        full.slice(1).some((d, j) => d !== shape[j]) ||
        data.length !== full.reduce((a, v) => a * v, 1)
      ) {
        const received = `${data?.constructor?.name ?? typeof data} [${dims.join(', ')}]`;
        throw new TypeError(
          `Expected a float32 tensor of shape [N, ${shape.join(', ')}] or [${shape.join(', ')}] for ${where} ` +
            `but received ${received}`,
        );
      }
      parts.push(data);
    }
    if (parts.length === 1) return { data: parts[0]!, dims: [parts[0]!.length / per, ...shape] };
    const total = parts.reduce((a, p) => a + p.length, 0);
    const data = new Float32Array(total);
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    return { data, dims: [total / per, ...shape] };
  }
}

/** One draw-size group's native results, and where each member row's results sit in them. */
type GroupScores = Awaited<ReturnType<Bank['detectScores']>> & {
  members: number[];
  /** The place of member row r (the at-th member) in the kernel's outputs. */
  rowOf: (r: number, at: number) => number;
};

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
