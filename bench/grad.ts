// `npx tsx bench/grad.ts` (npm run bench:grad): the cost of an input gradient through the ONNX
// reverse-mode transform (GradientModel: forward + backward in one ONNX Runtime run) against a
// bare ONNX Runtime forward of the same model, in this one run; and PyTorch CPU autograd of the
// same ResNet-50 when /usr/bin/python3 has torch and torchvision.
//   models: torchvision ResNet-50 (random weights) at batch 8, 224x224, from models/cache/
//           (make it with /usr/bin/python3 models/export_torchvision.py --arch resnet50), and the
//           committed fmnist-cnn / fmnist-resnet / fmnist-vit at batch 32.
// Options (env): NFP_BENCH_REPS (default 3), NFP_BENCH_QUICK=1 (committed models only, 2 reps).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import * as ort from 'onnxruntime-node';

import { GradientModel } from '../src/autodiff/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../test/reference/random.js';
import { bestOf, machine, printTable, pythonWith } from './machine.js';

const quick = process.env.NFP_BENCH_QUICK === '1';
const reps = Number(process.env.NFP_BENCH_REPS ?? (quick ? 2 : 3));

interface Case { name: string; path: string; batch: number; shape: number[] }

interface Row { model: string; batch: number; forwardS: number; gradientS: number; ratio: number; torchForwardS?: number; torchGradientS?: number }

async function measure(c: Case): Promise<Row> {
  const rnd = new SeededRandom(1);
  const perImage = c.shape.reduce((a, v) => a * v, 1);
  const images = { data: rnd.floats(c.batch * perImage, 0, 1), dims: [c.batch, ...c.shape] };
  const bytes = new Uint8Array(await readFile(c.path));
  // The bare forward: the model's own bytes, the same session options GradientModel uses.
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', images.data, images.dims) };
  const forwardS = await bestOf(reps, () => session.run(feeds), 1);
  await session.release();
  const model = await GradientModel.load(bytes, { taps: [], batchSize: c.batch });
  const logitSeed = rnd.floats(c.batch * model.classes, -1, 1);
  const gradientS = await bestOf(reps, () => model.gradient(images, { logitSeed }), 1);
  await model.release();
  return { model: c.name, batch: c.batch, forwardS, gradientS, ratio: gradientS / forwardS };
}

const resnet50 = join(packageRoot, 'models', 'cache', 'resnet50-224.onnx');
const cases: Case[] = [];
if (!quick) {
  if (existsSync(resnet50)) cases.push({ name: 'torchvision resnet50 (random)', path: resnet50, batch: 8, shape: [3, 224, 224] });
  else console.error(`skipping ResNet-50: ${resnet50} is missing; make it with\n  /usr/bin/python3 models/export_torchvision.py --arch resnet50`);
}
for (const name of ['fmnist-cnn', 'fmnist-resnet', 'fmnist-vit']) {
  const path = join(packageRoot, 'models', `${name}.onnx`);
  if (existsSync(path)) cases.push({ name, path, batch: 32, shape: [1, 28, 28] });
}

const m0 = machine();
console.log(`machine: ${m0.cpu}, ${m0.cores} cores, ${m0.memoryGiB} GiB, ${m0.platform}, node ${m0.node}, onnxruntime-node ${ort.env.versions.common ?? '?'}`);
const rows: Row[] = [];
for (const c of cases) {
  process.stderr.write(`measuring ${c.name} at batch ${c.batch} ...\n`);
  rows.push(await measure(c));
}

let torch: Record<string, unknown> | undefined;
const python = !quick && existsSync(resnet50) ? pythonWith(['torch', 'torchvision']) : undefined;
if (python !== undefined) {
  process.stderr.write(`measuring PyTorch autograd of resnet50 at batch 8 (${cpus().length} threads, as ONNX Runtime) ...\n`);
  const out = execFileSync(python, [join(packageRoot, 'bench', 'torch_grad.py'), '--arch', 'resnet50', '--batch', '8', '--size', '224', '--reps', String(reps), '--threads', String(cpus().length)], { encoding: 'utf8' });
  torch = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
  const row = rows.find((r) => r.model.startsWith('torchvision resnet50'));
  if (row) {
    row.torchForwardS = torch.forward_s as number;
    row.torchGradientS = torch.gradient_s as number;
  }
} else if (!quick) {
  console.log('PyTorch: skipped (no python with torch and torchvision, or no ResNet-50 export)');
}

const f = (s: number | undefined) => (s === undefined ? '-' : (s * 1000).toFixed(1));
printTable('input gradient (forward + backward, one ONNX Runtime run) vs bare forward; best of ' + reps + ', ms per batch',
  ['model', 'batch', 'ORT forward', 'ORT gradient', 'grad/fwd', 'torch forward', 'torch gradient', 'torch grad/fwd', 'ORT grad / torch grad'],
  rows.map((r) => [r.model, String(r.batch), f(r.forwardS), f(r.gradientS), r.ratio.toFixed(2),
    f(r.torchForwardS), f(r.torchGradientS),
    r.torchGradientS && r.torchForwardS ? (r.torchGradientS / r.torchForwardS).toFixed(2) : '-',
    r.torchGradientS ? (r.gradientS / r.torchGradientS).toFixed(2) : '-']));
if (torch) console.log(`PyTorch ${String(torch.torch)}, ${String(torch.threads)} threads`);

mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
const file = join(packageRoot, 'bench', 'results', `grad-${m0.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ machine: m0, reps, rows, torch }, null, 2)}\n`);
console.log(`\nwrote ${file}`);
