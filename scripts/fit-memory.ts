// The fit-memory check of a large model: one class of the ResNet-50 from
// scripts/export_fit_memory_model.py fitted with the default wide taps, on random images labelled by
// the model's own predictions. Run it under /usr/bin/time -v for the peak RSS:
//
//   /usr/bin/python3 scripts/export_fit_memory_model.py
//   /usr/bin/time -v npx tsx scripts/fit-memory.ts [images] [clean per class] [attacked per class]
import { join } from 'node:path';

import { fitExperiment } from '../src/experiment/index.js';
import { Classifier } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../src/random.js';

const [images = 200, clean = 20, attacked = 10] = process.argv.slice(2).map(Number);
const model = join(packageRoot, 'models', 'cache', 'resnet50-10-224.onnx');
const rng = new SeededRandom(12345);
const data = Float32Array.from({ length: images * 3 * 224 * 224 }, () => rng.next());
const dims = [images, 3, 224, 224];
const classifier = await Classifier.load(model, { taps: [], batchSize: 8 });
const { labels } = await classifier.run({ data, dims });
await classifier.release();
const counts = new Map<number, number>();
for (const l of labels) counts.set(l, (counts.get(l) ?? 0) + 1);
const [cls] = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]!;
const { summary } = await fitExperiment({
  model,
  data: { images: { data, dims }, labels, source: 'random', digest: '0'.repeat(64), total: images },
  classes: [cls],
  cleanPerClass: clean,
  attackedPerClass: attacked,
  attacks: ['pgd', 'fgsm'],
  attack: { eps: 0.03, steps: 3 },
  calibrateShare: 0,
  seed: 1,
  onMessage: (line) => process.stderr.write(`${line}\n`),
});
process.stdout.write(
  `${JSON.stringify({ class: cls, ...summary, rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20) })}\n`,
);
