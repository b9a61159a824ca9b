// Does a model exported the ways published models come still predict and fall to PGD as PyTorch's
// does? For each export of fmnist-cnn that scripts/export_variants.py writes (old opsets, a fixed
// batch of 1, channels-last input, probabilities out): accuracy on the 10,000 Fashion-MNIST test
// images and the success rate of PGD (L-inf, eps 0.1, 20 steps, random start; success counts images
// the model already gets wrong) on the first 1,000, against PyTorch's own figures for the model
// (the model card's test accuracy; scripts/torch_attacks.py pgd, run here when /usr/bin/python3 has torch).
//   /usr/bin/python3 scripts/export_variants.py && npx tsx scripts/export-variants.ts [--n 1000] [--markdown]
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { pythonWith } from '../bench/machine.js';
import { PGD } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { gatherImages, imagesForModel, loadFashionMnist } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';

const args = process.argv.slice(2);
const n = Number(args[args.indexOf('--n') + 1] ?? 1000) || 1000;
const dir = join(packageRoot, 'models', 'cache', 'variants');
const card = JSON.parse(readFileSync(join(packageRoot, 'models', 'fmnist-cnn.json'), 'utf8')) as {
  test_accuracy: number;
};

let torchPgd: number | undefined;
const python = pythonWith(['torch']);
if (python !== undefined) {
  const script = join(packageRoot, 'scripts', 'torch_attacks.py');
  const out = execFileSync(
    python,
    [script, 'pgd', '--model', 'fmnist-cnn', '--n', String(n), '--eps', '0.1', '--steps', '20'],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  torchPgd = (JSON.parse(out.trim().split('\n').pop()!) as { successRate: number }).successRate;
}

const rows: string[][] = [];
for (const file of readdirSync(dir)
  .filter((f) => f.endsWith('.onnx'))
  .sort()) {
  const model = await GradientModel.load(join(dir, file), { taps: [], batchSize: 128 });
  try {
    const nchw = loadFashionMnist({ split: 'test' });
    const test = { ...imagesForModel(nchw, model.inputShape, model.layout), labels: nchw.labels };
    const started = performance.now();
    const logits = await model.logits(test);
    let correct = 0;
    for (let i = 0; i < test.labels.length; i++) {
      const z = logits.subarray(i * 10, (i + 1) * 10);
      if (z.indexOf(Math.max(...z)) === test.labels[i]) correct++;
    }
    const accuracy = correct / test.labels.length;
    const first = Array.from({ length: n }, (_, i) => i);
    const images = gatherImages(test, first);
    const run = await new PGD({ eps: 0.1, steps: 20 }).run(model, images, {
      labels: test.labels.subarray(0, n),
      seed: 1,
    });
    const success = run.success.reduce((a, v) => a + v, 0) / n;
    const seconds = (performance.now() - started) / 1000;
    const c = model.classifier;
    rows.push([
      file.replace(/^fmnist-cnn\.|\.onnx$/g, ''),
      `${c.layout}, batch ${c.fixedBatch ?? 'free'}, ${c.outputKind}`,
      accuracy.toFixed(4),
      card.test_accuracy.toFixed(4),
      success.toFixed(3),
      torchPgd === undefined ? '' : torchPgd.toFixed(3),
      torchPgd === undefined ? '' : `${((success - torchPgd) * 100).toFixed(1)}`,
      seconds.toFixed(1),
    ]);
    process.stderr.write(`${rows.at(-1)!.join('  ')}\n`);
  } finally {
    await model.release();
  }
}
const header = ['export', 'input and output', 'accuracy', 'PyTorch', `PGD success (${n})`, 'PyTorch', 'points', 's'];
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
