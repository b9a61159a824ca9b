// The adaptive evaluation of docs/security.md on the shipped Fashion-MNIST test set: a deployed bank
// and (T2) an attacker's bank fitted on other rows, attacked images from rows neither saw. Writes
// adaptive.json and adaptive.md into --out. Minutes to tens of minutes: a script, not a test.
//
//   npx tsx scripts/adaptive-eval.ts --bank deployed.nfp --attacker-bank attacker.nfp --start 7500 \
//     --settings 'eps=0.1;weights=1;steps=100;images=100' --out adaptive/
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { readBank } from '../src/bank/index.js';
import { loadFashionMnist } from '../src/data/index.js';
import { adaptiveExperiment, adaptiveMarkdown, parseAdaptiveSettings } from '../src/experiment/index.js';
import { packageRoot } from '../src/paths.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: join(packageRoot, 'models', 'fmnist-cnn.onnx') },
    bank: { type: 'string' },
    'attacker-bank': { type: 'string' },
    start: { type: 'string', default: '7500' },
    settings: { type: 'string', default: '' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string', default: 'adaptive' },
  },
});
if (values.bank === undefined) throw new Error('--bank is required');
const bank = readBank(values.bank);
const attackerBank = values['attacker-bank'] !== undefined ? readBank(values['attacker-bank']) : undefined;
const settings = parseAdaptiveSettings(values.settings);
const test = loadFashionMnist({ split: 'test' });
const per = 784;
const start = Number(values.start);
const total = test.labels.length;
const cal = bank.header.fit.data?.calibration;
if (cal === undefined) throw new Error('the bank records no calibration rows of this data');
const started = performance.now();
const results = await adaptiveExperiment({
  model: values.model,
  bank,
  ...(attackerBank ? { attackerBank } : {}),
  images: { data: test.data.subarray(start * per, total * per), dims: [total - start, 1, 28, 28] },
  labels: test.labels.subarray(start),
  firstRow: start,
  calibration: { data: test.data.subarray(cal[0] * per, cal[1] * per), dims: [cal[1] - cal[0], 1, 28, 28] },
  settings,
  seed: Number(values.seed),
  onProgress: (stage) => process.stderr.write(`${((performance.now() - started) / 1000).toFixed(0)}s ${stage}\n`),
});
mkdirSync(values.out, { recursive: true });
writeFileSync(join(values.out, 'adaptive.json'), `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(values.out, 'adaptive.md'), adaptiveMarkdown(results));
process.stdout.write(adaptiveMarkdown(results));
