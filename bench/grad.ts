// `npx tsx bench/grad.ts` (npm run bench:grad): the cost of an input gradient through the ONNX
// reverse-mode transform (GradientModel: forward + backward in one ONNX Runtime run) against a
// bare ONNX Runtime forward of the same model, in this one run; and PyTorch CPU autograd of the
// same ResNet-50 when /usr/bin/python3 has torch and torchvision.
//   models: torchvision ResNet-50, MobileNetV2 and ViT-B/16 (random weights) at batch 8, 224x224,
//           from models/cache/ (make them with /usr/bin/python3 models/export_torchvision.py
//           --arch resnet50 mobilenet_v2 vit_b_16; a missing one is skipped), and the
//           committed fmnist-cnn / fmnist-resnet / fmnist-vit at batch 32.
// Options (env): NFP_BENCH_REPS (default 3), NFP_BENCH_QUICK=1 (committed models only, 2 reps).
// benchGrad and benchTorchGrad are also the grad section of `npm run bench` (bench/all.ts).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { GradientModel } from '../src/autodiff/index.js';
import { packageRoot } from '../src/paths.js';
import { TestRandom } from '../test/reference/random.js';
import { benchEnv, bestOf, isMain, machine, printTable, pythonWith, row, writeResult } from './machine.js';
import type { Row } from './machine.js';

/** `torch`: the torchvision architecture the ONNX file was exported from, for PyTorch's figures. */
export interface GradCase {
  name: string;
  path: string;
  batch: number;
  shape: number[];
  torch?: { arch: string; size: number };
}

export interface GradRow {
  model: string;
  batch: number;
  forwardS: number;
  gradientS: number;
  ratio: number;
  torchForwardS?: number;
  torchGradientS?: number;
}

export interface GradOptions {
  cases: GradCase[];
  reps: number;
}

/** What bench/torch_grad.py prints: best-of-reps seconds of forward and of forward + input gradient. */
export interface TorchGrad {
  torch: string;
  threads: number;
  arch: string;
  batch: number;
  size: number;
  forward_s: number;
  gradient_s: number;
}

export async function measure(c: GradCase, reps: number): Promise<GradRow> {
  const rnd = new TestRandom(1);
  const perImage = c.shape.reduce((a, v) => a * v, 1);
  const images = { data: rnd.floats(c.batch * perImage, 0, 1), dims: [c.batch, ...c.shape] };
  const bytes = new Uint8Array(await readFile(c.path));
  // The bare forward: the model's own bytes, the same session options GradientModel uses.
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
  });
  const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', images.data, images.dims) };
  const model = await GradientModel.load(bytes, { taps: [], batchSize: c.batch });
  const logitSeed = rnd.floats(c.batch * model.classes, -1, 1);
  // Forward and gradient alternate, so that a slow spell of a shared machine (minutes long here,
  // +-10%) falls on both and the ratio stays fair. Each timed run follows an untimed one of its
  // own kind: right after the other kind, a small model's weights and buffers are out of cache
  // (MobileNetV2's forward takes 58 ms so against 36 ms warm).
  let forwardS = Infinity,
    gradientS = Infinity;
  for (let r = 0; r < reps; r++) {
    forwardS = Math.min(forwardS, await bestOf(1, () => session.run(feeds), 1));
    gradientS = Math.min(gradientS, await bestOf(1, () => model.gradient(images, { logitSeed }), 1));
  }
  await session.release();
  await model.release();
  return { model: c.name, batch: c.batch, forwardS, gradientS, ratio: gradientS / forwardS };
}

/** Where models/export_torchvision.py writes an architecture at 224x224. */
const torchvisionModel = (arch: string): string => join(packageRoot, 'models', 'cache', `${arch}-224.onnx`);
export const resnet50 = torchvisionModel('resnet50');
const resnet18 = torchvisionModel('resnet18');

export function gradReps(quick: boolean): number {
  return benchEnv().reps ?? (quick ? 2 : 3);
}

/**
 * The cases measured, and a line for each one left out (a model not exported). `torchSmoke` adds,
 * in quick mode, ResNet-18 at batch 1 (seconds, not minutes) so that a smoke run of `npm run bench`
 * goes through the PyTorch comparison too.
 */
export function gradCases(quick: boolean, torchSmoke = false): { cases: GradCase[]; skipped: string[] } {
  const cases: GradCase[] = [],
    skipped: string[] = [];
  if (!quick) {
    // ResNet-50 is the goal's case; MobileNetV2 (depthwise convolutions, Clip) and ViT-B/16
    // (attention, LayerNorm, GELU) show how the ratio moves with the architecture.
    for (const arch of ['resnet50', 'mobilenet_v2', 'vit_b_16']) {
      const path = torchvisionModel(arch);
      if (existsSync(path))
        cases.push({
          name: `torchvision ${arch} (random)`,
          path,
          batch: 8,
          shape: [3, 224, 224],
          torch: { arch, size: 224 },
        });
      else
        skipped.push(
          `skipping ${arch}: ${path} is missing; make it with\n  /usr/bin/python3 models/export_torchvision.py ` +
            `--arch ${arch}`,
        );
    }
  } else if (torchSmoke) {
    if (existsSync(resnet18))
      cases.push({
        name: 'torchvision resnet18 (random)',
        path: resnet18,
        batch: 1,
        shape: [3, 224, 224],
        torch: { arch: 'resnet18', size: 224 },
      });
    else
      skipped.push(
        `skipping ResNet-18 (quick mode's PyTorch ` +
          `check): ${resnet18} is missing; make it with\n  /usr/bin/python3 models/export_torchvision.py --arch ` +
          `resnet18`,
      );
  }
  for (const name of ['fmnist-cnn', 'fmnist-resnet', 'fmnist-vit']) {
    const path = join(packageRoot, 'models', `${name}.onnx`);
    if (existsSync(path)) cases.push({ name, path, batch: 32, shape: [1, 28, 28] });
  }
  return { cases, skipped };
}

export async function benchGrad({ cases, reps }: GradOptions): Promise<GradRow[]> {
  const rows: GradRow[] = [];
  for (const c of cases) {
    process.stderr.write(`measuring ${c.name} at batch ${c.batch} ...\n`);
    rows.push(await measure(c, reps));
  }
  return rows;
}

/**
 * PyTorch CPU autograd of every case with a torchvision architecture (same batch, same thread count
 * as ONNX Runtime), written into its row; returns the first run's versions, or the reason there is
 * none (no such case, or no torch).
 */
export function benchTorchGrad(
  cases: GradCase[],
  rows: GradRow[],
  reps: number,
): { torch?: TorchGrad; skipped?: string } {
  const targets = cases.flatMap((c) => {
    const target = rows.find((r) => r.model === c.name && r.batch === c.batch);
    return c.torch === undefined || target === undefined ? [] : [{ arch: c.torch.arch, size: c.torch.size, target }];
  });
  if (targets.length === 0) return { skipped: 'PyTorch: skipped (no torchvision model measured)' };
  const python = pythonWith(['torch', 'torchvision']);
  if (python === undefined) return { skipped: 'PyTorch: skipped (no python with torch and torchvision)' };
  let first: TorchGrad | undefined;
  for (const { arch, size, target } of targets) {
    process.stderr.write(
      `measuring PyTorch autograd ` +
        `of ${arch} at batch ${target.batch} (${cpus().length} threads, as ONNX Runtime) ...\n`,
    );
    const out = execFileSync(
      python,
      [
        join(packageRoot, 'bench', 'torch_grad.py'),
        '--arch',
        arch,
        '--batch',
        String(target.batch),
        '--size',
        String(size),
        '--reps',
        String(reps),
        '--threads',
        String(cpus().length),
      ],
      { encoding: 'utf8' },
    );
    const torch = JSON.parse(out.trim().split('\n').pop()!) as TorchGrad;
    target.torchForwardS = torch.forward_s;
    target.torchGradientS = torch.gradient_s;
    first ??= torch;
  }
  return { torch: first! };
}

/** The grad section of `npm run bench`: input gradient images/s against forward's and PyTorch's. */
export function gradRows(rows: GradRow[], skipped: string[], torch?: TorchGrad): Row[] {
  const ips = (r: GradRow, s: number) => ({ value: r.batch / s, unit: 'img/s' });
  const out: Row[] = [];
  for (const r of rows) {
    out.push(
      row(
        'grad',
        `${r.model}, batch ${r.batch}: input gradient vs forward (ORT)`,
        ips(r, r.gradientS),
        ips(r, r.forwardS),
      ),
    );
    if (r.torchGradientS !== undefined && r.torchForwardS !== undefined) {
      const threads = torch === undefined ? '' : `, ${torch.threads} threads`;
      out.push(
        row(
          'grad',
          `${r.model}, batch ${r.batch}: input gradient, ORT vs PyTorch CPU${threads}`,
          ips(r, r.gradientS),
          ips(r, r.torchGradientS),
        ),
      );
      out.push(
        row(
          'grad',
          `${r.model}, batch ${r.batch}: forward, ORT vs PyTorch CPU${threads}`,
          ips(r, r.forwardS),
          ips(r, r.torchForwardS),
        ),
      );
    }
  }
  for (const line of skipped) out.push(row('grad', line.replace(/\n\s*/g, ' ')));
  return out;
}

async function main(): Promise<void> {
  const { quick } = benchEnv();
  const reps = gradReps(quick);
  const { cases, skipped } = gradCases(quick);
  for (const line of skipped) console.error(line);
  const m0 = machine();
  console.log(
    `machine: ${m0.cpu}, ${m0.cores} cores, ${m0.memoryGiB} GiB, ${m0.platform}, node ${m0.node}, onnxruntime-node ${ort.env.versions.common ?? '?'}`,
  );
  const rows = await benchGrad({ cases, reps });
  // Quick mode leaves PyTorch out without a word, as it leaves out the model it would compare.
  const { torch } = quick ? {} : benchTorchGrad(cases, rows, reps);
  if (!quick && torch === undefined)
    console.log('PyTorch: skipped (no python with torch and torchvision, or no ResNet-50 export)');

  const f = (s: number | undefined) => (s === undefined ? '-' : (s * 1000).toFixed(1));
  printTable(
    `input gradient (forward + backward, one ONNX Runtime run) vs bare forward; best of ${reps}, ms per batch`,
    [
      'model',
      'batch',
      'ORT forward',
      'ORT gradient',
      'grad/fwd',
      'torch forward',
      'torch gradient',
      'torch grad/fwd',
      'ORT grad / torch grad',
    ],
    rows.map((r) => [
      r.model,
      String(r.batch),
      f(r.forwardS),
      f(r.gradientS),
      r.ratio.toFixed(2),
      f(r.torchForwardS),
      f(r.torchGradientS),
      r.torchGradientS && r.torchForwardS ? (r.torchGradientS / r.torchForwardS).toFixed(2) : '-',
      r.torchGradientS ? (r.gradientS / r.torchGradientS).toFixed(2) : '-',
    ]),
  );
  if (torch) console.log(`PyTorch ${torch.torch}, ${torch.threads} threads`);

  const file = writeResult('grad', m0, { machine: m0, reps, rows, torch });
  console.log(`\nwrote ${file}`);
}

if (isMain(import.meta.url)) await main();
