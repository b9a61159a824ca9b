// The typed loader of the native addon: the only module that touches nfp.node. It declares the
// addon's surface as TypeScript types; everything else imports from here.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { packageRoot } from './paths.js';

/** How per-family log-likelihood ratio sums combine into one score. */
export type Combine = 'max' | 'logsumexp';
export type TTest = 'welch' | 'student';
export type BackendName = 'auto' | 'cpu' | 'cuda';

export interface SubsetMeansOptions {
  /** Activations, row-major [rows x neurons]. */
  acts: Float32Array;
  rows: number;
  neurons: number;
  /** Neuron indices, row-major [count x k], each < neurons. */
  subsets: Uint32Array;
  k: number;
}

export interface ScreenOptions {
  /** Clean activations, row-major [cleanRows x neurons]. */
  clean: Float32Array;
  cleanRows: number;
  /** Attacked activations, row-major [attackedRows x neurons]. */
  attacked: Float32Array;
  attackedRows: number;
  neurons: number;
  /** Candidate subsets, row-major [count x k]. */
  candidates: Uint32Array;
  k: number;
  /** Welch's unequal-variance t-test (default) or Student's pooled one. */
  test?: TTest;
}

/** Per-candidate statistics of the subset mean; d is Cohen's d (attacked minus clean, pooled sd). */
export interface ScreenResult {
  mu0: Float64Array;
  sd0: Float64Array;
  mu1: Float64Array;
  sd1: Float64Array;
  t: Float64Array;
  p: Float64Array;
  d: Float64Array;
}

export interface BankSpec {
  neurons: number;
  k: number;
  /** Fingerprint subsets, row-major [count x k]. */
  indices: Uint32Array;
  /** Clean mean and std of each fingerprint's subset mean, [count]. */
  mu0: Float32Array;
  sd0: Float32Array;
  /** Attacked mean and std per attack family, family-major [families x count]. */
  mu1: Float32Array;
  sd1: Float32Array;
  families: number;
}

export interface DrawOptions {
  /** Activations, row-major [rows x bank.neurons]. */
  acts: Float32Array;
  rows: number;
  /** Fingerprint ids drawn for each row, row-major [rows x perRow], each < bank.count. */
  draws: Uint32Array;
  combine?: Combine;
}

/**
 * One tapped layer's output as ONNX Runtime returned it, read in place: `data` holds whole images of
 * `width` values (at least `rows` of them; a run padded to a fixed batch may hold more). The layer
 * contributes `columns.length` neurons, column columns[j] of each image (a sampled layer), or all
 * `width` of them.
 */
export interface TapBuffer {
  data: Float32Array;
  width: number;
  columns?: Uint32Array;
}

/** DrawOptions with the activations as tap buffers in place of one matrix (detectScores only). */
export interface TapDrawOptions extends Omit<DrawOptions, 'acts'> {
  /** In tap order; their neurons add up to bank.neurons, tap t's after those of taps 0..t-1. */
  taps: TapBuffer[];
  acts?: undefined;
}

export type DetectOptions = (DrawOptions | TapDrawOptions) & {
  /** Also return each drawn fingerprint's subset mean, [rows x perRow]. */
  means?: boolean;
  /** Also return each log-likelihood ratio term, [rows x perRow x families]. */
  terms?: boolean;
};

export interface DetectResult {
  score: Float32Array;
  familyScores: Float32Array;
  means?: Float32Array;
  terms?: Float32Array;
}

/** A tap buffer's shape without its data: what Bank.bindTaps binds a bank to. */
export interface TapShape {
  width: number;
  columns?: Uint32Array;
}

/** detectScores through a TapBinding: one buffer per tap of the binding, in its order. */
export interface BoundDetectOptions {
  data: Float32Array[];
  rows: number;
  draws: Uint32Array;
  combine?: Combine;
  means?: boolean;
  terms?: boolean;
}

/**
 * A bank bound once to a layout of tap buffers (Bank.bindTaps): scores buffers of that layout in
 * place, each fingerprint's neurons already resolved to (tap, column), with no per-call layout work.
 */
export interface NativeTapBinding {
  detectScores(options: BoundDetectOptions): Promise<DetectResult>;
  detectScoresSync(options: BoundDetectOptions): DetectResult;
}

export interface NativeBank {
  readonly neurons: number;
  readonly k: number;
  readonly count: number;
  readonly families: number;
  detectScores(options: DetectOptions): Promise<DetectResult>;
  detectScoresSync(options: DetectOptions): DetectResult;
  scoreGradient(options: DrawOptions): Promise<Float32Array>;
  scoreGradientSync(options: DrawOptions): Float32Array;
  /** Binds the bank to a layout of tap buffers (validated and copied once); see NativeTapBinding. */
  bindTaps(options: { taps: readonly TapShape[] }): NativeTapBinding;
}

export interface RowsWithinOptions {
  /** [rows x per row] values. */
  data: Float32Array;
  rows: number;
  /** Bounds, compared in double; NaN and +-Infinity values are outside any. */
  lo: number;
  hi: number;
}

export interface NativeInfo {
  backend: 'cpu' | 'cuda';
  backendRequested: string;
  backendMessage: string;
  threads: number;
  defaultThreads: number;
  cuda: {
    compiled: boolean;
    devices: number;
    deviceName: string;
    runtime: string;
    kernels: boolean;
    usable: boolean;
    reason: string;
  };
  napiVersion: number;
  compiler?: string;
}

interface NativeAddon {
  subsetMeans(options: SubsetMeansOptions): Promise<Float32Array>;
  subsetMeansSync(options: SubsetMeansOptions): Float32Array;
  screen(options: ScreenOptions): Promise<ScreenResult>;
  screenSync(options: ScreenOptions): ScreenResult;
  rowsWithin(options: RowsWithinOptions): Uint8Array;
  Bank: new (spec: BankSpec) => NativeBank;
  info(): NativeInfo;
  setThreads(threads: number): number;
  setBackend(name: BackendName): 'cpu' | 'cuda';
}

/** Where the addon came from: a local build (a clone, or a build from source), or the prebuilt binary. */
export interface AddonSource {
  path: string;
  prebuilt: boolean;
}

/** The prebuilds/ folder name for this machine: linux-x64-glibc, linux-x64-musl, darwin-arm64, ... */
function platformTag(): string {
  if (process.platform !== 'linux') return `${process.platform}-${process.arch}`;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return `linux-${process.arch}-${header?.glibcVersionRuntime ? 'glibc' : 'musl'}`;
}

/** Why the prebuilt binary in `dir` cannot load here (its manifest's glibc is newer than ours), or undefined. */
function prebuildMismatch(dir: string): string | undefined {
  let needs: string | undefined;
  try {
    needs = (JSON.parse(readFileSync(join(dir, 'nfp.json'), 'utf8')) as { glibc?: string }).glibc;
  } catch {
    return undefined;
  }
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  const have = header?.glibcVersionRuntime;
  if (needs === undefined || have === undefined) return undefined;
  const [a, b] = [needs, have].map((v) => v.split('.').map(Number)) as [number[], number[]];
  const older = b[0]! < a[0]! || (b[0] === a[0] && b[1]! < a[1]!);
  return older ? `the prebuilt addon needs glibc >= ${needs} and this machine has ${have}` : undefined;
}

function loadAddon(): { addon: NativeAddon; source: AddonSource } {
  const tag = platformTag();
  const prebuildDir = join(packageRoot, 'prebuilds', tag);
  const local = [
    join(packageRoot, 'build', 'addon', 'Release', 'nfp.node'),
    join(packageRoot, 'build', 'addon', 'Debug', 'nfp.node'),
  ];
  const explicit = process.env.NFP_ADDON_PATH;
  const prebuilt = join(prebuildDir, 'nfp.node');
  let path: string | undefined;
  let why = '';
  if (explicit !== undefined && explicit !== '') {
    if (!existsSync(explicit))
      throw new Error(`neural-fingerprints: NFP_ADDON_PATH names ${explicit}, which does not exist`);
    path = explicit;
  } else {
    path = local.find((p) => existsSync(p));
    if (path === undefined && existsSync(prebuilt)) {
      const mismatch = prebuildMismatch(prebuildDir);
      if (mismatch === undefined) path = prebuilt;
      else why = `${mismatch}. `;
    } else if (path === undefined) {
      const shipped = 'linux-x64-glibc';
      why = tag === shipped ? '' : `The package ships a prebuilt addon for ${shipped} only; this machine is ${tag}. `;
    }
  }
  if (path === undefined) {
    throw new Error(
      `neural-fingerprints: native addon not found (looked in ${[...local, prebuilt].join(', ')}). ${why}` +
        'Build it from source, which needs CMake >= 3.18 and a C++17 compiler: in a project that depends on ' +
        'neural-fingerprints, `npm explore neural-fingerprints -- npm run build:addon`; in a clone of its ' +
        'repository, `npm install` (or `npm run build:addon`). Or set NFP_ADDON_PATH to a built nfp.node.',
    );
  }
  const require = createRequire(import.meta.url);
  const addon = require(path) as NativeAddon;
  const info = addon.info();
  if (info.backendMessage.startsWith('NFP_BACKEND=')) {
    process.emitWarning(info.backendMessage, { code: 'NFP_BACKEND_FALLBACK' });
  }
  return { addon, source: { path, prebuilt: path === prebuilt } };
}

const loaded = loadAddon();
export const native: NativeAddon = loaded.addon;
/** The nfp.node this process loaded, and whether it is the prebuilt one. */
export const addonSource: AddonSource = loaded.source;
