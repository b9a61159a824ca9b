// Why the static-draw attack misses (docs/security.md): attacks 30 held-out images (rows 7,500 on) with
// AdaptivePGD against the deployed bank's static draw (eps 0.1, 100 steps, weight 1, the bank's global
// threshold), then prints for each misclassified image its slack and how many of the 25 drawn neurons
// sit at exactly 0 (a ReLU that is off), with the first four drawn neurons' activation and clean and
// attacked statistics.
//   npx tsx scripts/adaptive-static-diagnosis.ts --bank deployed.nfp
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { AdaptivePGD, DetectorTerm, tappedModel } from '../src/attacks/adaptive/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { readBank } from '../src/bank/index.js';
import { loadFashionMnist } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';

const { values } = parseArgs({ options: { bank: { type: 'string' }, images: { type: 'string', default: '30' } } });
if (values.bank === undefined) throw new Error('--bank is required');
const bank = readBank(values.bank);
const threshold = bank.header.calibration?.global;
if (threshold === undefined) throw new Error('the bank is not calibrated');
const grad = await GradientModel.load(join(packageRoot, 'models', 'fmnist-cnn.onnx'), { taps: bank.tapRequests });
try {
  const model = tappedModel(grad);
  const test = loadFashionMnist({ split: 'test' });
  const n = Number(values.images);
  const images = { data: test.data.slice(7500 * 784, (7500 + n) * 784), dims: [n, 1, 28, 28] };
  const labels = test.labels.slice(7500, 7500 + n);
  const term = DetectorTerm.staticDraw(bank, { draws: 25, combine: 'max', threshold: () => threshold });
  const r = await new AdaptivePGD(term, { eps: 0.1, steps: 100, weight: 1 }).run(model, images, { labels, seed: 1 });
  const { logits, activations } = await model.forward({ data: r.adv, dims: images.dims });
  const neurons = bank.header.neurons;
  const predicted = Int32Array.from({ length: n }, (_, i) => {
    const row = logits.subarray(i * 10, i * 10 + 10);
    return row.indexOf(Math.max(...row));
  });
  const { slack } = await term.evaluate(activations, predicted, false);
  const { mu0, sd0, mu1, indices } = bank.arrays;
  for (let i = 0; i < n; i++) {
    if (predicted[i] === labels[i]) continue;
    const { start, count } = bank.range(predicted[i]!);
    let dead = 0;
    const shown: string[] = [];
    for (let j = 0; j < Math.min(25, count); j++) {
      const id = start + j;
      const a = activations[i * neurons + indices[id]!]!;
      if (a === 0) dead++;
      if (j < 4)
        shown.push(
          `a ${a.toFixed(3)} mu0 ${mu0[id]!.toFixed(3)} sd0 ${sd0[id]!.toFixed(4)} mu1 ${mu1[id]!.toFixed(3)}`,
        );
    }
    const verdict = slack[i]! < 0 ? 'passes' : 'flagged';
    console.log(
      `image ${i}: ${labels[i]} -> ${predicted[i]}, slack ${slack[i]!.toFixed(1)} (${verdict}), ${dead} of 25 at 0`,
    );
    console.log(`  ${shown.join(' | ')}`);
  }
} finally {
  await grad.release();
}
