// Times gradient graphs against each other and against the bare forward in one process, the
// sessions run in turn round after round, so that the VM's slow spells fall on all of them alike
// (outside CI; how each change in docs/results.md, *Input gradients*, was measured):
//   npx tsx scripts/gradient-ab.ts <model.onnx> --save <graph.onnx>     this checkout's graph, to a file
//   npx tsx scripts/gradient-ab.ts <model.onnx> [graph.onnx ...]         forward, this checkout's graph, the files
// A before/after comparison: --save a graph at the old commit, check out the new one, pass the file.
// Options (env): NFP_AB_ROUNDS (default 8), NFP_AB_BATCH (default 8), NFP_AB_WARM (untimed runs of
// the same session before each timed one, default 0; 3-5 for small models, whose weights a
// gradient run pushes out of cache). The graphs have no tap outputs and logit seeds only, as in
// `npm run bench:grad`.
import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

import * as ort from 'onnxruntime-node';

import { classifierGradientBytes } from '../src/autodiff/gradient-graph.js';
import { SeedInputs } from '../src/autodiff/seeds.js';
import { Classifier } from '../src/model/index.js';

const [model, ...rest] = process.argv.slice(2);
if (model === undefined)
  throw new Error('usage: npx tsx scripts/gradient-ab.ts <model.onnx> [--save <graph.onnx> | graph.onnx ...]');
const batch = Number(process.env.NFP_AB_BATCH ?? 8);
const rounds = Number(process.env.NFP_AB_ROUNDS ?? 8);
const warm = Number(process.env.NFP_AB_WARM ?? 0);

const bytes = new Uint8Array(readFileSync(model));
const classifier = await Classifier.load(model, { taps: [], batchSize: batch });
await classifier.release();
const graph = await classifierGradientBytes(
  bytes,
  basename(model),
  { name: classifier.inputName, shape: classifier.inputShape },
  { logits: classifier.logitsName, classes: classifier.classes, taps: [] },
  {},
  false,
);

if (rest[0] === '--save') {
  if (rest[1] === undefined) throw new Error('--save needs a file name');
  writeFileSync(rest[1], graph);
  console.log(`wrote ${rest[1]}`);
  process.exit(0);
}

const perImage = classifier.inputShape.reduce((a, v) => a * v, 1);
const x = new Float32Array(batch * perImage).map(() => Math.random());
const seed = new Float32Array(batch * classifier.classes).map(() => Math.random() - 0.5);
interface Entry {
  name: string;
  session: ort.InferenceSession;
  feeds: Record<string, ort.Tensor>;
  ms: number[];
}
const entries: Entry[] = [];
for (const [name, b] of [
  ['forward', bytes],
  ['this checkout', graph],
  ...rest.map((f) => [f, new Uint8Array(readFileSync(f))]),
] as Array<[string, Uint8Array]>) {
  const session = await ort.InferenceSession.create(b, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' });
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of session.inputNames) {
    // A random logit seed; the cross-entropy and Carlini-Wagner one-hots all zero (no such terms).
    if (input === classifier.inputName) feeds[input] = new ort.Tensor('float32', x, [batch, ...classifier.inputShape]);
    else
      feeds[input] = new ort.Tensor('float32', input === SeedInputs.logits ? seed : new Float32Array(seed.length), [
        batch,
        classifier.classes,
      ]);
  }
  await session.run(feeds);
  entries.push({ name, session, feeds, ms: [] });
}
for (let r = 0; r < rounds; r++) {
  for (const e of entries) {
    for (let w = 0; w < warm; w++) await e.session.run(e.feeds);
    const t0 = performance.now();
    await e.session.run(e.feeds);
    e.ms.push(performance.now() - t0);
  }
}
const forward = entries[0]!;
const min = (a: number[]) => Math.min(...a);
const median = (a: number[]) => [...a].sort((p, q) => p - q)[a.length >> 1]!;
console.log(`${basename(model)}, batch ${batch}, ${rounds} rounds (${warm} untimed runs before each timed one); ms`);
for (const e of entries) {
  const ratio =
    e === forward
      ? ''
      : `  ratio of minima ${(min(e.ms) / min(forward.ms)).toFixed(3)}, median ratio within a ` +
        `round ${median(e.ms.map((t, i) => t / forward.ms[i]!)).toFixed(3)}`;
  console.log(
    `${e.name.padEnd(24)} min ${min(e.ms).toFixed(1).padStart(8)}  median ${median(e.ms).toFixed(1).padStart(8)}${ratio}`,
  );
}
for (const e of entries) await e.session.release();
