// `npx tsx bench/opsets.ts` (npm run bench:opsets): does the gradient transform keep its speed at
// every opset? ResNet-50 (torchvision, random weights, 224x224) exported at several opsets: per
// opset, the bare ONNX Runtime forward and GradientModel's forward + input gradient (one run), and
// their ratio. Issue 19's goals: the ratio <= 2.5 at opsets 13 and 17, and an old opset's gradient
// not more than 10% slower than opset 17's.
//   models: models/cache/resnet50-224.onnx (opset 17) and resnet50-224.op<k>.onnx, made with
//           /usr/bin/python3 models/export_torchvision.py --arch resnet50 --opset <k>
//           (a missing one is skipped).
// Every model is loaded first; then each rep runs every opset's forward and gradient in turn, so
// that a slow spell of a shared machine falls on all of them alike. Best of the reps.
// Options (env): NFP_BENCH_REPS (default 5), NFP_BENCH_BATCH (default 2), NFP_BENCH_OPSETS
// (default 9,11,13,17).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { GradientModel } from '../src/autodiff/index.js';
import { packageRoot } from '../src/paths.js';
import { TestRandom } from '../test/reference/random.js';
import { benchEnv, bestOf, isMain, machine, printTable, writeResult } from './machine.js';

export interface OpsetRow {
  opset: number;
  batch: number;
  forwardS: number;
  gradientS: number;
  ratio: number;
  /** This opset's gradient time over opset 17's. */
  vs17?: number;
}

const modelPath = (opset: number) =>
  join(packageRoot, 'models', 'cache', opset === 17 ? 'resnet50-224.onnx' : `resnet50-224.op${opset}.onnx`);

export async function benchOpsets(opsets: number[], batch: number, reps: number): Promise<OpsetRow[]> {
  const shape = [3, 224, 224];
  const rnd = new TestRandom(1);
  const images = { data: rnd.floats(batch * 3 * 224 * 224, 0, 1), dims: [batch, ...shape] };
  const cases: Array<{ opset: number; session: ort.InferenceSession; model: GradientModel }> = [];
  for (const opset of opsets) {
    process.stderr.write(`loading resnet50 at opset ${opset} ...\n`);
    const bytes = new Uint8Array(await readFile(modelPath(opset)));
    // The bare forward: the model's own bytes, the session options GradientModel uses.
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
    });
    const model = await GradientModel.load(bytes, { taps: [], batchSize: batch });
    cases.push({ opset, session, model });
  }
  const best = new Map<number, { forwardS: number; gradientS: number }>(
    opsets.map((o) => [o, { forwardS: Infinity, gradientS: Infinity }]),
  );
  const logitSeed = rnd.floats(batch * 1000, -1, 1);
  for (let r = 0; r < reps; r++) {
    process.stderr.write(`rep ${r + 1} of ${reps}\n`);
    for (const { opset, session, model } of cases) {
      const feeds = { [session.inputNames[0]!]: new ort.Tensor('float32', images.data, images.dims) };
      const b = best.get(opset)!;
      // Each timed run follows an untimed one of its own kind (weights and buffers back in cache).
      b.forwardS = Math.min(b.forwardS, await bestOf(1, () => session.run(feeds), 1));
      b.gradientS = Math.min(b.gradientS, await bestOf(1, () => model.gradient(images, { logitSeed }), 1));
    }
  }
  for (const { session, model } of cases) {
    await session.release();
    await model.release();
  }
  const at17 = best.get(17)?.gradientS;
  return opsets.map((opset) => {
    const { forwardS, gradientS } = best.get(opset)!;
    return {
      opset,
      batch,
      forwardS,
      gradientS,
      ratio: gradientS / forwardS,
      ...(at17 !== undefined ? { vs17: gradientS / at17 } : {}),
    };
  });
}

async function main(): Promise<void> {
  const reps = benchEnv().reps ?? 5;
  const batch = Number(process.env.NFP_BENCH_BATCH ?? 2);
  const asked = (process.env.NFP_BENCH_OPSETS ?? '9,11,13,17').split(',').map(Number);
  const opsets = asked.filter((o) => {
    if (existsSync(modelPath(o))) return true;
    console.error(
      `skipping opset ${o}: ${modelPath(o)} is missing; make it with\n  /usr/bin/python3 ` +
        `models/export_torchvision.py --arch resnet50 --opset ${o}`,
    );
    return false;
  });
  const m = machine();
  console.log(
    `machine: ${m.cpu}, ${m.cores} cores, node ${m.node}, onnxruntime-node ${ort.env.versions.common ?? '?'}`,
  );
  const rows = await benchOpsets(opsets, batch, reps);
  const ms = (s: number) => (s * 1000).toFixed(0);
  printTable(
    `ResNet-50 (random weights), batch ${batch}, 224x224: forward vs forward + input gradient; best of ${reps}, ms`,
    ['opset', 'forward', 'gradient', 'gradient / forward', 'gradient / opset 17'],
    rows.map((r) => [
      String(r.opset),
      ms(r.forwardS),
      ms(r.gradientS),
      r.ratio.toFixed(2),
      r.vs17 === undefined ? '-' : r.vs17.toFixed(2),
    ]),
  );
  console.log(`results: ${writeResult('opsets', m, { machine: m, reps, batch, rows })}`);
}

if (isMain(import.meta.url)) await main();
