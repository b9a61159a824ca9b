// `npx tsx bench/detect.ts` (npm run bench:detect): the cost of detect() over the inference it
// needs anyway, measured in one run, the paths interleaved: bare ONNX Runtime inference with the
// outputs detect() fetches (one session.run per batch, on the detector's own session) vs
// FingerprintDetector.detect() on the same batch (inference, crypto draws, native scoring); the plain
// model (its own session, logits only: what a service pays without the detector); and detect() as it
// was before the readout, fetching the whole tapped layers (a detector loaded with readout: false).
//   ResNet-50 (random weights, 224x224, batch 32; models/cache/resnet50-224.onnx from
//   /usr/bin/python3 models/export_torchvision.py --arch resnet50) with taps 'auto' (penultimate
//   2,048 + logits 1,000) and a bank of 200 random fingerprints per class (k = 10, 2 families);
//   the committed fmnist-cnn at batch 32 and 256 with five taps and 2,000 fingerprints per class
//   (k = 10), and at batch 32 as `nfp fit` deploys it: the model card's taps (54,602 neurons), k = 1,
//   the strongest 100 per class (the default top-K), and the same over the five cheap taps.
// Scores do not depend on what the fingerprints are, so a random bank measures the real cost (a
// real bank's fingerprints crowd into fewer layers, so its readout is, if anything, smaller).
// Options (env): NFP_BENCH_REPS (default 5; a fast model gets more, about 2 s of bare inference, at most
// 500), NFP_BENCH_QUICK=1 (CNN only).
// benchDetect is also the detect section of `npm run bench` (bench/all.ts).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import * as ort from 'onnxruntime-node';

import { defaultScreenSettings } from '../src/bank/fit.js';
import { FingerprintDetector } from '../src/detect/index.js';
import { Classifier } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';
import { randomFingerprintBank } from '../test/reference/random-bank.js';
import { TestRandom } from '../test/reference/random.js';
import { benchEnv, bestOf, isMain, machine, printTable, row, writeResult } from './machine.js';
import type { Row } from './machine.js';

export interface DetectCase {
  name: string;
  path: string;
  batch: number;
  taps: 'auto' | 'default' | string[];
  /** Neurons per fingerprint. */
  k: number;
  perClass: number;
  draws: number;
}
export interface DetectRow {
  model: string;
  batch: number;
  neurons: number;
  bareS: number;
  detectS: number;
  overhead: number;
  /**
   * The median detect() time over the median bare time, minus 1: what a typical call pays, less
   * sensitive on a machine whose speed drifts than the ratio of two minima (one lucky run each).
   */
  medianOverhead: number;
  /** Values per image detect() fetches from the model (the readout), and the whole tapped layers'. */
  fetched: number;
  wholeFetched: number;
  /** The plain model, logits only (its own session), and detect() over it. */
  plainS: number;
  plainOverhead: number;
  /** detect() fetching the whole tapped layers (readout: false), and its overhead over the plain model. */
  wholeS: number;
  wholePlainOverhead: number;
  k: number;
}
export interface DetectOptions {
  cases: DetectCase[];
  reps: number;
}

async function measure(c: DetectCase, reps: number): Promise<DetectRow> {
  const rnd = new TestRandom(1);
  const bytes = new Uint8Array(await readFile(c.path));
  const classifier = await Classifier.load(bytes, { taps: c.taps, batchSize: c.batch });
  const images = {
    data: rnd.floats(c.batch * classifier.inputShape.reduce((a, v) => a * v, 1), 0, 1),
    dims: [c.batch, ...classifier.inputShape],
  };
  const bank = randomFingerprintBank(rnd, classifier, { k: c.k, perClass: () => c.perClass });
  const load = (readout: boolean) =>
    FingerprintDetector.load({ model: bytes, bank, threshold: 0, draws: c.draws, batchSize: c.batch, readout });
  const detector = await load(true);
  const whole = await load(false);
  const plain = await ort.InferenceSession.create(bytes);
  // Bare: one run of the detector's own ONNX Runtime session with the outputs detect() fetches, left as
  // ONNX Runtime returns them. The same session, not a second one built alike: a session's threads spin
  // for a while after each run, so a second session's first run in each block paid for the other's
  // spinning threads (detect() then read as 10-24% faster than bare inference on the card taps). The
  // plain model and the whole-layer detector have sessions of their own: the first call of each of
  // their blocks may pay so (the medians are the steadier figures).
  const session = await detector.classifier['tapSession']();
  const outputs = detector.classifier.tapOutputs;
  const feeds = { [detector.classifier.inputName]: new ort.Tensor('float32', images.data, images.dims) };
  const paths: Array<() => Promise<unknown>> = [
    () => session.run(feeds, outputs),
    () => detector.detect(images),
    () => plain.run(feeds),
    () => whole.detect(images),
  ];
  for (const p of paths) await p();
  // A fast model gets more repetitions, about 2 s of bare inference (at most 500): on a shared machine
  // the best of a handful of 3 ms calls is noise of +-5%.
  const once = await bestOf(1, paths[0]!);
  const repeats = Math.max(reps, Math.min(500, Math.floor(2 / once)));
  // Blocks of a few calls of each path, the order rotating from block to block (whichever runs first
  // pays for what ran before it).
  const times: number[][] = paths.map(() => []);
  const perBlock = 5;
  for (let r = 0; r < Math.ceil(repeats / perBlock); r++) {
    for (let j = 0; j < paths.length; j++) {
      const p = (r + j) % paths.length;
      for (let i = 0; i < perBlock; i++) times[p]!.push(await bestOf(1, paths[p]!));
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const [bareS, detectS, plainS, wholeS] = times.map((t) => Math.min(...t)) as [number, number, number, number];
  const row: DetectRow = {
    model: c.name,
    batch: c.batch,
    neurons: classifier.neurons,
    bareS,
    detectS,
    overhead: detectS / bareS - 1,
    medianOverhead: median(times[1]!) / median(times[0]!) - 1,
    fetched: detector.classifier.fetchedPerImage,
    wholeFetched: whole.classifier.fetchedPerImage,
    plainS,
    plainOverhead: median(times[1]!) / median(times[2]!) - 1,
    wholeS,
    wholePlainOverhead: median(times[3]!) / median(times[2]!) - 1,
    k: c.k,
  };
  await Promise.all([detector.release(), whole.release(), plain.release(), classifier.release()]);
  return row;
}

const cnnTaps = [
  '/features/pool1/MaxPool_output_0',
  '/features/pool2/MaxPool_output_0',
  '/features/pool3/MaxPool_output_0',
  '/classifier/relu/Relu_output_0',
  'logits',
];
export const resnet50 = join(packageRoot, 'models', 'cache', 'resnet50-224.onnx');
export const resnet50Missing =
  `${resnet50} is missing; make it with\n  /usr/bin/python3 ` + `models/export_torchvision.py --arch resnet50`;

/** The cases measured, and a line for each one left out (quick mode, or a model not exported). */
export function detectCases(quick: boolean): { cases: DetectCase[]; skipped: string[] } {
  const cases: DetectCase[] = [],
    skipped: string[] = [];
  if (quick) skipped.push('ResNet-50: skipped in quick mode');
  else if (existsSync(resnet50))
    cases.push({
      name: 'torchvision resnet50 (random)',
      path: resnet50,
      batch: 32,
      taps: 'auto',
      k: 10,
      perClass: 200,
      draws: 25,
    });
  else skipped.push(`skipping ResNet-50: ${resnet50Missing}`);
  for (const batch of [32, 256])
    cases.push({
      name: 'fmnist-cnn',
      path: join(packageRoot, 'models', 'fmnist-cnn.onnx'),
      batch,
      taps: cnnTaps,
      k: 10,
      perClass: 2000,
      draws: 25,
    });
  // What `nfp fit` deploys: single neurons (k = 1) over the model card's wide taps, the strongest 100
  // per class (defaultScreenSettings.topK).
  cases.push({
    name: 'fmnist-cnn, card taps',
    path: join(packageRoot, 'models', 'fmnist-cnn.onnx'),
    batch: 32,
    taps: 'default',
    k: 1,
    perClass: defaultScreenSettings.topK,
    draws: 25,
  });
  // The same over the cheap taps alone (pools, dense ReLU, logits: no convolution ReLU), the speed side
  // of the trade in docs/results.md, *Taps and speed*.
  cases.push({
    name: 'fmnist-cnn, pools taps',
    path: join(packageRoot, 'models', 'fmnist-cnn.onnx'),
    batch: 32,
    taps: cnnTaps,
    k: 1,
    perClass: defaultScreenSettings.topK,
    draws: 25,
  });
  return { cases, skipped };
}

export function detectReps(): number {
  return benchEnv().reps ?? 5;
}

export async function benchDetect({ cases, reps }: DetectOptions): Promise<DetectRow[]> {
  const rows: DetectRow[] = [];
  for (const c of cases) {
    process.stderr.write(`measuring ${c.name} at batch ${c.batch} ...\n`);
    rows.push(await measure(c, reps));
  }
  return rows;
}

const pct = (v: number) => `${v >= 0 ? '+' : ''}${(v * 100).toFixed(1)}%`;

/** The detect section of `npm run bench`: detect() images/s against bare inference's and the plain model's. */
export function detectRows(rows: DetectRow[], skipped: string[]): Row[] {
  return [
    ...rows.map((r) =>
      row(
        'detect',
        `${r.model}, batch ${r.batch}, k = ${r.k}: detect() vs bare ORT inference with the same outputs ` +
          `(${r.fetched} values per image; overhead ${pct(r.overhead)}; of the medians ${pct(r.medianOverhead)})`,
        { value: r.batch / r.detectS, unit: 'img/s' },
        { value: r.batch / r.bareS, unit: 'img/s' },
      ),
    ),
    ...rows.map((r) =>
      row(
        'detect',
        `${r.model}, batch ${r.batch}: detect() vs the plain model, logits only (medians ${pct(r.plainOverhead)}; ` +
          `fetching the whole tapped layers, ${r.wholeFetched} values per image, ${pct(r.wholePlainOverhead)})`,
        { value: r.batch / r.detectS, unit: 'img/s' },
        { value: r.batch / r.plainS, unit: 'img/s' },
      ),
    ),
    ...skipped.map((line) => row('detect', line.replace(/\n\s*/g, ' '))),
  ];
}

async function main(): Promise<void> {
  const { quick } = benchEnv();
  const reps = detectReps();
  const { cases, skipped } = detectCases(quick);
  // Quick mode has always left ResNet-50 out without a word; only a missing export is reported.
  for (const line of skipped) if (!quick) console.error(line);
  const m0 = machine();
  console.log(
    `machine: ${m0.cpu}, ${m0.cores} cores, ${m0.memoryGiB} GiB, ${m0.platform}, node ${m0.node}, onnxruntime-node ${ort.env.versions.common ?? '?'}, native backend ${m0.backend} (${m0.threads} threads)`,
  );
  console.log(
    `25 draws per image, 2 attack families; best of ${reps} (more for a fast model), the paths interleaved ` +
      'in blocks of 5 calls; overhead of the best calls, and of the median calls',
  );
  const rows = await benchDetect({ cases, reps });
  printTable(
    'detect() vs bare ONNX Runtime inference with the outputs it fetches, and vs the plain model',
    [
      'model',
      'batch',
      'k',
      'neurons',
      'fetched',
      'bare img/s',
      'detect img/s',
      'overhead',
      'of medians',
      'plain img/s',
      'vs plain (medians)',
      'whole layers fetched',
      'whole-layer detect img/s',
      'vs plain (medians)',
    ],
    rows.map((r) => [
      r.model,
      String(r.batch),
      String(r.k),
      String(r.neurons),
      String(r.fetched),
      (r.batch / r.bareS).toFixed(1),
      (r.batch / r.detectS).toFixed(1),
      pct(r.overhead),
      pct(r.medianOverhead),
      (r.batch / r.plainS).toFixed(1),
      pct(r.plainOverhead),
      String(r.wholeFetched),
      (r.batch / r.wholeS).toFixed(1),
      pct(r.wholePlainOverhead),
    ]),
  );
  const file = writeResult('detect', m0, { machine: m0, reps, rows });
  console.log(`\nwrote ${file}`);
}

if (isMain(import.meta.url)) await main();
