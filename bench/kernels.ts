// `npm run bench:kernels`: kernel throughput, every figure a ratio measured in this one run.
//   screen: native (1 thread, all threads) vs the TypeScript reference and vs the reference
//           method in Python (pandas per candidate; also vectorized numpy) when python is present;
//           CUDA too when the addon has a usable GPU
//   detectScores: us per image at B=32, m=25, k=50, and GB/s of gathered bytes vs a plain copy
// Options (env): NFP_BENCH_C (default 100000), NFP_BENCH_QUICK=1 (small sizes, for a smoke run).
// The functions are also the screen and bandwidth sections of `npm run bench` (bench/all.ts), which
// adds the gathered bandwidth of screen and subsetMeans against a copy (benchBandwidth).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { Bank, info, screen, setThreads, subsetMeans } from '../src/index.js';
import type { ScreenOptions } from '../src/index.js';
import { packageRoot } from '../src/paths.js';
import * as reference from '../test/reference/kernels.js';
import { TestRandom } from '../test/reference/random.js';
import { benchEnv, bestOf, isMain, machine, printTable, pythonWith, row, withBackend, writeResult } from './machine.js';
import type { Row } from './machine.js';

export const k = 50,
  n0 = 400,
  n1 = 400,
  N = 3048;

export interface KernelOptions {
  quick: boolean;
  /** Candidates screened per timed call (NFP_BENCH_C). */
  C: number;
}

export function kernelOptions(quick = benchEnv().quick): KernelOptions {
  return { quick, C: Number(process.env.NFP_BENCH_C ?? (quick ? 5000 : 100_000)) };
}

// The keys of ScreenBench.rates, in the order bench:kernels prints them.
const REF = 'TypeScript reference';
const PANDAS = 'Python reference (pandas + scipy, per candidate)';
const NUMPY = 'Python vectorized (numpy + scipy)';
const ONE = 'native, 1 thread';
const allName = (threads: number) => `native, ${threads} threads`;

export type CudaScreen = { usable: true; device: string; rate: number } | { usable: false; reason: string };

export interface ScreenBench {
  /** candidates/s by implementation. */
  rates: Record<string, number>;
  /** The CUDA backend's candidates/s, or why there is none. */
  cuda: CudaScreen;
  pythonNote: string;
  settings: { C: number; k: number; n0: number; n1: number; N: number; threads: number };
}

function uniformIndices(rng: TestRandom, n: number, bound: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(bound);
  return a;
}

function screenInputs(C: number): ScreenOptions {
  const rng = new TestRandom(1);
  const clean = new Float32Array(n0 * N).map(() => rng.normal());
  const attacked = new Float32Array(n1 * N).map(() => rng.normal() + 0.1);
  const candidates = uniformIndices(rng, C * k, N);
  return { clean, cleanRows: n0, attacked, attackedRows: n1, neurons: N, candidates, k };
}

async function screenCuda(opts: ScreenOptions, C: number): Promise<CudaScreen> {
  const cuda = info().cuda;
  if (!cuda.usable) return { usable: false, reason: cuda.reason };
  // One untimed run: the first call creates the CUDA context and the device buffers.
  const t = await withBackend('cuda', () => bestOf(3, () => screen(opts), 1));
  return { usable: true, device: cuda.deviceName, rate: C / t };
}

export async function benchScreen({ quick, C }: KernelOptions): Promise<ScreenBench> {
  const opts = screenInputs(C);
  const { clean, attacked, candidates } = opts;
  const allThreads = info().defaultThreads;
  const rates: Record<string, number> = {};
  await withBackend('cpu', async () => {
    try {
      setThreads(allThreads);
      rates[allName(allThreads)] = C / (await bestOf(3, () => screen(opts)));
      setThreads(1);
      rates[ONE] = C / (await bestOf(2, () => screen(opts)));
    } finally {
      setThreads(0);
    }
  });
  const cRef = quick ? 200 : 2000;
  const tRef = await bestOf(1, () => reference.screen(clean, n0, attacked, n1, N, candidates.subarray(0, cRef * k), k));
  rates[REF] = cRef / tRef;
  const python = pythonWith(['numpy', 'pandas', 'scipy']);
  let pythonNote = 'python3 with numpy/pandas/scipy not found: Python baselines skipped';
  if (python !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'nfp-bench-'));
    try {
      writeFileSync(join(dir, 'clean.f32'), clean);
      writeFileSync(join(dir, 'attacked.f32'), attacked);
      writeFileSync(join(dir, 'candidates.u32'), candidates.subarray(0, Math.min(C, 20_000) * k));
      const cPandas = quick ? 100 : 500,
        cNumpy = Math.min(C, quick ? 2000 : 20_000);
      const out = execFileSync(
        python,
        [join(packageRoot, 'bench', 'reference_screen.py'), dir, ...[n0, n1, N, k, cPandas, cNumpy].map(String)],
        { encoding: 'utf8' },
      );
      const r = JSON.parse(out) as {
        pandas_candidates_per_s: number;
        numpy_candidates_per_s: number;
        versions: Record<string, string>;
      };
      rates[PANDAS] = r.pandas_candidates_per_s;
      rates[NUMPY] = r.numpy_candidates_per_s;
      pythonNote = `${python}: numpy ${r.versions.numpy}, pandas ${r.versions.pandas}, scipy ${r.versions.scipy}`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const cuda = await screenCuda(opts, C);
  return { rates, cuda, pythonNote, settings: { C, k, n0, n1, N, threads: allThreads } };
}

/** The screen section of `npm run bench`: each implementation against the reference method. */
export function screenRows(s: ScreenBench): Row[] {
  const rate = (name: string) => {
    const v = s.rates[name];
    return v === undefined ? undefined : { value: v, unit: 'cand/s' };
  };
  const all = allName(s.settings.threads);
  // The authors' way (pandas per candidate) is the baseline when Python can run it; else ours in TypeScript.
  const base = rate(PANDAS) !== undefined ? PANDAS : REF;
  const baseName = base === PANDAS ? 'Python reference (pandas)' : 'TypeScript reference';
  const rows: Row[] = [];
  if (base === PANDAS) rows.push(row('screen', `TypeScript reference vs ${baseName}`, rate(REF), rate(base)));
  rows.push(row('screen', `native, 1 thread vs ${baseName}`, rate(ONE), rate(base)));
  rows.push(row('screen', `native, ${s.settings.threads} threads vs ${baseName}`, rate(all), rate(base)));
  if (rate(NUMPY) !== undefined)
    rows.push(
      row('screen', `native, ${s.settings.threads} threads vs Python vectorized (numpy)`, rate(all), rate(NUMPY)),
    );
  else rows.push(row('screen', `Python: skipped (${s.pythonNote})`));
  rows.push(row('screen', `native, ${s.settings.threads} threads vs native, 1 thread`, rate(all), rate(ONE)));
  if (s.cuda.usable) {
    rows.push(
      row(
        'screen',
        `CUDA (${s.cuda.device}) vs native, ${s.settings.threads} threads`,
        { value: s.cuda.rate, unit: 'cand/s' },
        rate(all),
      ),
    );
  } else {
    rows.push(row('screen', `CUDA: not available (${s.cuda.reason})`));
  }
  return rows;
}

/** A kernel's gathered bytes per call and a plain copy's, timed in the same run. */
export interface Bandwidth {
  kernel: string;
  threads: number;
  /** Bytes the kernel reads per call, counted as stated in `counts`. */
  gatheredBytes: number;
  kernelS: number;
  /** Bytes of the Float32Array copied by Float32Array.prototype.set, and the seconds one copy takes. */
  copyBytes: number;
  copyS: number;
  counts: string;
}

export interface DetectScoresBench {
  usPerImage: number;
  batchUs: number;
  gatheredGBps: number;
  copyGBps: number;
  settings: { B: number; m: number; k: number; N: number; F: number; families: number };
  bandwidth: Bandwidth;
}

/** Seconds per Float32Array copy of `bytes`: best of 5, each timing at least ~20 ms of copies. */
async function copySeconds(bytes: number): Promise<number> {
  const n = Math.max(1, Math.round(bytes / 4));
  const src = new Float32Array(n).fill(1),
    dst = new Float32Array(n);
  const t0 = performance.now();
  dst.set(src);
  const inner = Math.max(1, Math.ceil(20 / Math.max(performance.now() - t0, 1e-3)));
  return (
    (await bestOf(5, () => {
      for (let i = 0; i < inner; i++) {
        dst.set(src);
        src[i % n] += 1; // a different source each time, so nothing can be skipped
      }
    })) / inner
  );
}

export async function benchDetectScores({ quick }: KernelOptions): Promise<DetectScoresBench> {
  const B = 32,
    m = 25,
    F = 2000,
    rng = new TestRandom(2);
  const families = 1;
  const bank = new Bank({
    neurons: N,
    k,
    families,
    indices: uniformIndices(rng, F * k, N),
    mu0: new Float32Array(F),
    sd0: new Float32Array(F).fill(1),
    mu1: new Float32Array(F).fill(0.5),
    sd1: new Float32Array(F).fill(1.2),
  });
  const acts = new Float32Array(B * N).map(() => rng.normal());
  const draws = uniformIndices(rng, B * m, F);
  const inner = quick ? 200 : 2000;
  // The CPU kernel: at B=32 its work is below one pool chunk, so it runs on the calling thread.
  const tDetect = await withBackend(
    'cpu',
    async () =>
      (await bestOf(5, () => {
        for (let i = 0; i < inner; i++) bank.detectScoresSync({ acts, rows: B, draws });
      })) / inner,
  );
  // The bytes the kernel must read: each gathered activation and its index (float32 + uint32).
  const bytes = B * m * k * 8;
  const src = new Uint8Array(bytes).fill(1),
    dst = new Uint8Array(bytes);
  const tCopy =
    (await bestOf(5, () => {
      for (let i = 0; i < inner; i++) {
        dst.set(src);
        src[i % bytes] ^= 1;
      }
    })) / inner;
  return {
    usPerImage: (tDetect * 1e6) / B,
    batchUs: tDetect * 1e6,
    gatheredGBps: (2 * bytes) / tDetect / 1e9, // read + (notional) write, as a copy counts
    copyGBps: (2 * bytes) / tCopy / 1e9,
    settings: { B, m, k, N, F, families },
    bandwidth: {
      kernel: `detectScores B=${B}, m=${m}, k=${k}`,
      threads: 1,
      gatheredBytes: bytes,
      kernelS: tDetect,
      copyBytes: bytes,
      copyS: tCopy,
      counts: 'float32 + uint32 index per gathered activation; copy of as many bytes',
    },
  };
}

/**
 * Gathered bytes per second of subsetMeans and screen, 1 thread and all threads, against a
 * single-threaded copy of the activations they gather from (the data a streaming kernel would
 * have to read once). Gathers hit cache far more than a copy does, so above 1x is possible.
 */
export async function benchBandwidth({ quick, C }: KernelOptions): Promise<Bandwidth[]> {
  const allThreads = info().defaultThreads;
  const threadCounts = allThreads > 1 ? [1, allThreads] : [1];
  const out: Bandwidth[] = [];
  const rng = new TestRandom(3);
  // subsetMeans: rows x F subsets; each (row, subset) reads k indices and k activations.
  const rows = n0,
    F = quick ? 500 : 2000;
  const acts = new Float32Array(rows * N).map(() => rng.normal());
  const subsets = uniformIndices(rng, F * k, N);
  // screen, at the screen section's C (much smaller calls would mostly time its one-off transposed
  // copy of the inputs): each candidate adds k runs of activations per image and reads its indices
  // once per tile of images, so only the activations count.
  const opts = screenInputs(C);
  const screenBytes = opts.clean.byteLength + opts.attacked.byteLength;
  // The copies are timed before and after the kernels, best of both, so that drift in a shared
  // machine's speed does not favour either side.
  let meansCopyS = await copySeconds(acts.byteLength);
  let screenCopyS = await copySeconds(screenBytes);
  await withBackend('cpu', async () => {
    try {
      for (const threads of threadCounts) {
        setThreads(threads);
        const tMeans = await bestOf(3, () => subsetMeans({ acts, rows, neurons: N, subsets, k }), 1);
        out.push({
          kernel: `subsetMeans ${rows} x ${F} subsets, k=${k}`,
          threads,
          gatheredBytes: rows * F * k * 8,
          kernelS: tMeans,
          copyBytes: acts.byteLength,
          copyS: meansCopyS,
          counts: 'float32 + uint32 index per gathered activation; copy of the activations',
        });
        const tScreen = await bestOf(3, () => screen(opts), 1);
        out.push({
          kernel: `screen C=${C}, k=${k}`,
          threads,
          gatheredBytes: C * (n0 + n1) * k * 4,
          kernelS: tScreen,
          copyBytes: screenBytes,
          copyS: screenCopyS,
          counts: 'float32 per gathered activation; copy of clean + attacked',
        });
      }
    } finally {
      setThreads(0);
    }
  });
  meansCopyS = Math.min(meansCopyS, await copySeconds(acts.byteLength));
  screenCopyS = Math.min(screenCopyS, await copySeconds(screenBytes));
  return out.map((b) => ({ ...b, copyS: b.copyBytes === screenBytes ? screenCopyS : meansCopyS }));
}

const MB = (bytes: number) => `${(bytes / 1e6).toPrecision(2)} MB`;

/** The bandwidth section of `npm run bench`: GB/s gathered vs GB/s copied, bytes / seconds each. */
export function bandwidthRows(list: Bandwidth[]): Row[] {
  return list.map((b) =>
    row(
      'bandwidth',
      `${b.kernel}, ${b.threads} thread${b.threads === 1 ? '' : 's'}: gathered vs copy of ${MB(b.copyBytes)}`,
      { value: b.gatheredBytes / b.kernelS / 1e9, unit: 'GB/s' },
      { value: b.copyBytes / b.copyS / 1e9, unit: 'GB/s' },
    ),
  );
}

async function main(): Promise<void> {
  const opts = kernelOptions();
  const { quick } = opts;
  const m0 = machine();
  console.log(`neural-fingerprints kernel benchmark${quick ? ' (quick)' : ''}`);
  console.log(
    `machine: ${m0.cpu}, ${m0.cores} cores, ${m0.memoryGiB} GiB, ${m0.platform}, node ${m0.node}, ${m0.compiler}, backend ${m0.backend}`,
  );
  const s = await benchScreen(opts);
  const base = s.rates[REF]!;
  const pandas = s.rates[PANDAS];
  const rates = { ...s.rates };
  if (s.cuda.usable) rates[`CUDA (${s.cuda.device})`] = s.cuda.rate;
  printTable(
    `screen: C=${s.settings.C}, k=${k}, n0=${n0}, n1=${n1}, N=${N} (candidates/s)`,
    ['implementation', 'candidates/s', 'vs TS ref', 'vs pandas'],
    Object.entries(rates).map(([name, r]) => [
      name,
      r.toFixed(0),
      `${(r / base).toFixed(1)}x`,
      pandas ? `${(r / pandas).toFixed(1)}x` : '-',
    ]),
  );
  console.log(`python: ${s.pythonNote}`);
  const d = await benchDetectScores(opts);
  printTable(
    `detectScores: B=${d.settings.B}, m=${d.settings.m}, k=${k}, N=${N}, bank of ${d.settings.F}`,
    ['measure', 'value'],
    [
      ['us per image', d.usPerImage.toFixed(3)],
      ['us per batch of 32', d.batchUs.toFixed(2)],
      ['gathered GB/s', d.gatheredGBps.toFixed(2)],
      ['memcpy GB/s (same bytes)', d.copyGBps.toFixed(2)],
      ['ratio to memcpy', `${((d.gatheredGBps / d.copyGBps) * 100).toFixed(1)}%`],
    ],
  );
  const file = writeResult('kernels', m0, { schema: 1, machine: m0, screen: s, detectScores: d });
  console.log(`\nwrote ${file}`);
}

if (isMain(import.meta.url)) await main();
