// `npx tsx bench/attacks.ts` (npm run bench:attacks): PGD-20 (L-inf, random start) throughput, ours
// (src/attacks through GradientModel on ONNX Runtime CPU) against the PyTorch reference
// implementation (scripts/torch_attacks.py, CPU autograd, same thread count) in this one run:
//   fmnist-cnn, the committed weights on both sides, batch 128 test images, eps 0.1;
//   torchvision ResNet-18 with random weights, batch 8 of 224x224 noise, eps 0.03 (ours reads
//   models/cache/resnet18-224.onnx: /usr/bin/python3 models/export_torchvision.py --arch resnet18).
// Options (env): NFP_BENCH_REPS (default 3; ResNet-18 takes 2 at most), NFP_BENCH_QUICK=1 (CNN only).
// benchAttacks is also the attacks section of `npm run bench` (bench/all.ts), which runs it only
// when NFP_BENCH_ONLY names it (minutes with ResNet-18).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { PGD } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { loadFashionMnist } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';
import { TestRandom } from '../test/reference/random.js';
import { benchEnv, bestOf, isMain, machine, printTable, pythonWith, row, writeResult } from './machine.js';
import type { Row } from './machine.js';

export const steps = 20;

export interface AttackCase {
  name: string;
  arch: 'fmnist-cnn' | 'resnet18';
  path: string;
  batch: number;
  eps: number;
  reps: number;
}
export interface AttackRow {
  model: string;
  batch: number;
  oursS: number;
  torchS?: number;
}

async function ours(c: AttackCase): Promise<number> {
  const model = await GradientModel.load(c.path, { taps: [], batchSize: c.batch });
  try {
    let data: Float32Array;
    let labels: Int32Array;
    if (c.arch === 'fmnist-cnn') {
      const test = await loadFashionMnist({ split: 'test' });
      data = test.data.slice(0, c.batch * 784);
      labels = test.labels.slice(0, c.batch);
    } else {
      const rnd = new TestRandom(0);
      data = rnd.floats(c.batch * 3 * 224 * 224, 0, 1);
      labels = Int32Array.from({ length: c.batch }, () => rnd.int(model.classes));
    }
    const images = { data, dims: [c.batch, ...model.inputShape] };
    const attack = new PGD({ eps: c.eps, steps });
    return await bestOf(c.reps, () => attack.run(model, images, { labels, seed: 0, batchSize: c.batch }), 1);
  } finally {
    await model.release();
  }
}

function torch(python: string, c: AttackCase): number {
  const out = execFileSync(
    python,
    [
      join(packageRoot, 'scripts', 'torch_attacks.py'),
      'bench',
      '--arch',
      c.arch,
      '--batch',
      String(c.batch),
      '--steps',
      String(steps),
      '--eps',
      String(c.eps),
      '--reps',
      String(c.reps),
    ],
    { encoding: 'utf8' },
  );
  const result = JSON.parse(out.trim().split('\n').pop()!) as { bestSeconds: number; threads: number };
  if (result.threads !== cpus().length) process.stderr.write(`note: PyTorch used ${result.threads} threads\n`);
  return result.bestSeconds;
}

/** The cases measured, and a line for each one left out (a model not exported). */
export function attackCases(quick: boolean, reps = benchEnv().reps ?? 3): { cases: AttackCase[]; skipped: string[] } {
  const cases: AttackCase[] = [
    {
      name: 'fmnist-cnn',
      arch: 'fmnist-cnn',
      path: join(packageRoot, 'models', 'fmnist-cnn.onnx'),
      batch: 128,
      eps: 0.1,
      reps,
    },
  ];
  const skipped: string[] = [];
  const resnet18 = join(packageRoot, 'models', 'cache', 'resnet18-224.onnx');
  if (!quick) {
    if (existsSync(resnet18))
      cases.push({
        name: 'torchvision resnet18 (random), 224x224',
        arch: 'resnet18',
        path: resnet18,
        batch: 8,
        eps: 0.03,
        reps: Math.min(reps, 2),
      });
    else
      skipped.push(
        `skipping ` +
          `ResNet-18: ${resnet18} is missing; make it with\n  /usr/bin/python3 models/export_torchvision.py --arch ` +
          `resnet18`,
      );
  }
  return { cases, skipped };
}

/** PGD-20 on each case, ours and (when python has torch and torchvision) the PyTorch reference's. */
export async function benchAttacks(cases: AttackCase[]): Promise<{ rows: AttackRow[]; torch: boolean }> {
  const python = pythonWith(['torch', 'torchvision']);
  const rows: AttackRow[] = [];
  for (const c of cases) {
    process.stderr.write(`measuring ours on ${c.name} at batch ${c.batch} ...\n`);
    const r: AttackRow = { model: c.name, batch: c.batch, oursS: await ours(c) };
    if (python !== undefined) {
      process.stderr.write(`measuring PyTorch on ${c.name} ...\n`);
      r.torchS = torch(python, c);
    }
    rows.push(r);
  }
  return { rows, torch: python !== undefined };
}

/** The attacks section of `npm run bench`: PGD-20 images/s, ours against the PyTorch reference's. */
export function attackRows(rows: AttackRow[], skipped: string[], torchFound: boolean): Row[] {
  const ips = (r: AttackRow, s: number | undefined) =>
    s === undefined ? undefined : { value: r.batch / s, unit: 'img/s' };
  return [
    ...rows.map((r) =>
      row(
        'attacks',
        `PGD-${steps}, ${r.model}, batch ${r.batch}: ours vs PyTorch reference`,
        ips(r, r.oursS),
        ips(r, r.torchS),
      ),
    ),
    ...(torchFound ? [] : [row('attacks', 'PyTorch: skipped (no python with torch and torchvision)')]),
    ...skipped.map((line) => row('attacks', line.replace(/\n\s*/g, ' '))),
  ];
}

async function main(): Promise<void> {
  const { quick } = benchEnv();
  const { cases, skipped } = attackCases(quick);
  for (const line of skipped) console.error(line);
  const m0 = machine();
  console.log(
    `machine: ${m0.cpu}, ${m0.cores} cores, ${m0.memoryGiB} GiB, ${m0.platform}, node ${m0.node}, onnxruntime-node ${ort.env.versions.common ?? '?'}`,
  );
  console.log(
    `PGD L-inf, ${steps} steps, random start, best of the reps after one warm-up; PyTorch and ONNX Runtime both ` +
      `use ${cpus().length} threads`,
  );
  const { rows, torch: torchFound } = await benchAttacks(cases);
  if (!torchFound) console.log('PyTorch: skipped (no python with torch and torchvision)');

  const ips = (s: number | undefined, batch: number) => (s === undefined ? '-' : (batch / s).toFixed(1));
  printTable(
    `PGD-${steps} images per second`,
    ['model', 'batch', 'ours', 'PyTorch', 'ours / PyTorch'],
    rows.map((r) => [
      r.model,
      String(r.batch),
      ips(r.oursS, r.batch),
      ips(r.torchS, r.batch),
      r.torchS === undefined ? '-' : (r.torchS / r.oursS).toFixed(2),
    ]),
  );

  const file = writeResult('attacks', m0, { machine: m0, steps, rows });
  console.log(`\nwrote ${file}`);
}

if (isMain(import.meta.url)) await main();
