// What every benchmark prints first: the machine and settings its ratios were measured on.
import { execFileSync } from 'node:child_process';
import { arch, cpus, platform, totalmem } from 'node:os';

import { info } from '../src/index.js';

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

export function printTable(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** Best wall time in seconds of `reps` runs of fn, after `warmup` untimed runs (first-run allocations, kernel selection). */
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
