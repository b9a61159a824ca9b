// FingerprintBank: every class's fingerprints in one set of arrays (class c owns the contiguous
// rows start_c .. start_c + count_c), with the header that binds them to a model and its taps. The
// native Bank built from it scores any row against its own class's rows in one call.
import { Bank } from '../kernels.js';
import type { TapRequest } from '../model/index.js';
import type { NativeTapBinding, TapShape } from '../native.js';
import type { BankArrays, BankClass, BankHeader, Calibration, ClassFingerprints, FittedClass } from './types.js';

export class BankFormatError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`${source}: ${message}`);
    this.name = 'BankFormatError';
  }
}

/**
 * A fingerprint bank: every class's fingerprints (neuron index subsets with their clean and
 * per-attack-family attacked means and stds) in one set of arrays, class c owning the contiguous rows
 * `range(c)`, with the header that binds them to a model, its taps and the fit settings. Built by
 * `buildBank`, stored as .nfp by `writeBank`/`readBank` (untrusted input: every field is checked).
 *
 * Shapes: `indices` [F x k] (uint32, < neurons), `mu0`, `sd0`, `effect` [F], `mu1`, `sd1`
 * [families x F] (family-major).
 *
 * @example
 * const bank = readBank('bank.nfp');
 * const { start, count } = bank.range(3);          // class 3's fingerprints
 * console.log(describeBank(bank).classes[3].family); // its family of detectors
 */
export class FingerprintBank {
  readonly starts: number[];
  #native: Bank | undefined;
  #tapBindings = new WeakMap<object, NativeTapBinding>();

  constructor(
    readonly header: BankHeader,
    readonly arrays: BankArrays,
    /**
     * Set when the bank was read from a signed file: the signing key's id (hex) and whether the
     * signature was checked against a public key. A bank changed in memory (calibrated, merged) is a
     * new, unsigned bank.
     */
    readonly signature?: { keyId: string; verified: boolean },
  ) {
    this.starts = [];
    let at = 0;
    for (const c of header.classes) {
      this.starts.push(at);
      at += c.count;
    }
  }

  /** A bank from fitted classes; classes absent from `fitted` are marked not fitted. */
  static fromClasses(header: Omit<BankHeader, 'classes'>, fitted: Map<number, FittedClass>): FingerprintBank {
    const classes: BankClass[] = [];
    const parts: ClassFingerprints[] = [];
    for (let c = 0; c < header.model.classes; c++) {
      const f = fitted.get(c);
      if (f === undefined) {
        classes.push({ fitted: false, count: 0, clean: 0, attacked: header.families.map(() => 0), passed: 0 });
        continue;
      }
      const count = f.fingerprints.mu0.length;
      classes.push({
        fitted: true,
        count,
        clean: f.clean,
        attacked: f.attacked,
        passed: f.fingerprints.passed,
        ...(f.fingerprints.relaxed ? { relaxed: f.fingerprints.relaxed } : {}),
        ...(f.fingerprints.redundancy !== undefined ? { redundancy: f.fingerprints.redundancy } : {}),
      });
      parts.push(f.fingerprints);
    }
    return new FingerprintBank({ ...header, classes }, concatenate(parts, header.families.length, header.k));
  }

  /** The taps as a model load takes them: the same tensors, and the same neuron samples. */
  get tapRequests(): TapRequest[] {
    return this.header.taps.map((t) => ({ tensor: t.tensor, ...(t.sample ? { sample: t.sample } : {}) }));
  }

  get fingerprints(): number {
    return this.arrays.mu0.length;
  }
  get families(): number {
    return this.header.families.length;
  }

  /** The rows of class c. */
  range(c: number): { start: number; count: number } {
    return { start: this.starts[c]!, count: this.header.classes[c]!.count };
  }

  /** The native scorer over every fingerprint (built once). */
  get native(): Bank {
    this.#native ??= new Bank({
      neurons: this.header.neurons,
      k: this.header.k,
      families: this.families,
      ...this.arrays,
    });
    return this.#native;
  }

  /**
   * The native scorer bound to a model's tap buffers, built once per tap layout (`key`: an object that
   * stands for the layout, such as a classifier's taps array) and then reused for every batch.
   */
  tapBinding(key: object, taps: readonly TapShape[]): NativeTapBinding {
    let binding = this.#tapBindings.get(key);
    if (binding === undefined) {
      binding = this.native.bindTaps({ taps });
      this.#tapBindings.set(key, binding);
    }
    return binding;
  }

  withCalibration(calibration: Calibration): FingerprintBank {
    const calibrated = new FingerprintBank({ ...this.header, calibration }, this.arrays);
    // The same fingerprints: the native scorer and its bindings carry over.
    calibrated.#native = this.#native;
    calibrated.#tapBindings = this.#tapBindings;
    return calibrated;
  }

  /** Class shards of one model, taps and fit settings, as one bank; a class may be fitted in one shard only. */
  static merge(banks: FingerprintBank[]): FingerprintBank {
    if (banks.length === 0) throw new RangeError('Expected at least one bank to merge but received none');
    const first = banks[0]!.header;
    for (const b of banks.slice(1)) {
      const h = b.header;
      const same =
        h.model.sha256 === first.model.sha256 &&
        h.neurons === first.neurons &&
        h.k === first.k &&
        JSON.stringify(h.taps) === JSON.stringify(first.taps) &&
        JSON.stringify(h.families) === JSON.stringify(first.families) &&
        h.classes.length === first.classes.length;
      if (!same)
        throw new RangeError('Expected banks of the same model, taps, k and attack families to merge but they differ');
    }
    const fitted = new Map<number, FittedClass>();
    for (const b of banks) {
      b.header.classes.forEach((c, i) => {
        if (!c.fitted) return;
        if (fitted.has(i))
          throw new RangeError(`Expected each class fitted in one bank only but class ${i} is fitted in two`);
        fitted.set(i, { fingerprints: b.classFingerprints(i), clean: c.clean, attacked: c.attacked });
      });
    }
    const { calibration: _dropped, classes: _classes, ...rest } = first;
    return FingerprintBank.fromClasses({ ...rest, created: new Date().toISOString() }, fitted);
  }

  /** Class c's fingerprints as their own arrays. */
  classFingerprints(c: number): ClassFingerprints {
    const { start, count } = this.range(c);
    const { k } = this.header;
    const F = this.fingerprints;
    const fam = (a: Float32Array) => {
      const out = new Float32Array(this.families * count);
      for (let f = 0; f < this.families; f++) out.set(a.subarray(f * F + start, f * F + start + count), f * count);
      return out;
    };
    const entry = this.header.classes[c]!;
    return {
      indices: this.arrays.indices.slice(start * k, (start + count) * k),
      mu0: this.arrays.mu0.slice(start, start + count),
      sd0: this.arrays.sd0.slice(start, start + count),
      mu1: fam(this.arrays.mu1),
      sd1: fam(this.arrays.sd1),
      effect: this.arrays.effect.slice(start, start + count),
      passed: entry.passed,
      ...(entry.relaxed ? { relaxed: entry.relaxed } : {}),
      ...(entry.redundancy !== undefined ? { redundancy: entry.redundancy } : {}),
    };
  }
}

/** Zeroed arrays for F fingerprints of k neurons and `families` attack families. */
export function emptyArrays(F: number, k: number, families: number): BankArrays {
  return {
    indices: new Uint32Array(F * k),
    mu0: new Float32Array(F),
    sd0: new Float32Array(F),
    mu1: new Float32Array(families * F),
    sd1: new Float32Array(families * F),
    effect: new Float32Array(F),
  };
}

function concatenate(parts: ClassFingerprints[], families: number, k: number): BankArrays {
  const F = parts.reduce((a, p) => a + p.mu0.length, 0);
  const out = emptyArrays(F, k, families);
  let at = 0;
  for (const p of parts) {
    const n = p.mu0.length;
    out.indices.set(p.indices, at * k);
    out.mu0.set(p.mu0, at);
    out.sd0.set(p.sd0, at);
    out.effect.set(p.effect, at);
    for (let f = 0; f < families; f++) {
      out.mu1.set(p.mu1.subarray(f * n, (f + 1) * n), f * F + at);
      out.sd1.set(p.sd1.subarray(f * n, (f + 1) * n), f * F + at);
    }
    at += n;
  }
  return out;
}
