// `npm run bench:kernels`: kernel throughput, every figure a ratio measured in this one run.
//   screen: native (1 thread, all threads) vs the TypeScript reference and vs the reference
//           method in Python (pandas per candidate; also vectorized numpy) when python is present
//   detectScores: us per image at B=32, m=25, k=50, and GB/s of gathered bytes vs a plain copy
// Options (env): NFP_BENCH_C (default 100000), NFP_BENCH_QUICK=1 (small sizes, for a smoke run).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { Bank, info, screen, setThreads } from '../src/index.js';
import { packageRoot } from '../src/paths.js';
import * as reference from '../test/reference/kernels.js';
import { SeededRandom } from '../test/reference/random.js';
import { bestOf, machine, printTable, pythonWith } from './machine.js';

const quick = process.env.NFP_BENCH_QUICK === '1';
const C = Number(process.env.NFP_BENCH_C ?? (quick ? 5000 : 100_000));
const k = 50, n0 = 400, n1 = 400, N = 3048;

function uniformIndices(rng: SeededRandom, n: number, bound: number): Uint32Array {
  const a = new Uint32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(bound);
  return a;
}

async function benchScreen() {
  const rng = new SeededRandom(1);
  const clean = new Float32Array(n0 * N).map(() => rng.normal());
  const attacked = new Float32Array(n1 * N).map(() => rng.normal() + 0.1);
  const candidates = uniformIndices(rng, C * k, N);
  const opts = { clean, cleanRows: n0, attacked, attackedRows: n1, neurons: N, candidates, k };
  const allThreads = info().defaultThreads;
  setThreads(allThreads);
  const tAll = await bestOf(3, () => screen(opts));
  setThreads(1);
  const tOne = await bestOf(2, () => screen(opts));
  setThreads(0);
  const cRef = quick ? 200 : 2000;
  const tRef = await bestOf(1, () =>
    reference.screen(clean, n0, attacked, n1, N, candidates.subarray(0, cRef * k), k));
  const rates: Record<string, number> = {
    [`native, ${allThreads} threads`]: C / tAll,
    'native, 1 thread': C / tOne,
    'TypeScript reference': cRef / tRef,
  };
  const python = pythonWith(['numpy', 'pandas', 'scipy']);
  let pythonNote = 'python3 with numpy/pandas/scipy not found: Python baselines skipped';
  if (python !== undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'nfp-bench-'));
    try {
      writeFileSync(join(dir, 'clean.f32'), clean);
      writeFileSync(join(dir, 'attacked.f32'), attacked);
      writeFileSync(join(dir, 'candidates.u32'), candidates.subarray(0, Math.min(C, 20_000) * k));
      const cPandas = quick ? 100 : 500, cNumpy = Math.min(C, quick ? 2000 : 20_000);
      const out = execFileSync(python, [join(packageRoot, 'bench', 'reference_screen.py'), dir, ...[n0, n1, N, k, cPandas, cNumpy].map(String)], { encoding: 'utf8' });
      const r = JSON.parse(out) as { pandas_candidates_per_s: number; numpy_candidates_per_s: number; versions: Record<string, string> };
      rates['Python reference (pandas + scipy, per candidate)'] = r.pandas_candidates_per_s;
      rates['Python vectorized (numpy + scipy)'] = r.numpy_candidates_per_s;
      pythonNote = `${python}: numpy ${r.versions.numpy}, pandas ${r.versions.pandas}, scipy ${r.versions.scipy}`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return { rates, pythonNote, settings: { C, k, n0, n1, N, threads: allThreads } };
}

async function benchDetect() {
  const B = 32, m = 25, F = 2000, rng = new SeededRandom(2);
  const families = 1;
  const bank = new Bank({
    neurons: N, k, families, indices: uniformIndices(rng, F * k, N),
    mu0: new Float32Array(F), sd0: new Float32Array(F).fill(1), mu1: new Float32Array(F).fill(0.5), sd1: new Float32Array(F).fill(1.2),
  });
  const acts = new Float32Array(B * N).map(() => rng.normal());
  const draws = uniformIndices(rng, B * m, F);
  const inner = quick ? 200 : 2000;
  const tDetect = (await bestOf(5, () => {
    for (let i = 0; i < inner; i++) bank.detectScoresSync({ acts, rows: B, draws });
  })) / inner;
  // The bytes the kernel must read: each gathered activation and its index (float32 + uint32).
  const bytes = B * m * k * 8;
  const src = new Uint8Array(bytes).fill(1), dst = new Uint8Array(bytes);
  const tCopy = (await bestOf(5, () => {
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
  };
}

const m0 = machine();
console.log(`neural-fingerprints kernel benchmark${quick ? ' (quick)' : ''}`);
console.log(`machine: ${m0.cpu}, ${m0.cores} cores, ${m0.memoryGiB} GiB, ${m0.platform}, node ${m0.node}, ${m0.compiler}, backend ${m0.backend}`);
const s = await benchScreen();
const base = s.rates['TypeScript reference']!;
const pandas = s.rates['Python reference (pandas + scipy, per candidate)'];
printTable(`screen: C=${s.settings.C}, k=${k}, n0=${n0}, n1=${n1}, N=${N} (candidates/s)`,
  ['implementation', 'candidates/s', 'vs TS ref', 'vs pandas'],
  Object.entries(s.rates).map(([name, r]) => [name, r.toFixed(0), `${(r / base).toFixed(1)}x`, pandas ? `${(r / pandas).toFixed(1)}x` : '-']));
console.log(`python: ${s.pythonNote}`);
const d = await benchDetect();
printTable(`detectScores: B=${d.settings.B}, m=${d.settings.m}, k=${k}, N=${N}, bank of ${d.settings.F}`,
  ['measure', 'value'],
  [['us per image', d.usPerImage.toFixed(3)], ['us per batch of 32', d.batchUs.toFixed(2)],
   ['gathered GB/s', d.gatheredGBps.toFixed(2)], ['memcpy GB/s (same bytes)', d.copyGBps.toFixed(2)],
   ['ratio to memcpy', `${(d.gatheredGBps / d.copyGBps * 100).toFixed(1)}%`]]);
mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
const file = join(packageRoot, 'bench', 'results', `kernels-${m0.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ schema: 1, machine: m0, screen: s, detectScores: d }, null, 2));
console.log(`\nwrote ${file}`);
