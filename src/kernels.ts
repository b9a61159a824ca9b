// The numeric kernels as the library's public functions: thin, typed forwards to the addon,
// which validates every argument and throws TypeError/RangeError naming the one at fault.
import { native } from './native.js';

export { addonSource } from './native.js';
import type {
  BankSpec,
  BackendName,
  DetectOptions,
  DetectResult,
  DrawOptions,
  NativeBank,
  NativeInfo,
  NativeTapBinding,
  RowsWithinOptions,
  TapShape,
  ScreenOptions,
  ScreenResult,
  SubsetMeansOptions,
} from './native.js';

/** Mean activation of each subset for each row: [rows x count], float64 accumulation. */
export function subsetMeans(options: SubsetMeansOptions): Promise<Float32Array> {
  return native.subsetMeans(options);
}

export function subsetMeansSync(options: SubsetMeansOptions): Float32Array {
  return native.subsetMeansSync(options);
}

/**
 * Statistics of every candidate subset over clean vs attacked activations: means, stds,
 * t statistic, two-sided p-value and Cohen's d. Runs on the worker pool, off the main thread.
 */
export function screen(options: ScreenOptions): Promise<ScreenResult> {
  return native.screen(options);
}

export function screenSync(options: ScreenOptions): ScreenResult {
  return native.screenSync(options);
}

/** Per row, 1 when every value lies in [lo, hi] (compared in double; NaN and +-Infinity never do), else 0. */
export function rowsWithin(options: RowsWithinOptions): Uint8Array {
  return native.rowsWithin(options);
}

/**
 * Fingerprints held in native memory for scoring, validated once when built (every index < neurons,
 * every std > 0): the native kernels of detection. `detectScores` is the fused gather, mean and
 * Gaussian log-likelihood ratio summed over each row's drawn fingerprints (per family and combined);
 * `scoreGradient` is d score / d activations for adaptive attacks. Large calls run on worker threads.
 *
 * Shapes: `acts` [rows x neurons] float32, `draws` [rows x m] uint32 fingerprint ids; scores [rows].
 *
 * @example
 * const bank = new Bank({ neurons: 3048, k: 1, families: 1, indices, mu0, sd0, mu1, sd1 });
 * const { score } = await bank.detectScores({ acts, rows: 32, draws });
 */
export class Bank {
  readonly #native: NativeBank;

  constructor(spec: BankSpec) {
    this.#native = new native.Bank(spec);
  }

  get neurons(): number {
    return this.#native.neurons;
  }
  get k(): number {
    return this.#native.k;
  }
  get count(): number {
    return this.#native.count;
  }
  get families(): number {
    return this.#native.families;
  }

  /** Sum over each row's drawn fingerprints of the Gaussian log-likelihood ratio, attacked vs clean. */
  detectScores(options: DetectOptions): Promise<DetectResult> {
    return this.#native.detectScores(options);
  }

  detectScoresSync(options: DetectOptions): DetectResult {
    return this.#native.detectScoresSync(options);
  }

  /** d score / d activations for each row's drawn fingerprints, [rows x neurons]. */
  scoreGradient(options: DrawOptions): Promise<Float32Array> {
    return this.#native.scoreGradient(options);
  }

  scoreGradientSync(options: DrawOptions): Float32Array {
    return this.#native.scoreGradientSync(options);
  }

  /**
   * This bank bound to a layout of tap buffers, checked and resolved once: `detectScores({ data, rows,
   * draws })` then scores buffers of that layout in place (one Float32Array per tap), equal bit for bit
   * to `detectScores({ taps })` and without its per-call layout work. The binding keeps the bank alive.
   */
  bindTaps(options: { taps: readonly TapShape[] }): NativeTapBinding {
    return this.#native.bindTaps(options);
  }
}

/** Backend, threads and CUDA build/run-time facts of the loaded addon. */
export function info(): NativeInfo {
  return native.info();
}

/** Sets the worker threads used by the CPU kernels (0 restores the default); returns the count. */
export function setThreads(threads: number): number {
  return native.setThreads(threads);
}

/** Chooses the kernel backend; 'cuda' throws when no usable GPU backend is present. */
export function setBackend(name: BackendName): 'cpu' | 'cuda' {
  return native.setBackend(name);
}
