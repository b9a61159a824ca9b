// Do other detectors catch the examples an EOT attacker made against the fingerprint bank? The peer
// detectors (Mahalanobis, LID, feature squeezing) are fitted as docs/results.md fits them (the bank's fit
// rows: clean images and PGD + FGSM at eps 0.1, untargeted, on up to --fit-sources correctly classified
// ones), calibrated at 5% FPR on the bank's calibration rows, and score the misclassified examples of plain
// PGD and of EOT PGD against the bank (weight --weight, 100 steps) on the first --images correctly
// classified images from --start. This is a transfer test: the attacker did not aim at these detectors.
//   npx tsx scripts/adaptive-transfer.ts --bank deployed.nfp [--start 7500 --images 200 --weight 0.1]
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { AdaptivePGD, DetectorTerm } from '../src/attacks/adaptive/index.js';
import { FGSM, PGD } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { baselineNames, evaluateBaselines } from '../src/baselines/index.js';
import type { BaselineName } from '../src/baselines/index.js';
import { readBank } from '../src/bank/index.js';
import { gatherImages, loadFashionMnist } from '../src/data/index.js';
import type { ImageBatch } from '../src/model/index.js';
import { bankThresholds, correctlyClassified, termOptions } from '../src/experiment/adaptive.js';
import { packageRoot } from '../src/paths.js';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: join(packageRoot, 'models', 'fmnist-cnn.onnx') },
    bank: { type: 'string' },
    baselines: { type: 'string', default: baselineNames.join(',') },
    start: { type: 'string', default: '7500' },
    images: { type: 'string', default: '200' },
    'fit-sources': { type: 'string', default: '1000' },
    weight: { type: 'string', default: '0.1' },
    eps: { type: 'string', default: '0.1' },
    seed: { type: 'string', default: '1' },
  },
});
if (args.bank === undefined) throw new Error('--bank is required');
const bank = readBank(args.bank);
const cal = bank.header.calibration;
const rowsOfBank = bank.header.fit.data;
if (cal === undefined || rowsOfBank?.calibration === undefined) throw new Error('the bank must be calibrated on rows');
const eps = Number(args.eps);
const seed = Number(args.seed);
const per = 784;
const test = loadFashionMnist({ split: 'test' });
const slice = (from: number, to: number): ImageBatch => ({
  data: test.data.subarray(from * per, to * per),
  dims: [to - from, 1, 28, 28],
});
const model = await GradientModel.load(args.model, { taps: bank.tapRequests, batchSize: 100 });
const log = (line: string) => process.stderr.write(`${line}\n`);
try {
  /** The first `limit` rows of [from, to) the model classifies correctly. */
  const correct = (from: number, to: number, limit: number) =>
    correctlyClassified(model, slice(from, to), test.labels.slice(from, to), limit);
  const successful = (run: { adv: Float32Array; dims: number[]; success: Uint8Array }) =>
    gatherImages(
      { data: run.adv, dims: run.dims },
      [...run.success.keys()].filter((i) => run.success[i]),
    );

  const [fitFrom, fitTo] = rowsOfBank.fit;
  const fitClean = { images: slice(fitFrom, fitTo), labels: test.labels.slice(fitFrom, fitTo) };
  const sources = await correct(fitFrom, fitTo, Number(args['fit-sources']));
  log(`fit: ${fitTo - fitFrom} clean rows, PGD and FGSM on ${sources.labels.length}`);
  const attacked: Record<string, ImageBatch> = {};
  for (const [name, attack] of [
    ['pgd', new PGD({ eps })],
    ['fgsm', new FGSM({ eps })],
  ] as const)
    attacked[name] = successful(await attack.run(model, sources.images, { labels: sources.labels, seed }));

  const held = await correct(Number(args.start), test.labels.length, Number(args.images));
  log(`held out: ${held.labels.length} images from row ${args.start}`);
  const plain = await new PGD({ eps, steps: 100, loss: 'margin' }).run(model, held.images, {
    labels: held.labels,
    seed,
  });
  const term = DetectorTerm.expectation(bank, termOptions(bank, cal.draws, cal.combine, bankThresholds(bank)));
  const eot = await new AdaptivePGD(term, { eps, steps: 100, weight: Number(args.weight) }).run(model, held.images, {
    labels: held.labels,
    seed,
  });
  log(
    `misclassified: plain PGD ${plain.success.reduce((a, b) => a + b, 0)}, EOT ${eot.success.reduce((a, b) => a + b, 0)}`,
  );
  const [calFrom, calTo] = rowsOfBank.calibration;
  const result = await evaluateBaselines({
    model,
    baselines: args.baselines.split(',') as BaselineName[],
    fit: { clean: fitClean, attacked },
    calibration: slice(calFrom, calTo),
    heldOut: { clean: held.images, attacked: { 'plain PGD': successful(plain), 'EOT vs the bank': successful(eot) } },
    onProgress: (b, stage, detail) => log(`${b} ${stage}${detail ? ` ${detail}` : ''}`),
  });
  process.stdout.write(
    '| detector | clean FPR (held out) | attack | misclassified examples | AUC | detected at 5% FPR |\n',
  );
  process.stdout.write('|---|---|---|---|---|---|\n');
  for (const r of result.baselines)
    for (const a of r.attacks)
      process.stdout.write(
        `| ${r.name} | ${(100 * r.fprAtThreshold).toFixed(1)}% | ${a.attack} | ${a.adversarial} | ` +
          `${a.auc.toFixed(4)} | ${(100 * a.tprAtThreshold).toFixed(1)}% |\n`,
      );
} finally {
  await model.release();
}
