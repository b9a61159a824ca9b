// Compares the library's input gradients with PyTorch's on torchvision architectures exported at
// several opsets, outside `npm test` (it needs the references from scripts/gradcheck_torchvision.py):
//   /usr/bin/python3 scripts/gradcheck_torchvision.py --all            (or names: resnet18 vit_b_16 ...)
//   npx tsx scripts/gradcheck-torchvision.ts --all [--opsets 11,13,17] [--markdown | --compact]
// For each model and opset: cosine and max relative error (max |ours - ref| / max |ref|) against the
// float64 and float32 PyTorch gradients and PyTorch's own float32 error (the larger of its default and
// channels-last kernels') as the noise floor; a model
// whose gradient cannot be built lists every reason (classifierGradientProblems). Writes JSON to
// bench/results/; --markdown prints the table for docs/results.md.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { machine, printTable } from '../bench/machine.js';
import { GradientModel, readNpy } from '../src/index.js';
import { classifierGradientProblems } from '../src/autodiff/index.js';
import { Classifier } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';

const dir = join(packageRoot, 'models', 'cache', 'gradcheck');

interface Meta {
  size?: number;
  error?: string;
  exports?: Record<string, { ops?: string[]; error?: string }>;
}

interface Row {
  model: string;
  opset: number;
  size?: number;
  cosine64?: number;
  maxRelErr64?: number;
  cosine32?: number;
  maxRelErr32?: number;
  torch32MaxRelErr64?: number;
  pass?: string;
  error?: string;
}

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

/** Every reason the gradient model cannot be built, grouped by message, for the table. */
async function problems(path: string): Promise<string> {
  const bytes = new Uint8Array(readFileSync(path));
  const c = await Classifier.load(bytes, { taps: [] });
  try {
    const found = await classifierGradientProblems(
      bytes,
      path,
      { name: c.inputName, shape: c.inputShape },
      { logits: c.logitsName, classes: c.classes, taps: [] },
    );
    const byOp = new Map<string, number>();
    for (const p of found) {
      const key = p.node ? `${p.node.opType}: ${p.message.replace(/.*?node '[^']*'(: )?/, '')}` : p.message;
      byOp.set(key, (byOp.get(key) ?? 0) + 1);
    }
    return [...byOp].map(([k, n]) => `${k}${n > 1 ? ` (${n} nodes)` : ''}`).join('; ');
  } finally {
    await c.release();
  }
}

async function check(name: string, opset: number, meta: Meta): Promise<Row> {
  const row: Row = { model: name, opset, ...(meta.size ? { size: meta.size } : {}) };
  if (meta.error) return { ...row, error: meta.error };
  const exported = meta.exports?.[String(opset)];
  if (exported === undefined) return { ...row, error: `not exported at opset ${opset}` };
  if (exported.error) return { ...row, error: `PyTorch cannot export it: ${exported.error}` };
  const path = join(dir, `${name}.op${opset}.onnx`);
  const x = readNpy(join(dir, `${name}.input.npy`));
  const seed = readNpy(join(dir, `${name}.seed.npy`));
  let model: GradientModel;
  try {
    model = await GradientModel.load(path, { batchSize: 2, taps: [] });
  } catch (error) {
    const listed = await problems(path).catch(() => '');
    return { ...row, error: listed || String(error).slice(0, 300) };
  }
  try {
    const { grad } = await model.gradient(
      { data: x.data as Float32Array, dims: x.dims },
      { logitSeed: seed.data as Float32Array },
    );
    const ref64 = readNpy(join(dir, `${name}.grad64.npy`)).data as Float64Array;
    const ref32 = readNpy(join(dir, `${name}.grad32.npy`)).data as Float32Array;
    const vs64 = compare(grad, ref64);
    const vs32 = compare(grad, ref32);
    // PyTorch's own float32 error, the larger of its two kernels' (the channels-last one where
    // recorded): the noise floor a float32 implementation can be held to.
    const cl = join(dir, `${name}.grad32cl.npy`);
    const floor = Math.max(
      compare(ref32, ref64).maxRelErr,
      existsSync(cl) ? compare(readNpy(cl).data as Float32Array, ref64).maxRelErr : 0,
    );
    const exact = vs64.cosine >= 0.9999 && vs64.maxRelErr <= 1e-3;
    const atFloor = vs64.cosine >= 0.9999 && vs64.maxRelErr <= 2 * floor;
    return {
      ...row,
      cosine64: vs64.cosine,
      maxRelErr64: vs64.maxRelErr,
      cosine32: vs32.cosine,
      maxRelErr32: vs32.maxRelErr,
      torch32MaxRelErr64: floor,
      pass: exact ? 'yes' : atFloor ? 'fp32 floor' : 'NO',
    };
  } catch (error) {
    return { ...row, error: String(error).slice(0, 300) };
  } finally {
    await model.release();
  }
}

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(name);
const optionValue = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const opsets = (optionValue('--opsets') ?? '11,13,17').split(',').map(Number);
const names = flag('--all')
  ? readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -5))
      .sort()
  : args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--opsets');
const rows: Row[] = [];
for (const name of names) {
  const metaPath = join(dir, `${name}.json`);
  if (!existsSync(metaPath)) {
    for (const opset of opsets)
      rows.push({
        model: name,
        opset,
        error: `no reference: /usr/bin/python3 scripts/gradcheck_torchvision.py ${name}`,
      });
    continue;
  }
  const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as Meta;
  for (const opset of opsets) {
    const row = await check(name, opset, meta);
    rows.push(row);
    process.stderr.write(`${name} opset ${opset}: ${row.pass ?? row.error}\n`);
  }
}

const m = machine();
const fmt = (v: number | undefined, digits: number, exp = false) =>
  v === undefined ? '' : exp ? v.toExponential(digits) : v.toFixed(digits);
if (flag('--compact')) {
  // One row per model: the max relative error vs float64 at each opset, PyTorch's float32 floor, the verdict.
  const byModel = new Map<string, Row[]>();
  for (const r of rows) byModel.set(r.model, [...(byModel.get(r.model) ?? []), r]);
  console.log(`| model | size | ${opsets.map((o) => `opset ${o}`).join(' | ')} | PyTorch fp32 | min cosine | pass |`);
  console.log(`|---|---|${opsets.map(() => '---').join('|')}|---|---|---|`);
  for (const [model, list] of byModel) {
    const cells = opsets.map((o) => {
      const r = list.find((x) => x.opset === o);
      return r === undefined
        ? ''
        : r.error !== undefined
          ? `not run: ${r.error.replace(/\|/g, '/').slice(0, 90)}`
          : fmt(r.maxRelErr64, 1, true);
    });
    const ran = list.filter((r) => r.error === undefined);
    const floor = ran.length > 0 ? fmt(Math.max(...ran.map((r) => r.torch32MaxRelErr64!)), 1, true) : '';
    const cosine = ran.length > 0 ? fmt(Math.min(...ran.map((r) => r.cosine64!)), 7) : '';
    const verdicts = [...new Set(ran.map((r) => r.pass!))].join(', ');
    console.log(`| ${model} | ${list[0]!.size ?? ''} | ${cells.join(' | ')} | ${floor} | ${cosine} | ${verdicts} |`);
  }
} else if (flag('--markdown')) {
  console.log(
    '| model | size | opset | cos vs fp64 | max rel vs fp64 | PyTorch fp32 vs fp64 | max rel vs fp32 | pass |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const cells =
      r.error !== undefined
        ? ['', '', '', '', `not run: ${r.error.replace(/\|/g, '/')}`]
        : [
            fmt(r.cosine64, 7),
            fmt(r.maxRelErr64, 1, true),
            fmt(r.torch32MaxRelErr64, 1, true),
            fmt(r.maxRelErr32, 1, true),
            r.pass!,
          ];
    console.log(`| ${r.model} | ${r.size ?? ''} | ${r.opset} | ${cells.join(' | ')} |`);
  }
} else {
  console.log(`gradient check vs PyTorch (batch 2, random weights); ${m.cpu}, ${m.cores} cores`);
  printTable(
    'goal: cosine >= 0.9999 and max relative error <= 1e-3 against the float64 reference',
    [
      'model',
      'opset',
      'size',
      'cos vs fp64',
      'max rel vs fp64',
      'torch fp32 vs fp64',
      'cos vs fp32',
      'max rel vs fp32',
      'pass',
    ],
    rows
      .filter((r) => r.error === undefined)
      .map((r) => [
        r.model,
        String(r.opset),
        String(r.size ?? ''),
        fmt(r.cosine64, 9),
        fmt(r.maxRelErr64, 1, true),
        fmt(r.torch32MaxRelErr64, 1, true),
        fmt(r.cosine32, 9),
        fmt(r.maxRelErr32, 1, true),
        r.pass!,
      ]),
  );
  for (const r of rows.filter((r) => r.error !== undefined)) console.log(`${r.model} opset ${r.opset}: ${r.error}`);
}
mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(packageRoot, 'bench', 'results', `gradcheck-${m.date.replace(/[:.]/g, '-')}.json`),
  JSON.stringify({ machine: m, opsets, rows }, null, 2),
);
