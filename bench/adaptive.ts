// `npx tsx bench/adaptive.ts` (npm run bench:adaptive): the time of one adaptive PGD step (a forward with
// the bank's taps, the term's activation gradient, and a gradient run seeded on the taps; or, lagged,
// one run that does both) against one plain PGD step (a gradient run without taps), on the committed
// fmnist-cnn, in one run. Ratio = adaptive step / plain step (the goal: <= 1.3). The last rows
// time the parts of an EOT step alone (forward with taps, the term, the seeded gradient run), to show where it goes.
// Options (env): NFP_BENCH_BANK (a bank for the model; default: the small test bank, fitted here in
// seconds), NFP_BENCH_BATCH (default 100 images), NFP_BENCH_STEPS (default 20), NFP_BENCH_REPS (default 2).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { AdaptivePGD, DetectorTerm, tappedModel } from '../src/attacks/adaptive/index.js';
import { PGD } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { readBank } from '../src/bank/index.js';
import { loadFashionMnist } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';
import { writeSmallBank } from '../test/reference/small-bank.js';
import { bestOf, machine, printTable } from './machine.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const batch = Number(process.env.NFP_BENCH_BATCH ?? 100);
const steps = Number(process.env.NFP_BENCH_STEPS ?? 20);
const reps = Number(process.env.NFP_BENCH_REPS ?? 2);

const temp = mkdtempSync(join(tmpdir(), 'nfp-bench-adaptive-'));
try {
  let bankPath = process.env.NFP_BENCH_BANK;
  if (bankPath === undefined) {
    bankPath = join(temp, 'small.nfp');
    await writeSmallBank(modelPath, bankPath);
  }
  const bank = readBank(bankPath);
  const test = loadFashionMnist({ split: 'test' });
  const images = { data: test.data.subarray(9000 * 784, (9000 + batch) * 784), dims: [batch, 1, 28, 28] };
  const labels = test.labels.slice(9000, 9000 + batch);
  // As the evaluation loads them: the plain attack's model has no taps, the adaptive one the bank's.
  const plainModel = await GradientModel.load(modelPath, { taps: [], batchSize: batch });
  const tapped = await GradientModel.load(modelPath, { taps: bank.tapRequests, batchSize: batch });
  const model = tappedModel(tapped);
  try {
    const threshold = () => 0;
    const eot = DetectorTerm.expectation(bank, { draws: 25, combine: 'max', threshold });
    const fixed = DetectorTerm.staticDraw(bank, { draws: 25, combine: 'max', threshold });
    const perStep = (seconds: number) => seconds / steps;
    const plain = perStep(
      await bestOf(
        reps,
        () => new PGD({ eps: 0.1, steps, loss: 'margin' }).run(plainModel, images, { labels, seed: 1 }),
        1,
      ),
    );
    const cases: Array<[string, DetectorTerm, 'exact' | 'lagged' | 'fused']> = [
      ['static draw', fixed, 'exact'],
      ['EOT (every fingerprint)', eot, 'exact'],
      ['static draw, lagged seed', fixed, 'lagged'],
      ['EOT, lagged seed', eot, 'lagged'],
      ['static draw, fused (one run per step)', fixed, 'fused'],
      ['EOT, fused (one run per step)', eot, 'fused'],
    ];
    const rows: string[][] = [['plain PGD (margin)', (plain * 1000).toFixed(1), '1.00']];
    for (const [name, term, mode] of cases) {
      const lagged = mode === 'lagged';
      const fused = mode === 'fused';
      const t = perStep(
        await bestOf(
          reps,
          () => new AdaptivePGD(term, { eps: 0.1, steps, lagged, fused }).run(model, images, { labels, seed: 1 }),
          1,
        ),
      );
      rows.push([name, (t * 1000).toFixed(1), (t / plain).toFixed(2)]);
    }
    // Where a (non-lagged) EOT step's time goes: its three parts, each alone, against the plain step (the
    // images' own labels: the term groups rows by class, one native call per class).
    const labelsNow = Int32Array.from(labels);
    const logitSeed = new Float32Array(batch * tapped.classes);
    labelsNow.forEach((c, i) => {
      logitSeed[i * tapped.classes + c] = 1;
    });
    const { activations } = await model.forward(images);
    const { seed: tapSeed } = await eot.evaluate(activations, labelsNow, true);
    const parts: Array<[string, () => Promise<unknown>]> = [
      ['  of which: forward with the taps', () => model.forward(images)],
      ['  of which: the term and its activation gradient', () => eot.evaluate(activations, labelsNow, true)],
      [
        '  of which: the gradient run seeded on the taps',
        () => tapped.gradient(images, { logitSeed, tapSeed: tapSeed!, activations: false }),
      ],
      ['plain gradient run (no taps), for scale', () => plainModel.gradient(images, { logitSeed, activations: false })],
    ];
    for (const [name, run] of parts) {
      const t = await bestOf(Math.max(reps, 3) * 2, run, 1);
      rows.push([name, (t * 1000).toFixed(1), (t / plain).toFixed(2)]);
    }
    const m = machine();
    printTable(
      `adaptive PGD step vs plain PGD step: fmnist-cnn, batch ${batch}, ${bank.header.neurons} tapped neurons, ` +
        `${bank.fingerprints} fingerprints (${m.cpu}, ${m.cores} cores)`,
      ['step', 'ms / step', 'ratio'],
      rows,
    );
  } finally {
    await plainModel.release();
    await tapped.release();
  }
} finally {
  rmSync(temp, { recursive: true, force: true });
}
