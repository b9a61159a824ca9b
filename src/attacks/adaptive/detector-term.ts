// The detector as an adaptive attacker models it: a score per input (a known fixed draw, or the
// expectation over the random draw), its gradient with respect to the tapped activations (the tap seed
// of the input gradient), and the threshold the score must stay under.
import type { FingerprintBank } from '../../bank/index.js';
import { gatherRows } from '../../data/index.js';
import type { Combine } from '../../native.js';

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

export interface TermOptions {
  /** Fingerprints the detector draws per input (a class with fewer draws all it has). */
  draws: number;
  combine: Combine;
  /** The detector's threshold for inputs labelled c. */
  threshold: (c: number) => number;
}

/**
 * One known draw per class, or the whole class weighted as the expectation over uniform draws:
 * score(x) = scale_c * combine_f sum_{j in ids_c} llr_{j,f}(x), with ids and scale per class c.
 */
export class DetectorTerm {
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

  /** The term at activations [rows x neurons] of inputs labelled `labels`; with `gradient`, its seed. */
  async evaluate(acts: Float32Array, labels: Int32Array, gradient = true): Promise<TermValue> {
    const rows = labels.length;
    const n = this.neurons;
    if (acts.length !== rows * n)
      throw new RangeError(`Expected ${rows} x ${n} activations for acts but received ${acts.length} values`);
    const value = new Float64Array(rows).fill(Number.NaN);
    const slack = new Float64Array(rows).fill(Number.POSITIVE_INFINITY);
    const seed = gradient ? new Float32Array(rows * n) : undefined;
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
      const { score } = await this.bank.native.detectScores(request);
      const threshold = this.options.threshold(c);
      members.forEach((r, i) => {
        value[r] = scale * score[i]!;
        slack[r] = value[r]! - threshold;
      });
      if (seed === undefined) continue;
      const g = await this.bank.native.scoreGradient(request);
      members.forEach((r, i) => {
        const o = r * n;
        for (let j = 0; j < n; j++) seed[o + j] = scale * g[i * n + j]!;
      });
    }
    return { value, slack, ...(seed !== undefined ? { seed } : {}) };
  }
}
