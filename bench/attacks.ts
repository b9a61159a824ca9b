// `npx tsx bench/attacks.ts` (npm run bench:attacks): PGD-20 (L-inf, random start) throughput, ours
// (src/attacks through GradientModel on ONNX Runtime CPU) against the PyTorch reference
// implementation (scripts/torch_attacks.py, CPU autograd, same thread count) in this one run:
//   fmnist-cnn, the committed weights on both sides, batch 128 test images, eps 0.1;
//   torchvision ResNet-18 with random weights, batch 8 of 224x224 noise, eps 0.03 (ours reads
//   models/cache/resnet18-224.onnx: /usr/bin/python3 models/export_torchvision.py --arch resnet18).
// Options (env): NFP_BENCH_REPS (default 3; ResNet-18 takes 2 at most), NFP_BENCH_QUICK=1 (CNN only).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { PGD } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { loadFashionMnist } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../test/reference/random.js';
import { bestOf, machine, printTable, pythonWith } from './machine.js';

const quick = process.env.NFP_BENCH_QUICK === '1';
const reps = Number(process.env.NFP_BENCH_REPS ?? 3);
const steps = 20;

interface Case { name: string; arch: 'fmnist-cnn' | 'resnet18'; path: string; batch: number; eps: number; reps: number }
interface Row { model: string; batch: number; oursS: number; torchS?: number }

async function ours(c: Case): Promise<number> {
  const model = await GradientModel.load(c.path, { taps: [], batchSize: c.batch });
  try {
    let data: Float32Array;
    let labels: Int32Array;
    if (c.arch === 'fmnist-cnn') {
      const test = await loadFashionMnist({ split: 'test' });
      data = test.data.slice(0, c.batch * 784);
      labels = test.labels.slice(0, c.batch);
    } else {
      const rnd = new SeededRandom(0);
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

function torch(python: string, c: Case): number {
  const out = execFileSync(python, [join(packageRoot, 'scripts', 'torch_attacks.py'), 'bench', '--arch', c.arch, '--batch', String(c.batch),
    '--steps', String(steps), '--eps', String(c.eps), '--reps', String(c.reps)], { encoding: 'utf8' });
  const result = JSON.parse(out.trim().split('\n').pop()!) as { bestSeconds: number; threads: number };
  if (result.threads !== cpus().length) process.stderr.write(`note: PyTorch used ${result.threads} threads\n`);
  return result.bestSeconds;
}

const cases: Case[] = [{ name: 'fmnist-cnn', arch: 'fmnist-cnn', path: join(packageRoot, 'models', 'fmnist-cnn.onnx'), batch: 128, eps: 0.1, reps }];
const resnet18 = join(packageRoot, 'models', 'cache', 'resnet18-224.onnx');
if (!quick) {
  if (existsSync(resnet18)) cases.push({ name: 'torchvision resnet18 (random), 224x224', arch: 'resnet18', path: resnet18, batch: 8, eps: 0.03, reps: Math.min(reps, 2) });
  else console.error(`skipping ResNet-18: ${resnet18} is missing; make it with\n  /usr/bin/python3 models/export_torchvision.py --arch resnet18`);
}

const m0 = machine();
console.log(`machine: ${m0.cpu}, ${m0.cores} cores, ${m0.memoryGiB} GiB, ${m0.platform}, node ${m0.node}, onnxruntime-node ${ort.env.versions.common ?? '?'}`);
console.log(`PGD L-inf, ${steps} steps, random start, best of the reps after one warm-up; PyTorch and ONNX Runtime both use ${cpus().length} threads`);
const python = pythonWith(['torch', 'torchvision']);
const rows: Row[] = [];
for (const c of cases) {
  process.stderr.write(`measuring ours on ${c.name} at batch ${c.batch} ...\n`);
  const row: Row = { model: c.name, batch: c.batch, oursS: await ours(c) };
  if (python !== undefined) {
    process.stderr.write(`measuring PyTorch on ${c.name} ...\n`);
    row.torchS = torch(python, c);
  }
  rows.push(row);
}
if (python === undefined) console.log('PyTorch: skipped (no python with torch and torchvision)');

const ips = (s: number | undefined, batch: number) => (s === undefined ? '-' : (batch / s).toFixed(1));
printTable(`PGD-${steps} images per second`, ['model', 'batch', 'ours', 'PyTorch', 'ours / PyTorch'],
  rows.map((r) => [r.model, String(r.batch), ips(r.oursS, r.batch), ips(r.torchS, r.batch), r.torchS === undefined ? '-' : (r.torchS / r.oursS).toFixed(2)]));

mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
const file = join(packageRoot, 'bench', 'results', `attacks-${m0.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ machine: m0, steps, rows }, null, 2)}\n`);
console.log(`\nwrote ${file}`);
