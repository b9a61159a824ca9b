// What every benchmark prints first: the machine and settings its ratios were measured on.
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { info, setBackend } from '../src/index.js';
import type { BackendName } from '../src/index.js';
import { packageRoot } from '../src/paths.js';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  backend: string;
  threads: number;
  compiler: string;
  date: string;
}

export function machine(): Machine {
  const native = info();
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${platform()}-${arch()}`,
    node: process.version,
    backend: native.backend,
    threads: native.threads,
    compiler: native.compiler ?? 'unknown',
    date: new Date().toISOString(),
  };
}

/** Debian's python3 sees numpy/scipy/pandas; the pyenv python3 first on PATH may not. */
export function pythonWith(modules: string[]): string | undefined {
  for (const python of ['/usr/bin/python3', 'python3']) {
    try {
      execFileSync(python, ['-c', `import ${modules.join(', ')}`], { stdio: 'ignore' });
      return python;
    } catch {
      // try the next interpreter
    }
  }
  return undefined;
}

/** Columns before `leftColumns` are text, aligned left; the rest are figures, aligned right. */
export function printTable(title: string, header: string[], rows: string[][], leftColumns = 1): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** Best wall time in seconds of `reps` runs of fn, after `warmup` untimed runs (first-run allocations, kernel
 * selection). */
export async function bestOf(reps: number, fn: () => unknown, warmup = 0): Promise<number> {
  for (let w = 0; w < warmup; w++) await fn();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await fn();
    best = Math.min(best, performance.now() - t0);
  }
  return best / 1000;
}

/** True when the module whose import.meta.url is `moduleUrl` is the script node (tsx) was started with. */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

/** Settings every bench script reads from the environment. */
export interface BenchEnv {
  /** NFP_BENCH_QUICK=1: small sizes and the committed models only, for a smoke run. */
  quick: boolean;
  /** NFP_BENCH_REPS when set; each script has its own default otherwise. */
  reps?: number;
}

export function benchEnv(): BenchEnv {
  const reps = process.env.NFP_BENCH_REPS;
  return {
    quick: process.env.NFP_BENCH_QUICK === '1',
    ...(reps === undefined || reps === '' ? {} : { reps: Number(reps) }),
  };
}

/** Writes `body` to bench/results/<prefix>-<machine date>.json and returns the path. */
export function writeResult(prefix: string, m: Machine, body: unknown): string {
  mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
  const file = join(packageRoot, 'bench', 'results', `${prefix}-${m.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
  return file;
}

/**
 * Runs fn with the kernel backend set to `name`, then puts back the backend that was requested
 * before. Under 'auto' a machine with a usable GPU runs the kernels on CUDA, so rows that claim
 * to measure the CPU must ask for it.
 */
export async function withBackend<T>(name: BackendName, fn: () => Promise<T>): Promise<T> {
  const before = info().backendRequested;
  setBackend(name);
  try {
    return await fn();
  } finally {
    // NFP_BACKEND may have named something setBackend refuses; 'auto' is what the addon fell back to then.
    setBackend(before === 'cpu' || before === 'cuda' ? before : 'auto');
  }
}

/** The sections of `npm run bench`; each script contributes rows for one of them. */
export type Section = 'detect' | 'screen' | 'grad' | 'bandwidth' | 'attacks' | 'scale';

/** A measured rate; every figure in the combined table is "more is better" (per second). */
export interface Figure {
  value: number;
  unit: string;
}

/** One line of the combined table: ours against a baseline measured in the same run. */
export interface Row {
  section: Section;
  case: string;
  ours?: Figure;
  baseline?: Figure;
  /** ours.value / baseline.value; absent when either is. */
  ratio?: number;
}

export function row(section: Section, name: string, ours?: Figure, baseline?: Figure): Row {
  const r: Row = { section, case: name };
  if (ours !== undefined) r.ours = ours;
  if (baseline !== undefined) r.baseline = baseline;
  if (ours !== undefined && baseline !== undefined && baseline.value > 0) r.ratio = ours.value / baseline.value;
  return r;
}

/** Three significant digits or more, with thousands separators: 200,135 / 84.9 / 0.802. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : Math.abs(v) >= 1 ? 2 : 3;
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatFigure(f: Figure | undefined): string {
  return f === undefined ? '-' : `${formatNumber(f.value)} ${f.unit}`;
}

export function formatRatio(r: number | undefined): string {
  if (r === undefined) return '-';
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}x`;
}
