// `npx tsx bench/scale.ts`: a bank at ImageNet scale, against the goals of the issue "ImageNet scale".
// The bank is synthetic (no 1,000-class data set is reachable here): 1,000 classes x 2,000 distinct
// fingerprints of k = 1 (the default) over 100,000 tapped neurons, two attack families, random
// statistics; sizes and times do not depend on what the fingerprints are.
//   size:   bytes of the .nfp file (goal <= 100 MB)
//   load:   readBank (read, SHA-256, every field and index checked) + the native scorer built from it
//           (goal < 1 s)
//   merge:  `nfp bank merge` of 100 shards of 10 classes each, in-process (read 100 files, merge, write),
//           and as a child process of the CLI (goal < 10 s)
//   info:   `nfp bank info` of the 1,000-class bank: time and lines printed
//   ResNet-50 (bench/scale-resnet.ts, when models/cache/resnet50-224.onnx exists, not in quick mode):
//           detect() overhead with this bank over bare inference, the fit's stages per image and per
//           class, and a projection of an ImageNet-size fit on one machine and on N pods
// Options (env): NFP_BENCH_QUICK=1 (100 classes, 10 shards, no ResNet-50), NFP_BENCH_REPS (ResNet-50
// detect reps, default 3), NFP_BENCH_FIT_IMAGES (images the fit stages are timed on, default 6). Also
// the scale section of `npm run bench`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { FingerprintBank, describeBank, readBank, writeBank } from '../src/bank/index.js';
import type { BankHeader, FittedClass } from '../src/bank/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../src/random.js';
import { resnet50, resnet50Missing } from './detect.js';
import { benchEnv, isMain, machine, printTable, writeResult } from './machine.js';
import { benchResnetScale } from './scale-resnet.js';
import type { ResnetScale } from './scale-resnet.js';

export interface ScaleSettings {
  classes: number;
  perClass: number;
  neurons: number;
  shards: number;
}

export interface ScaleFigure {
  name: string;
  value: number;
  unit: string;
  /** The goal, in the same unit, and whether the value meets it (at most the goal). */
  goal?: number;
  met?: boolean;
}

export interface ScaleResult {
  settings: ScaleSettings;
  figures: ScaleFigure[];
  /** Lines `nfp bank info` printed for the big bank. */
  infoLines: number;
  note: string;
  /** The ResNet-50 measurements behind its figures, or why they were left out. */
  resnet?: ResnetScale['details'] | { skipped: string };
}

export function scaleSettings(quick: boolean): ScaleSettings {
  return quick
    ? { classes: 100, perClass: 2000, neurons: 100_000, shards: 10 }
    : { classes: 1000, perClass: 2000, neurons: 100_000, shards: 100 };
}

/** Class c of a synthetic bank: perClass distinct neurons (k = 1) and random statistics. */
function syntheticClass(rng: SeededRandom, perm: Uint32Array, perClass: number): FittedClass {
  // A partial Fisher-Yates shuffle of the shared permutation: perClass distinct neurons.
  for (let i = 0; i < perClass; i++) {
    const j = i + rng.int(perm.length - i);
    [perm[i], perm[j]] = [perm[j]!, perm[i]!];
  }
  const floats = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => rng.uniform(lo, hi));
  return {
    fingerprints: {
      indices: perm.slice(0, perClass),
      mu0: floats(perClass, -1, 1),
      sd0: floats(perClass, 0.1, 1),
      mu1: floats(2 * perClass, -1, 1),
      sd1: floats(2 * perClass, 0.1, 1),
      effect: floats(perClass, 1.5, 4),
      passed: 10 * perClass,
      redundancy: rng.uniform(0.1, 0.4),
    },
    clean: 400,
    attacked: [400, 400],
  };
}

function syntheticHeader(
  s: ScaleSettings,
  over: Partial<Pick<BankHeader, 'model' | 'taps'>> = {},
): Omit<BankHeader, 'classes'> {
  const base: Omit<BankHeader, 'classes'> = {
    model: {
      sha256: '0'.repeat(64),
      source: 'synthetic-imagenet.onnx',
      inputShape: [3, 224, 224],
      classes: s.classes,
      inputRange: [0, 1],
    },
    taps: [
      { tensor: 'features', size: s.neurons - 1000 },
      { tensor: 'logits', size: 1000 },
    ],
    neurons: s.neurons,
    k: 1,
    families: ['pgd', 'fgsm'],
    fit: {
      candidates: s.neurons,
      k: 1,
      pMax: 1e-3,
      dMin: 1.5,
      topK: s.perClass,
      minFingerprints: 25,
      maxCorrelation: 1,
      attacks: { pgd: { eps: 0.03 }, fgsm: { eps: 0.03 } },
      seed: 1,
      cleanPerClass: 400,
      attackedPerClass: 400,
    },
    created: new Date().toISOString(),
  };
  return { ...base, ...over };
}

function seconds(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

function bestSeconds(reps: number, fn: () => void): number {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < reps; r++) best = Math.min(best, seconds(fn));
  return best;
}

/** `nfp ...` in a child process: the compiled CLI when built, else the sources through tsx. */
function cli(args: string[]): { seconds: number; stdout: string; how: string } {
  const dist = join(packageRoot, 'dist', 'cli', 'main.js');
  const argv = existsSync(dist) ? [dist] : ['--import', 'tsx', join(packageRoot, 'src', 'cli', 'main.ts')];
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [...argv, ...args], {
    cwd: packageRoot,
    encoding: 'utf8',
    maxBuffer: 64 * 2 ** 20,
  });
  const took = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`nfp ${args.join(' ')} failed: ${r.stderr.slice(-500)}`);
  return { seconds: took, stdout: r.stdout, how: existsSync(dist) ? 'dist/cli/main.js' : 'tsx src/cli/main.ts' };
}

/**
 * The synthetic bank of the settings, its header and its classes (for shards of it); `over` binds it
 * to a real model (its hash and taps) so that detect() can run with it.
 */
export function syntheticBank(
  s: ScaleSettings,
  over: Partial<Pick<BankHeader, 'model' | 'taps'>> = {},
): {
  header: Omit<BankHeader, 'classes'>;
  classes: FittedClass[];
  bank: FingerprintBank;
} {
  const rng = new SeededRandom(1);
  const perm = Uint32Array.from({ length: s.neurons }, (_, i) => i);
  const classes = Array.from({ length: s.classes }, () => syntheticClass(rng, perm, s.perClass));
  const header = syntheticHeader(s, over);
  return { header, classes, bank: FingerprintBank.fromClasses(header, new Map(classes.map((c, i) => [i, c]))) };
}

/** The ResNet-50 figures: measured unless quick mode or the model is missing (then a reason). */
async function resnetFigures(quick: boolean): Promise<{ figures: ScaleFigure[]; resnet: ScaleResult['resnet'] }> {
  if (quick) return { figures: [], resnet: { skipped: 'ResNet-50: skipped in quick mode' } };
  if (!existsSync(resnet50)) return { figures: [], resnet: { skipped: resnet50Missing.replace(/\n\s*/g, ' ') } };
  const env = Number(process.env.NFP_BENCH_FIT_IMAGES ?? 6);
  const r = await benchResnetScale({
    reps: benchEnv().reps ?? 3,
    fitImages: Number.isInteger(env) && env > 0 ? env : 6,
    pods: [1, 8, 100],
  });
  return { figures: r.figures, resnet: r.details };
}

export async function benchScale(s: ScaleSettings, quick = false): Promise<ScaleResult> {
  const dir = mkdtempSync(join(tmpdir(), 'nfp-scale-'));
  try {
    const { header, classes, bank } = syntheticBank(s);
    const path = join(dir, 'bank.nfp');
    const writeS = seconds(() => writeBank(path, bank));
    const mb = statSync(path).size / 1e6;
    const readS = bestSeconds(3, () => readBank(path));
    const loadS = bestSeconds(3, () => {
      const b = readBank(path);
      void b.native;
    });
    const describeS = bestSeconds(3, () => describeBank(readBank(path)));

    // Shards as a sharded fit leaves them: shard i fits a block of classes, the others unfitted.
    const shardPaths: string[] = [];
    for (let i = 0; i < s.shards; i++) {
      const from = Math.floor((i * s.classes) / s.shards);
      const to = Math.floor(((i + 1) * s.classes) / s.shards);
      const fitted = new Map<number, FittedClass>();
      for (let c = from; c < to; c++) fitted.set(c, classes[c]!);
      const shard = join(dir, `shard-${i}.nfp`);
      writeBank(shard, FingerprintBank.fromClasses(header, fitted));
      shardPaths.push(shard);
    }
    const merged = join(dir, 'merged.nfp');
    const mergeS = seconds(() => writeBank(merged, FingerprintBank.merge(shardPaths.map((p) => readBank(p)))));
    const mergeCli = cli(['bank', 'merge', ...shardPaths, '--out', merged]);
    const info = cli(['bank', 'info', path]);
    const infoLines = info.stdout.split('\n').length - 1;
    const cs = `${s.classes.toLocaleString('en-US')} classes`;
    const figures: ScaleFigure[] = [
      {
        name: `bank size, ${cs} x ${s.perClass.toLocaleString('en-US')} fingerprints`,
        value: mb,
        unit: 'MB',
        goal: 100,
      },
      { name: 'write (atomic, fsync)', value: writeS, unit: 's' },
      { name: 'readBank (read, checksum, validation)', value: readS, unit: 's' },
      { name: 'load: readBank + native scorer', value: loadS, unit: 's', goal: 1 },
      { name: 'describeBank (what bank info computes)', value: describeS, unit: 's' },
      { name: `merge of ${s.shards} shards, in-process`, value: mergeS, unit: 's', goal: 10 },
      { name: `nfp bank merge of ${s.shards} shards (${mergeCli.how})`, value: mergeCli.seconds, unit: 's', goal: 10 },
      {
        name: `nfp bank info (${info.how}), ${infoLines.toLocaleString('en-US')} lines`,
        value: info.seconds,
        unit: 's',
      },
    ].map((f) => (f.goal === undefined ? f : { ...f, met: f.value <= f.goal }));
    const resnet = await resnetFigures(quick);
    return {
      settings: s,
      figures: [...figures, ...resnet.figures],
      resnet: resnet.resnet,
      infoLines,
      note:
        'synthetic bank (no 1,000-class data set here): k = 1, 2 attack families, ' +
        `${s.neurons.toLocaleString('en-US')} neurons, random statistics`,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function printScale(r: ScaleResult): void {
  printTable(
    `scale: ${r.note}`,
    ['measure', 'value', 'goal', 'met'],
    r.figures.map((f) => [
      f.name,
      `${f.value.toFixed(f.unit === 's' ? 3 : 1)} ${f.unit}`,
      f.goal === undefined ? '-' : `<= ${f.goal} ${f.unit}`,
      f.met === undefined ? '' : f.met ? 'yes' : 'NO',
    ]),
  );
}

if (isMain(import.meta.url)) {
  const { quick } = benchEnv();
  const m = machine();
  const result = await benchScale(scaleSettings(quick), quick);
  printScale(result);
  if (result.resnet !== undefined && 'skipped' in result.resnet) console.log(result.resnet.skipped);
  console.log(`\nwrote ${writeResult('scale', m, { machine: m, ...result })}`);
}
