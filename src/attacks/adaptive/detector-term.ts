// The detector as an adaptive attacker models it: a score per input (a known fixed draw, or the
// expectation over the random draw), its gradient with respect to the tapped activations (the tap seed
// of the input gradient), and the threshold the score must stay under.
import type { ConfidenceCalibration, FingerprintBank } from '../../bank/index.js';
import { gatherRows } from '../../data/index.js';
import { confidenceStatistic } from '../../detect/confidence.js';
import { Bank } from '../../kernels.js';
import type { Combine, NativeBank } from '../../native.js';

export interface TermValue {
  /** [rows] the modelled score; NaN where the row's class has no fingerprints. */
  value: Float64Array;
  /**
   * [rows] value minus the threshold of the row's label: negative passes. +Infinity for a class
   * without fingerprints, which the deployed detector flags.
   */
  slack: Float64Array;
  /** [rows x neurons] d value / d activations; absent when not asked for. */
  seed?: Float32Array;
}

/** DetectorTerm.quadraticTable: GradientRequest.tapQuadratic's table, and the families per class (parts). */
export interface QuadraticTable {
  index: Int32Array;
  quad: Float32Array;
  lin: Float32Array;
  center: Float32Array;
  constant: Float32Array;
  parts: number;
}

export interface TermOptions {
  /** Fingerprints the detector draws per input (a class with fewer draws all it has). */
  draws: number;
  combine: Combine;
  /** The detector's threshold for inputs labelled c. */
  threshold: (c: number) => number;
  /**
   * The detector's confidence calibration, when its scores are the largest of each family's standardized
   * sum and the standardized logit-margin statistic (FingerprintDetector with `confidence`): the term is
   * then the largest standardized family expectation, and the margin statistic (from the logits given to
   * `evaluate`) counts in the value and slack. Its gradient is the fingerprints' alone: the attack keeps
   * the margin up with its own term (kappa).
   */
  confidence?: ConfidenceCalibration;
}

/**
 * One known draw per class, or the whole class weighted as the expectation over uniform draws:
 * score(x) = scale_c * combine_f sum_{j in ids_c} llr_{j,f}(x), with ids and scale per class c.
 */
export class DetectorTerm {
  #families: NativeBank[] | undefined;
  #neurons = new Map<number, Uint32Array>();
  #table: QuadraticTable | undefined;

  private constructor(
    readonly name: 'static' | 'expectation',
    readonly bank: FingerprintBank,
    private readonly ids: (c: number) => Uint32Array,
    private readonly scale: (c: number) => number,
    readonly options: TermOptions,
  ) {}

  /**
   * A static detector: every input of class c gets the same m fingerprints, the class's first m (the
   * strongest, as FingerprintDetector's 'fixed' draws), unless `ids` names others (global bank rows).
   */
  static staticDraw(bank: FingerprintBank, options: TermOptions & { ids?: (c: number) => Uint32Array }): DetectorTerm {
    const first = (c: number) => {
      const { start, count } = bank.range(c);
      return Uint32Array.from({ length: Math.min(options.draws, count) }, (_, j) => start + j);
    };
    return new DetectorTerm('static', bank, options.ids ?? first, () => 1, options);
  }

  /**
   * E over uniform draws of m distinct fingerprints of class c (K of them) of the summed LLR: each
   * fingerprint is drawn with probability m / K, so the expectation is (m / K) * the sum over all K.
   * Exact with one attack family; with several combined by max it is max_f of each family's
   * expectation, a lower bound of E[max_f] (max is convex), smooth where the draw is not.
   */
  static expectation(bank: FingerprintBank, options: TermOptions): DetectorTerm {
    const all = (c: number) => {
      const { start, count } = bank.range(c);
      return Uint32Array.from({ length: count }, (_, j) => start + j);
    };
    const scale = (c: number) => {
      const { count } = bank.range(c);
      return count === 0 ? 0 : Math.min(options.draws, count) / count;
    };
    return new DetectorTerm('expectation', bank, all, scale, options);
  }

  get neurons(): number {
    return this.bank.header.neurons;
  }

  /**
   * The term at activations [rows x neurons] of inputs labelled `labels`; with `gradient`, its seed.
   * `logits` [rows x classes] are needed for the margin statistic of a confidence-calibrated detector.
   */
  async evaluate(acts: Float32Array, labels: Int32Array, gradient = true, logits?: Float32Array): Promise<TermValue> {
    const rows = labels.length;
    const n = this.neurons;
    if (acts.length !== rows * n)
      throw new RangeError(`Expected ${rows} x ${n} activations for acts but received ${acts.length} values`);
    const value = new Float64Array(rows).fill(Number.NaN);
    const slack = new Float64Array(rows).fill(Number.POSITIVE_INFINITY);
    const seed = gradient ? new Float32Array(rows * n) : undefined;
    const cal = this.options.confidence;
    const margin = cal !== undefined && logits !== undefined ? confidenceStatistic(logits, rows) : undefined;
    const byClass = new Map<number, number[]>();
    labels.forEach((c, r) => {
      const members = byClass.get(c);
      if (members === undefined) byClass.set(c, [r]);
      else members.push(r);
    });
    for (const [c, members] of byClass) {
      const ids = this.ids(c);
      if (ids.length === 0) continue;
      const scale = this.scale(c);
      const groupActs = members.length === rows ? acts : gatherRows(acts, members, n);
      const draws = new Uint32Array(members.length * ids.length);
      for (let i = 0; i < members.length; i++) draws.set(ids, i * ids.length);
      const request = { acts: groupActs, rows: members.length, draws, combine: this.options.combine };
      // The scorers: the bank (families combined), or each family standardized as the detector does.
      const parts =
        cal === undefined
          ? [{ native: this.bank.native, center: 0, spread: 1 }]
          : cal.fingerprint[c]!.map(([center, spread], f) => ({ native: this.familyBank(f), center, spread }));
      // Per row: the largest part, and which part its gradient comes from.
      const best = new Float64Array(members.length).fill(Number.NEGATIVE_INFINITY);
      const from = new Int32Array(members.length);
      for (const [p, part] of parts.entries()) {
        const { score } = await part.native.detectScores(request);
        for (let i = 0; i < members.length; i++) {
          const v = (scale * score[i]! - part.center) / part.spread;
          if (v > best[i]!) {
            best[i] = v;
            from[i] = p;
          }
        }
      }
      const threshold = this.options.threshold(c);
      members.forEach((r, i) => {
        value[r] = this.withMargin(c, best[i]!, margin?.[r]);
        slack[r] = value[r]! - threshold;
      });
      if (seed === undefined) continue;
      const touched = this.neuronsOf(c);
      for (const [p, part] of parts.entries()) {
        if (!from.some((q) => q === p)) continue;
        const g = await part.native.scoreGradient(request);
        members.forEach((r, i) => {
          if (from[i] !== p) return;
          const o = r * n;
          const factor = scale / part.spread;
          // Zero outside the class's fingerprints' neurons: copy those alone.
          for (const j of touched) seed[o + j] = factor * g[i * n + j]!;
        });
      }
    }
    return { value, slack, ...(seed !== undefined ? { seed } : {}) };
  }

  /**
   * The detector's score of an input labelled c from the term's fingerprint value: with the confidence
   * calibration and the input's margin statistic (confidenceStatistic), the larger of the value and the
   * statistic standardized for c; otherwise the value itself.
   */
  withMargin(c: number, fingerprints: number, statistic: number | undefined): number {
    const cal = this.options.confidence;
    if (cal === undefined || statistic === undefined) return fingerprints;
    const [center, spread] = cal.margin[c]!;
    return Math.max(fingerprints, (statistic - center) / spread);
  }

  /**
   * The term as the quadratic table of a tap-seeded gradient run (GradientRequest.tapQuadratic; k = 1
   * and 'max' only): one index row per class (its fingerprints' neurons, -1 padding) and one table row
   * per class and family (each family's expected sum, standardized with the confidence calibration when
   * there is one), so that a gradient run computes the value and its seed from the activations of the
   * iterate itself. Built once. The margin statistic is not in it.
   */
  quadraticTable(): QuadraticTable {
    if (this.#table !== undefined) return this.#table;
    const { k, families: names, classes } = this.bank.header;
    if (k !== 1) throw new RangeError(`Expected a bank of k = 1 for a quadratic term but received k = ${k}`);
    if (this.options.combine !== 'max')
      throw new RangeError(`Expected 'max' for a quadratic term's combine but received ${this.options.combine}`);
    const parts = names.length;
    const rows = classes.length * parts;
    const width = Math.max(1, ...classes.map((_, c) => this.ids(c).length));
    const index = new Int32Array(classes.length * width).fill(-1);
    const quad = new Float32Array(rows * width);
    const lin = new Float32Array(rows * width);
    const center = new Float32Array(rows * width);
    const constant = new Float64Array(rows);
    const { indices, mu0, sd0, mu1, sd1 } = this.bank.arrays;
    const count = mu0.length;
    const cal = this.options.confidence;
    for (let c = 0; c < classes.length; c++) {
      const ids = this.ids(c);
      const scale = this.scale(c);
      ids.forEach((j, w) => {
        index[c * width + w] = indices[j]!;
      });
      // A class without fingerprints keeps zeros: no seed (the attack gives it slack +Infinity).
      for (let f = 0; f < parts && ids.length > 0; f++) {
        const row = c * parts + f;
        const [middle, spread] = cal === undefined ? [0, 1] : cal.fingerprint[c]![f]!;
        const factor = scale / spread;
        let sum = 0;
        ids.forEach((j, w) => {
          const m0 = mu0[j]!;
          const m1 = mu1[f * count + j]!;
          const p0 = 1 / sd0[j]! ** 2;
          const p1 = 1 / sd1[f * count + j]! ** 2;
          // Around d = a - m0 (k = 1: one neuron per fingerprint):
          // 0.5 (z0^2 - z1^2) = 0.5 (p0 - p1) d^2 + p1 (m1 - m0) d - 0.5 p1 (m1 - m0)^2.
          quad[row * width + w] = factor * (p0 - p1);
          lin[row * width + w] = factor * p1 * (m1 - m0);
          center[row * width + w] = m0;
          sum += -0.5 * p1 * (m1 - m0) ** 2 + Math.log(sd0[j]! / sd1[f * count + j]!);
        });
        constant[row] = factor * sum - middle / spread;
      }
    }
    this.#table = { index, quad, lin, center, constant: Float32Array.from(constant), parts };
    return this.#table;
  }

  /** What a gradient run needs of the table for inputs labelled `labels`: their index rows and table rows. */
  quadraticRequest(labels: Int32Array): QuadraticTable & { group: Int32Array; rows: Int32Array } {
    const table = this.quadraticTable();
    const { parts } = table;
    const rows = new Int32Array(labels.length * parts);
    labels.forEach((c, r) => {
      for (let f = 0; f < parts; f++) rows[r * parts + f] = c * parts + f;
    });
    return { ...table, group: Int32Array.from(labels), rows };
  }

  /**
   * The distinct neurons of the fingerprints the term scores inputs labelled c with: the only ones
   * where its seed can be non-zero (kept per class).
   */
  neuronsOf(c: number): Uint32Array {
    let neurons = this.#neurons.get(c);
    if (neurons === undefined) {
      const k = this.bank.header.k;
      const all = new Set<number>();
      for (const id of this.ids(c)) for (let j = 0; j < k; j++) all.add(this.bank.arrays.indices[id * k + j]!);
      neurons = Uint32Array.from(all);
      this.#neurons.set(c, neurons);
    }
    return neurons;
  }

  /** A scorer of attack family f alone (its sum), over the same fingerprints: built once. */
  private familyBank(f: number): NativeBank {
    this.#families ??= [];
    const banks = this.#families;
    if (banks[f] === undefined) {
      const { indices, mu0, sd0, mu1, sd1 } = this.bank.arrays;
      const count = mu0.length;
      banks[f] = new Bank({
        neurons: this.bank.header.neurons,
        k: this.bank.header.k,
        families: 1,
        indices,
        mu0,
        sd0,
        mu1: mu1.subarray(f * count, (f + 1) * count),
        sd1: sd1.subarray(f * count, (f + 1) * count),
      });
    }
    return banks[f]!;
  }
}
