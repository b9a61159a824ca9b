// Compares the library's input gradients with PyTorch's on torchvision architectures, outside
// `npm test` (it needs the references from scripts/gradcheck_torchvision.py):
//   /usr/bin/python3 scripts/gradcheck_torchvision.py resnet18 mobilenet_v2 vit_b_16
//   npx tsx scripts/gradcheck-torchvision.ts resnet18 mobilenet_v2 vit_b_16
// Prints cosine and max relative error (max |ours - ref| / max |ref|) against the float64 and
// float32 PyTorch gradients, PyTorch's own float32 error as the noise floor, and the time of our
// forward + gradient; writes JSON to bench/results/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { bestOf, machine, printTable } from '../bench/machine.js';
import { GradientModel, readNpy } from '../src/index.js';
import { packageRoot } from '../src/paths.js';

const dir = join(packageRoot, 'models', 'cache', 'gradcheck');

function compare(ours: Float32Array, ref: ArrayLike<number>): { cosine: number; maxRelErr: number } {
  let dot = 0,
    na = 0,
    nb = 0,
    maxDiff = 0,
    maxRef = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = ours[i]!,
      b = ref[i]!;
    dot += a * b;
    na += a * a;
    nb += b * b;
    maxDiff = Math.max(maxDiff, Math.abs(a - b));
    maxRef = Math.max(maxRef, Math.abs(b));
  }
  return { cosine: dot / Math.sqrt(na * nb), maxRelErr: maxDiff / maxRef };
}

const rows: Array<Record<string, string | number>> = [];
for (const name of process.argv.slice(2)) {
  if (!existsSync(join(dir, `${name}.json`))) {
    rows.push({ model: name, error: `no reference: run /usr/bin/python3 scripts/gradcheck_torchvision.py ${name}` });
    continue;
  }
  const meta = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as { torch_fwd_grad_s: { grad32: number } };
  const x = readNpy(join(dir, `${name}.input.npy`)),
    seed = readNpy(join(dir, `${name}.seed.npy`));
  try {
    const model = await GradientModel.load(join(dir, `${name}.onnx`), { batchSize: 2 });
    const images = { data: x.data as Float32Array, dims: x.dims };
    const request = { logitSeed: seed.data as Float32Array };
    const { grad } = await model.gradient(images, request);
    const seconds = await bestOf(2, () => model.gradient(images, request), 0);
    const ref64 = readNpy(join(dir, `${name}.grad64.npy`)).data as Float64Array;
    const ref32 = readNpy(join(dir, `${name}.grad32.npy`)).data as Float32Array;
    const vs64 = compare(grad, ref64);
    const vs32 = compare(grad, ref32);
    // PyTorch's own float32 error: the noise floor a float32 implementation can be held to.
    const torchFloor = compare(ref32, ref64);
    const ok = vs64.cosine >= 0.99999 && vs64.maxRelErr <= 1e-3;
    rows.push({
      model: name,
      cosine64: vs64.cosine,
      maxRelErr64: vs64.maxRelErr,
      cosine32: vs32.cosine,
      maxRelErr32: vs32.maxRelErr,
      torch32MaxRelErr64: torchFloor.maxRelErr,
      oursMs: Math.round(seconds * 1000),
      torchMs: Math.round(meta.torch_fwd_grad_s.grad32 * 1000),
      pass: ok ? 'yes' : 'NO',
    });
  } catch (error) {
    rows.push({ model: name, error: String(error).slice(0, 240) });
  }
}
const m = machine();
console.log(`gradient check vs PyTorch (batch 2, random weights); ${m.cpu}, ${m.cores} cores`);
printTable(
  'goal: cosine >= 0.99999 and max relative error <= 1e-3 against the float64 reference',
  [
    'model',
    'cos vs fp64',
    'max rel vs fp64',
    'torch fp32 vs fp64',
    'cos vs fp32',
    'max rel vs fp32',
    'ours ms',
    'torch ms',
    'pass',
  ],
  rows
    .filter((r) => r.error === undefined)
    .map((r) => [
      String(r.model),
      Number(r.cosine64).toFixed(9),
      Number(r.maxRelErr64).toExponential(1),
      Number(r.torch32MaxRelErr64).toExponential(1),
      Number(r.cosine32).toFixed(9),
      Number(r.maxRelErr32).toExponential(1),
      String(r.oursMs),
      String(r.torchMs),
      String(r.pass),
    ]),
);
for (const r of rows.filter((r) => r.error !== undefined)) console.log(`${r.model}: ${r.error}`);
mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(packageRoot, 'bench', 'results', `gradcheck-${m.date.replace(/[:.]/g, '-')}.json`),
  JSON.stringify({ machine: m, rows }, null, 2),
);
