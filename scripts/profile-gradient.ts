// Where the time of an input gradient goes (outside CI): ONNX Runtime's profiler over 4 runs of the
// bare forward and of the gradient graph (forward + backward, no taps), time per op type and the
// slowest nodes, in ms per run (the wall time printed is of the last 3). The figures include the profiler's own
// overhead (about 15%).
//   npx tsx scripts/profile-gradient.ts models/cache/resnet50-224.onnx [batch, default 8]
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { classifierGradientBytes } from '../src/autodiff/gradient-graph.js';
import { Classifier } from '../src/model/index.js';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: npx tsx scripts/profile-gradient.ts <model.onnx> [batch]');
const dir = mkdtempSync(join(tmpdir(), 'nfp-profile-'));
const batch = Number(process.argv[3] ?? 8);
const bytes = new Uint8Array(readFileSync(path));
const c = await Classifier.load(path, { taps: [], batchSize: batch });
const gbytes = await classifierGradientBytes(
  bytes,
  'm',
  { name: c.inputName, shape: c.inputShape },
  { logits: c.logitsName, classes: c.classes, taps: [] },
  {},
  false,
);
await c.release();
const per = c.inputShape.reduce((a, v) => a * v, 1);
const x = new Float32Array(batch * per).map(() => Math.random());
async function prof(b: Uint8Array, feedsOf: (s: ort.InferenceSession) => Record<string, ort.Tensor>, tag: string) {
  const s = await ort.InferenceSession.create(b, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    enableProfiling: true,
    profileFilePrefix: join(dir, tag),
  });
  const feeds = feedsOf(s);
  await s.run(feeds);
  const t0 = performance.now();
  for (let i = 0; i < 3; i++) await s.run(feeds);
  console.log(tag, 'ms/run', ((performance.now() - t0) / 3).toFixed(1));
  s.endProfiling();
  await s.release();
  const f = readdirSync(dir)
    .filter((n) => n.startsWith(tag))
    .sort()
    .pop()!;
  const ev = JSON.parse(readFileSync(join(dir, f), 'utf8')) as {
    cat: string;
    name: string;
    dur: number;
    args: { op_name?: string };
  }[];
  const by = new Map<string, number>();
  const nodes = new Map<string, number>();
  for (const e of ev)
    if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) {
      by.set(e.args.op_name!, (by.get(e.args.op_name!) ?? 0) + e.dur);
      nodes.set(e.name, (nodes.get(e.name) ?? 0) + e.dur);
    }
  // Profiler durations are microseconds summed over the 4 runs: / 4000 gives ms per run.
  const tot = [...by.values()].reduce((a, v) => a + v, 0);
  for (const [k, v] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 15))
    console.log('  ', k.padEnd(22), (v / 4000).toFixed(1), 'ms', `${((100 * v) / tot).toFixed(1)}%`);
  for (const [k, v] of [...nodes].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log('     ', k.padEnd(60), (v / 4000).toFixed(1), 'ms');
}
await prof(bytes, (s) => ({ [s.inputNames[0]!]: new ort.Tensor('float32', x, [batch, ...c.inputShape]) }), 'fwd');
await prof(
  gbytes,
  (s) => {
    const f: Record<string, ort.Tensor> = {};
    for (const n of s.inputNames)
      f[n] =
        n === c.inputName
          ? new ort.Tensor('float32', x, [batch, ...c.inputShape])
          : new ort.Tensor('float32', new Float32Array(batch * c.classes).fill(0.1), [batch, c.classes]);
    return f;
  },
  'grad',
);

rmSync(dir, { recursive: true, force: true });
