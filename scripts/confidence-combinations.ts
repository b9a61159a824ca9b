// Ways to combine the confidence term's standardized statistics (one z per attack family, one for
// the logit margin), compared offline on one bank (outside CI; about 4 minutes on the CNN):
//   npx tsx scripts/confidence-combinations.ts --model fmnist-cnn --bank bank.nfp
// The bank (fitted on test images 0-5,999, e.g. by nfp fit --limit 8000 --calibrate-share 0.25) is
// recalibrated with the confidence term on 6,000-7,999; the held-out correctly classified images of
// 8,000-9,999 and up to 500 of them attacked (PGD, FGSM, MI-FGSM at eps 0.1, DeepFool, CW-L2, CW-L2
// kappa 5) are scored over 3 draws. Each rule gets per-class thresholds for 5% FPR on the calibration
// rows (10 draws); prints its measured FPR and AUC per attack as a markdown table.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { createAttacks } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { gatherImages, loadFashionMnist } from '../src/data/index.js';
import type { ImageBatch } from '../src/data/index.js';
import { FingerprintDetector, standardizedStatistics, thresholdFor } from '../src/detect/index.js';
import { auc, rateAbove } from '../src/eval/index.js';
import { packageRoot } from '../src/paths.js';

const { values: args } = parseArgs({
  options: { model: { type: 'string', default: 'fmnist-cnn' }, bank: { type: 'string' } },
});
if (args.bank === undefined) throw new Error('--bank <bank.nfp> is required');
const modelPath = join(packageRoot, 'models', `${args.model}.onnx`);
const card = JSON.parse(readFileSync(join(packageRoot, 'models', `${args.model}.json`), 'utf8')) as {
  detectorTaps: { tensors: string[] };
};

/** One scored image: its predicted class and z = [family z..., margin z]. */
interface Scored {
  label: number;
  z: number[];
}

/** Combination rules: z's last entry is the margin's, the others the families'. */
const rules: Array<[string, (z: number[]) => number]> = [
  ["largest z (the library's)", (z) => Math.max(...z)],
  ['fingerprint z alone', (z) => Math.max(...z.slice(0, -1))],
  ['margin z alone', (z) => z.at(-1)!],
  ['sum of positive z', (z) => z.reduce((a, v) => a + Math.max(v, 0), 0)],
  [
    'log-sum-exp of z',
    (z) => {
      const m = Math.max(...z);
      return m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
    },
  ],
  ['Gaussian tails multiplied (Fisher)', (z) => z.reduce((a, v) => a - logUpperTail(v), 0)],
  ['largest fingerprint z + margin z', (z) => Math.max(...z.slice(0, -1)) + z.at(-1)!],
  ['largest of fingerprint z and margin z + 1', (z) => Math.max(...z.slice(0, -1), z.at(-1)! + 1)],
  ['largest of fingerprint z and margin z + 3', (z) => Math.max(...z.slice(0, -1), z.at(-1)! + 3)],
  ['largest of fingerprint z and margin z - 1', (z) => Math.max(...z.slice(0, -1), z.at(-1)! - 1)],
  ['largest of fingerprint z and margin z - 2', (z) => Math.max(...z.slice(0, -1), z.at(-1)! - 2)],
];

/** log P(N(0,1) > z), with the asymptotic series far in the tail where 1 - Phi underflows. */
function logUpperTail(z: number): number {
  if (z < 5) return Math.log(0.5 * erfc(z / Math.SQRT2));
  return -0.5 * z * z - Math.log(z * Math.sqrt(2 * Math.PI)) + Math.log(1 - 1 / (z * z));
}

/** erfc by the Numerical Recipes Chebyshev fit (relative error < 1.2e-7). */
function erfc(x: number): number {
  const t = 1 / (1 + 0.5 * Math.abs(x));
  const y =
    t *
    Math.exp(
      -x * x -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? y : 2 - y;
}

const test = loadFashionMnist({ split: 'test' });
const rows = (a: number, b: number): ImageBatch => ({
  data: test.data.subarray(a * 784, b * 784),
  dims: [b - a, 1, 28, 28],
});
const detector = await FingerprintDetector.load({ model: modelPath, bank: args.bank, confidence: true, seed: 3 });
await detector.calibrate(rows(6000, 8000));
const cal = detector.bank.header.calibration!.confidence!;
const families = detector.bank.families;

async function standardized(images: ImageBatch, draws: number): Promise<Scored[]> {
  const out = await detector.classifier.run(images as ImageBatch);
  const scored: Scored[] = [];
  for (let d = 0; d < draws; d++) {
    const s = await detector.scoreActivations(out.activations, out.labels, { logits: out.logits });
    out.labels.forEach((c, i) => {
      scored.push({
        label: c,
        z: standardizedStatistics(cal, c, s.familySums!.subarray(i * families, (i + 1) * families), s.confidence![i]!),
      });
    });
  }
  return scored;
}

const calibration = await standardized(rows(6000, 8000), 10);
const held = rows(8000, 10000);
const heldOut = await detector.classifier.run(held);
const truth = test.labels.subarray(8000);
const correct = [...heldOut.labels.keys()].filter((i) => heldOut.labels[i] === truth[i]);
const clean = await standardized(gatherImages(held, correct), 3);
const sources = correct.slice(0, 500);
const attackModel = await GradientModel.load(modelPath, { taps: card.detectorTaps.tensors, batchSize: 128 });
const attacked = new Map<string, Scored[]>();
const suite = [
  ...createAttacks(['pgd', 'fgsm', 'mifgsm', 'deepfool', 'cw'], { eps: 0.1 }),
  { ...createAttacks(['cw'], { kappa: 5 })[0]!, name: 'cw-kappa5' },
];
for (const spec of suite) {
  const run = await spec.attack.run(attackModel, gatherImages(held, sources), {
    labels: Int32Array.from(sources, (i) => truth[i]!),
    seed: 1,
  });
  const hit = [...run.success.keys()].filter((i) => run.success[i]);
  attacked.set(spec.name, await standardized(gatherImages({ data: run.adv, dims: run.dims }, hit), 3));
  process.stderr.write(`${spec.name}: ${hit.length} adversarial of ${sources.length}\n`);
}
await attackModel.release();

console.log(`| rule | FPR | ${[...attacked.keys()].join(' | ')} |`);
console.log(`|---|---|${[...attacked.keys()].map(() => '---|').join('')}`);
for (const [name, rule] of rules) {
  const classes = detector.bank.header.model.classes;
  const thresholds = Array.from({ length: classes }, (_, c) =>
    thresholdFor(
      calibration.filter((s) => s.label === c).map((s) => rule(s.z)),
      0.05,
    ),
  );
  const margins = (set: Scored[]) => set.map((s) => rule(s.z) - thresholds[s.label]!);
  const cleanMargins = margins(clean);
  const aucs = [...attacked.values()].map((set) => auc(cleanMargins, margins(set)).toFixed(4));
  console.log(`| ${name} | ${rateAbove(cleanMargins, 0).toFixed(3)} | ${aucs.join(' | ')} |`);
}
await detector.release();
