// FingerprintDetector: one inference with the bank's taps per batch, then, per input, a fresh
// random draw of fingerprints from its predicted class and the native fused score. A threshold
// calibrated on held-out clean images (per class where possible) decides.
import type * as ort from 'onnxruntime-node';
import type { FingerprintBank } from '../bank/index.js';
import { readBank, writeBank } from '../bank/index.js';
import type { Calibration, ConfidenceCalibration } from '../bank/index.js';
import { decodeImage, gatherRows } from '../data/index.js';
import { Classifier, toChannelsFirst } from '../model/index.js';
import type { ImageBatch, Layout, SessionSettings } from '../model/index.js';
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
  /** The model input's layout where its declared shape does not tell (default: detected). */
  layout?: Layout;
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

export interface CalibrateOptions {
  fpr?: number;
  /** Random draws per clean image (default 10). */
  drawsPerImage?: number;
  /**
   * Clean images a class needs for its own threshold; fewer take the global one (default 100: at a 5%
   * rate, 5 images' draws above it). Raw scores differ in scale between classes, so a global
   * threshold misfits: with 200, half the classes of a 2,000-image calibration fell back to it and
   * one of them measured 18% false positives (docs/results.md).
   */
  minPerClass?: number;
  /**
   * Clean images a class needs for its own centers and scales in the confidence term; fewer take
   * those of all classes (default 200). Kept apart from minPerClass: on the ResNet, fitting them per
   * class from 100 images cost 0.005 AUC on CW-L2 and 0.04 on CW-L2 kappa 5 (docs/results.md).
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
    const draws = options.draws ?? cal?.draws ?? 25;
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
      taps: h.taps.map((t) => t.tensor),
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
    const fpr = options.fpr ?? this.fpr ?? 0.05;
    if (!(fpr > 0 && fpr < 1)) throw new RangeError(`Expected a rate in (0, 1) for fpr but received ${fpr}`);
    const drawsPerImage = options.drawsPerImage ?? 10;
    const minPerClass = options.minPerClass ?? 100;
    const minPerClassConfidence = options.minPerClassConfidence ?? 200;
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
    const bank = this.bankNow;
    const rows = labels.length;
    const n = bank.header.neurons;
    const scores = new Float64Array(rows).fill(NaN);
    const fam = bank.families;
    // Each family's sum, kept for the confidence term, which standardizes the families apart.
    const familySums = this.confidence ? new Float64Array(rows * fam).fill(NaN) : undefined;
    const draws: Array<number[] | undefined> = new Array(rows);
    const terms: Array<number[] | undefined> = new Array(rows);
    // Rows whose class has fewer fingerprints than the draw size draw all of them; group by draw size.
    const groups = new Map<number, number[]>();
    labels.forEach((c, r) => {
      const count = bank.header.classes[c]?.count ?? 0;
      if (count === 0) return;
      const m = Math.min(this.draws, count);
      (groups.get(m) ?? groups.set(m, []).get(m)!).push(r);
    });
    for (const [m, members] of groups) {
      const drawn = new Uint32Array(members.length * m);
      members.forEach((r, i) => {
        const { start, count } = bank.range(labels[r]!);
        // Fingerprints are stored strongest first, so the fixed detector takes the first m.
        if (source === 'fixed') for (let j = 0; j < m; j++) drawn[i * m + j] = start + j;
        else drawDistinct(source, start, count, m, drawn, i * m);
      });
      const needTerms = explain || this.scorer === 'vote';
      const needMeans = this.scorer === 'likelihood';
      const score = (rowsIn: number, groupActs: Float32Array, groupDraws: Uint32Array) =>
        bank.native.detectScores({
          acts: groupActs,
          rows: rowsIn,
          draws: groupDraws,
          combine: this.combine,
          ...(needTerms ? { terms: true } : {}),
          ...(needMeans ? { means: true } : {}),
        });
      // The full-size group is scored in place over every row, the others' rows given some valid
      // draw and their scores dropped: copying most rows' activations cost more than scoring them.
      // Should a dropped row make the kernel fail (a non-finite activation under its stand-in draw),
      // the group is scored again on its own rows, as the smaller groups always are.
      let inPlace: Awaited<ReturnType<typeof score>> | undefined;
      if (m === this.draws && members.length < rows) {
        const spread = new Uint32Array(rows * m).fill(drawn[0]!);
        members.forEach((r, i) => {
          spread.set(drawn.subarray(i * m, (i + 1) * m), r * m);
        });
        inPlace = await score(rows, acts, spread).catch(() => undefined);
      }
      const res =
        inPlace ?? (await score(members.length, members.length === rows ? acts : gatherRows(acts, members, n), drawn));
      members.forEach((r, at) => {
        // The row's place in the kernel's outputs: its own row when scored in place, else its member index.
        const i = inPlace !== undefined ? r : at;
        if (familySums !== undefined)
          for (let a = 0; a < fam; a++) familySums[r * fam + a] = res.familyScores[i * fam + a]!;
        if (this.scorer === 'llr') scores[r] = res.score[i]!;
        else if (this.scorer === 'vote') {
          let votes = 0;
          for (let j = 0; j < m; j++) {
            let best = -Infinity;
            for (let f = 0; f < fam; f++) best = Math.max(best, res.terms![(i * m + j) * fam + f]!);
            if (best > 0) votes++;
          }
          scores[r] = votes / m;
        } else {
          let nll = 0;
          for (let j = 0; j < m; j++) {
            const id = drawn[at * m + j]!;
            const z = (res.means![i * m + j]! - bank.arrays.mu0[id]!) / bank.arrays.sd0[id]!;
            nll += 0.5 * z * z + Math.log(bank.arrays.sd0[id]!) + 0.5 * Math.log(2 * Math.PI);
          }
          scores[r] = nll / m;
        }
        if (explain) {
          const { start } = bank.range(labels[r]!);
          draws[r] = Array.from(drawn.subarray(at * m, (at + 1) * m), (id) => id - start);
          terms[r] = Array.from(res.terms!.subarray(i * m * fam, (i + 1) * m * fam));
        }
      });
    }
    if (!this.confidence) return { labels, scores, draws, terms };
    if (options.logits === undefined || options.logits.length !== rows * bank.header.model.classes) {
      throw new DetectorError(
        `This detector scores with the confidence term: pass the images' logits ` +
          `[${rows} x ${bank.header.model.classes}]`,
      );
    }
    const confidence = confidenceStatistic(options.logits, rows);
    const cal: ConfidenceCalibration | undefined = bank.header.calibration?.confidence;
    const sums = familySums!;
    const combined =
      cal === undefined
        ? scores
        : scores.map((v, r) =>
            Number.isNaN(v)
              ? NaN
              : combineConfidence(cal, labels[r]!, sums.subarray(r * fam, (r + 1) * fam), confidence[r]!),
          );
    return { labels, scores: combined, fingerprint: scores, familySums: sums, confidence, draws, terms };
  }

  private async toBatch(input: DetectInput | DetectInput[]): Promise<ImageBatch> {
    const items = Array.isArray(input) ? input : [input];
    const shape = this.classifier.inputShape;
    const per = shape.reduce((a, v) => a * v, 1);
    const parts: Float32Array[] = [];
    for (const [i, item] of items.entries()) {
      const where = Array.isArray(input) ? `input[${i}]` : 'input';
      if (typeof item === 'string' || item instanceof Uint8Array) {
        const layout = this.classifier.layout;
        const [c, h, w] = toChannelsFirst(shape, layout) as [number, number, number];
        if (c !== 1 && c !== 3)
          throw new TypeError(
            `Expected a model with 1 or 3 input channels to decode images for ${where} but it takes ${c}`,
          );
        const image = await decodeImage(item, {
          channels: c,
          resize: Math.min(h, w),
          crop: h === w ? h : null,
          layout,
        });
        const [ih, iw] = layout === 'nhwc' ? image.dims.slice(1, 3) : image.dims.slice(2, 4);
        if (ih !== h || iw !== w)
          throw new RangeError(`Expected an image that resizes to ${h}x${w} for ${where} but it became ${ih}x${iw}`);
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
