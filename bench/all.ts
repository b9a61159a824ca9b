// `npm run bench`: every benchmark in one process and one run, as one table in which each ratio is
// ours against a baseline measured minutes apart on the same machine (never a figure from
// elsewhere), then one JSON file bench/results/bench-<timestamp>.json.
//   detect:    detect() images/s vs bare ONNX Runtime inference with the same taps (bench/detect.ts)
//   screen:    candidates/s: TypeScript reference, native 1 thread and all threads, CUDA when usable,
//              the reference method in Python (pandas per candidate) and vectorized numpy (bench/kernels.ts)
//   grad:      input gradient images/s vs ONNX Runtime forward and vs PyTorch CPU autograd (bench/grad.ts)
//   bandwidth: bytes gathered per second by detectScores, subsetMeans and screen vs a plain
//              Float32Array copy (bench/kernels.ts)
//   attacks:   PGD-20 vs the PyTorch reference (bench/attacks.ts); only when NFP_BENCH_ONLY names it
//   scale:     a synthetic 1,000-class bank against the ImageNet-scale goals: size on disk, load,
//              merge of 100 shards, bank info (bench/scale.ts); its own table (sizes and seconds, not rates)
// Every figure is a rate (more is better) and ratio = ours / baseline.
// Options (env): NFP_BENCH_QUICK=1 (small sizes, committed models only: a smoke run of well under a
// minute), NFP_BENCH_ONLY=detect,screen,grad,bandwidth,scale (the sections to run; these five by default),
// NFP_BENCH_C (candidates per screen call, default 100000), NFP_BENCH_REPS (detect and grad reps).
import * as ort from 'onnxruntime-node';

import { info } from '../src/index.js';
import { attackCases, attackRows, benchAttacks } from './attacks.js';
import type { AttackRow } from './attacks.js';
import { benchDetect, detectCases, detectReps, detectRows } from './detect.js';
import type { DetectRow } from './detect.js';
import { benchGrad, benchTorchGrad, gradCases, gradReps, gradRows } from './grad.js';
import type { GradRow, TorchGrad } from './grad.js';
import {
  N,
  bandwidthRows,
  benchBandwidth,
  benchDetectScores,
  benchScreen,
  k,
  kernelOptions,
  n0,
  n1,
  screenRows,
} from './kernels.js';
import type { Bandwidth, ScreenBench } from './kernels.js';
import { benchScale, printScale, scaleSettings } from './scale.js';
import type { ScaleResult } from './scale.js';
import { benchEnv, formatFigure, formatRatio, machine, printTable, row, writeResult } from './machine.js';
import type { Row, Section } from './machine.js';

const sectionNames: readonly Section[] = ['detect', 'screen', 'grad', 'bandwidth', 'attacks', 'scale'];
const defaultSections: readonly Section[] = ['detect', 'screen', 'grad', 'bandwidth', 'scale'];

function chosenSections(): Section[] {
  const only = process.env.NFP_BENCH_ONLY?.trim();
  if (only === undefined || only === '') return [...defaultSections];
  const names = only
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = names.filter((s) => !(sectionNames as readonly string[]).includes(s));
  if (unknown.length > 0) {
    console.error(
      `NFP_BENCH_ONLY: unknown section ${unknown.map((s) => `'${s}'`).join(', ')}; expected a comma-separated list ` +
        `of ${sectionNames.join(', ')}`,
    );
    process.exit(2);
  }
  // The table keeps the usual order whatever order the list gives.
  return sectionNames.filter((s) => names.includes(s));
}

/** Everything measured, as it goes into the JSON next to the table's rows. */
interface Details {
  detect?: { reps: number; rows: DetectRow[]; skipped: string[] };
  screen?: ScreenBench;
  grad?: { reps: number; rows: GradRow[]; skipped: string[]; torch?: TorchGrad };
  bandwidth?: Bandwidth[];
  attacks?: { rows: AttackRow[]; skipped: string[]; torch: boolean };
  scale?: ScaleResult;
}

const { quick } = benchEnv();
const sections = chosenSections();
const kernels = kernelOptions(quick);
const m0 = machine();
const cuda = info().cuda;
console.log(`neural-fingerprints benchmark${quick ? ' (quick)' : ''}: ${sections.join(', ')}`);
console.log(
  `machine: ${m0.cpu}, ${m0.cores} cores, ${m0.memoryGiB} GiB, ${m0.platform}, node ${m0.node}, ${m0.compiler}, ` +
    `onnxruntime-node ${ort.env.versions.common ?? '?'}, native backend ${m0.backend} (${m0.threads} threads), ` +
    `CUDA ${cuda.usable ? cuda.deviceName : 'not usable'}`,
);

const rows: Row[] = [];
const details: Details = {};
const seconds: Partial<Record<Section, number>> = {};
let failed = false;

const run: Record<Section, () => Promise<void>> = {
  detect: async () => {
    const reps = detectReps();
    const { cases, skipped } = detectCases(quick);
    const measured = await benchDetect({ cases, reps });
    details.detect = { reps, rows: measured, skipped };
    rows.push(...detectRows(measured, skipped));
  },
  screen: async () => {
    const s = await benchScreen(kernels);
    details.screen = s;
    rows.push(...screenRows(s));
  },
  grad: async () => {
    const reps = gradReps(quick);
    const { cases, skipped } = gradCases(quick, true);
    const measured = await benchGrad({ cases, reps });
    const { torch, skipped: torchSkipped } = benchTorchGrad(cases, measured, reps);
    const notes = torchSkipped === undefined ? skipped : [...skipped, torchSkipped];
    details.grad = { reps, rows: measured, skipped: notes, ...(torch === undefined ? {} : { torch }) };
    rows.push(...gradRows(measured, notes, torch));
  },
  bandwidth: async () => {
    const d = await benchDetectScores(kernels);
    const list = [d.bandwidth, ...(await benchBandwidth(kernels))];
    details.bandwidth = list;
    rows.push(...bandwidthRows(list));
  },
  attacks: async () => {
    const { cases, skipped } = attackCases(quick);
    const measured = await benchAttacks(cases);
    details.attacks = { ...measured, skipped };
    rows.push(...attackRows(measured.rows, skipped, measured.torch));
  },
  scale: async () => {
    details.scale = await benchScale(scaleSettings(quick), quick);
  },
};

for (const section of sections) {
  process.stderr.write(`[${section}]\n`);
  const t0 = performance.now();
  try {
    await run[section]();
  } catch (e) {
    // One section's failure (a missing interpreter, a model that will not load) should not cost the others.
    failed = true;
    const message = e instanceof Error ? e.message.split('\n')[0]! : String(e);
    rows.push(row(section, `failed: ${message}`));
    console.error(e);
  }
  seconds[section] = (performance.now() - t0) / 1000;
}

const s = details.screen?.settings;
const about = [
  ...(s === undefined ? [] : [`screen: C=${s.C}, k=${s.k}, n0=${s.n0}, n1=${s.n1}, N=${s.N}`]),
  ...(details.bandwidth === undefined ? [] : ['copies on 1 thread']),
];
// The scale section alone adds no ratio rows: no empty table then.
if (rows.length > 0 || details.scale === undefined)
  printTable(
    `ours vs baseline, both measured in this run; ratio = ours / ` +
      `baseline${about.length > 0 ? ` (${about.join('; ')})` : ''}`,
    ['section', 'case', 'ours', 'baseline', 'ratio'],
    rows.map((r) => [r.section, r.case, formatFigure(r.ours), formatFigure(r.baseline), formatRatio(r.ratio)]),
    2,
  );
if (details.scale !== undefined) {
  printScale(details.scale);
  const resnet = details.scale.resnet;
  if (resnet !== undefined && 'skipped' in resnet) console.log(`scale: ${resnet.skipped}`);
}
if (details.screen !== undefined) console.log(`python: ${details.screen.pythonNote}`);
if (details.grad?.torch !== undefined)
  console.log(`PyTorch ${details.grad.torch.torch}, ${details.grad.torch.threads} threads`);
console.log(`seconds per section: ${sections.map((x) => `${x} ${(seconds[x] ?? 0).toFixed(1)}`).join(', ')}`);

const settings = {
  quick,
  sections,
  screen: { C: kernels.C, k, n0, n1, N },
  detectReps: detectReps(),
  gradReps: gradReps(quick),
  env: Object.fromEntries(Object.entries(process.env).filter(([key]) => key.startsWith('NFP_'))),
};
const file = writeResult('bench', m0, {
  schema: 1,
  machine: m0,
  onnxruntime: ort.env.versions.common ?? null,
  cuda,
  settings,
  seconds,
  rows,
  details,
});
console.log(`\nwrote ${file}`);
if (failed) process.exitCode = 1;
