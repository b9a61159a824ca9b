// The attack suite's report (outside CI; minutes): every attack on every committed model, on the
// first N Fashion-MNIST test images, and PGD's success rate against the PyTorch reference
// implementation (scripts/torch_attacks.py) on the same images.
//   npx tsx scripts/attack-report.ts [--n 1000] [--models fmnist-cnn,fmnist-resnet,fmnist-vit]
//       [--attacks fgsm,bim,pgd,pgd-l2,mifgsm,apgd,cw,deepfool,deepfool-linf,square,pgd-t,cw-t,deepfool-t,square-t]
// [--torch]
// Prints a markdown table and writes bench/results/attack-report-<date>.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { createAttack, randomTargets } from '../src/attacks/index.js';
import { SeededRandom } from '../src/random.js';
import type { AttackName, AttackResult, AttackSettings } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { loadFashionMnist } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';
import { machine, pythonWith } from '../bench/machine.js';

interface Setup {
  attack: AttackName;
  settings: AttackSettings;
  targeted: boolean;
}

/** The report's attacks: eps 0.1 (L-inf) and 1.5 (L2) on [0, 1] images; targets drawn at random. */
const setups: Record<string, Setup> = {
  fgsm: { attack: 'fgsm', settings: { eps: 0.1 }, targeted: false },
  bim: { attack: 'bim', settings: { eps: 0.1, steps: 10 }, targeted: false },
  pgd: { attack: 'pgd', settings: { eps: 0.1, steps: 20 }, targeted: false },
  'pgd-l2': { attack: 'pgd', settings: { eps: 1.5, norm: 'l2', steps: 20 }, targeted: false },
  mifgsm: { attack: 'mifgsm', settings: { eps: 0.1, steps: 10 }, targeted: false },
  apgd: { attack: 'apgd', settings: { eps: 0.1, steps: 100 }, targeted: false },
  cw: { attack: 'cw', settings: {}, targeted: false },
  deepfool: { attack: 'deepfool', settings: {}, targeted: false },
  'deepfool-linf': { attack: 'deepfool', settings: { norm: 'linf' }, targeted: false },
  square: { attack: 'square', settings: { eps: 0.1, queries: 1000 }, targeted: false },
  'pgd-t': { attack: 'pgd', settings: { eps: 0.1, steps: 20 }, targeted: true },
  'cw-t': { attack: 'cw', settings: {}, targeted: true },
  'deepfool-t': { attack: 'deepfool', settings: {}, targeted: true },
  'square-t': { attack: 'square', settings: { eps: 0.1, queries: 1000 }, targeted: true },
};

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    models: { type: 'string', default: 'fmnist-cnn,fmnist-resnet,fmnist-vit' },
    attacks: { type: 'string', default: Object.keys(setups).join(',') },
    torch: { type: 'boolean', default: false },
  },
});
const n = Number(values.n);
const test = await loadFashionMnist({ split: 'test' });
const x = test.data.slice(0, n * 784);
const labels = test.labels.slice(0, n);
const targets = randomTargets(labels, 10, new SeededRandom(2026));

interface Row {
  model: string;
  attack: string;
  cleanAccuracy: number;
  success: number;
  successOnCorrect: number;
  medianLinf: number | null;
  medianL2: number | null;
  meanSpent: number;
  spentKind: string;
  seconds: number;
  torchSuccess?: number;
}

const median = (v: number[]) => (v.length === 0 ? null : v.sort((a, b) => a - b)[v.length >> 1]!);
const rows: Row[] = [];
for (const name of values.models.split(',')) {
  const model = await GradientModel.load(join(packageRoot, 'models', `${name}.onnx`), { taps: [], batchSize: 128 });
  const clean = await model.logits({ data: x, dims: [n, 1, 28, 28] });
  const correct = Array.from({ length: n }, (_, r) => {
    const z = clean.subarray(r * 10, (r + 1) * 10);
    return z.indexOf(Math.max(...z)) === labels[r];
  });
  for (const key of values.attacks.split(',')) {
    const setup = setups[key];
    if (setup === undefined) throw new Error(`unknown attack setup ${key}; known: ${Object.keys(setups).join(', ')}`);
    process.stderr.write(`${name} ${key} ...\n`);
    const result: AttackResult = await createAttack(setup.attack, setup.settings).run(
      model,
      { data: x, dims: [n, 1, 28, 28] },
      { labels, seed: 1, ...(setup.targeted ? { targets } : {}) },
    );
    const ok = [...result.success.keys()].filter((i) => result.success[i]);
    const onCorrect = ok.filter((i) => correct[i]).length / Math.max(1, correct.filter(Boolean).length);
    const spent = result.iterations ?? result.queries!;
    const row: Row = {
      model: name,
      attack: key,
      cleanAccuracy: correct.filter(Boolean).length / n,
      success: ok.length / n,
      successOnCorrect: onCorrect,
      medianLinf: median(ok.map((i) => result.norms.linf[i]!)),
      medianL2: median(ok.map((i) => result.norms.l2[i]!)),
      meanSpent: spent.reduce((a, b) => a + b, 0) / n,
      spentKind: result.iterations ? 'iterations' : 'queries',
      seconds: result.seconds,
    };
    const python = values.torch && setup.attack === 'pgd' && !setup.targeted ? pythonWith(['torch']) : undefined;
    if (python !== undefined) {
      const out = execFileSync(
        python,
        [
          join(packageRoot, 'scripts', 'torch_attacks.py'),
          'pgd',
          '--model',
          name,
          '--n',
          String(n),
          '--eps',
          String(setup.settings.eps),
          '--steps',
          String(setup.settings.steps),
          '--norm',
          setup.settings.norm ?? 'linf',
        ],
        { encoding: 'utf8' },
      );
      row.torchSuccess = (JSON.parse(out.trim().split('\n').pop()!) as { successRate: number }).successRate;
    }
    rows.push(row);
    process.stderr.write(`  ${JSON.stringify(row)}\n`);
  }
  await model.release();
}

const m0 = machine();
const f = (v: number | null | undefined, d = 3) => (v === null || v === undefined ? '-' : v.toFixed(d));
console.log(
  `\n${m0.cpu}, ${m0.cores} cores; first ${n} Fashion-MNIST test images; success counts images the model already ` +
    `misclassifies`,
);
console.log(
  '| model | attack | success | on correctly classified | median L-inf | median L2 | mean iterations / queries | ' +
    'seconds | PyTorch success |',
);
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.model} | ${r.attack} | ${f(r.success)} | ${f(r.successOnCorrect)} | ${f(r.medianLinf)} | ${f(r.medianL2)} | ${f(r.meanSpent, 1)} ${r.spentKind === 'queries' ? 'q' : 'it'} | ${f(r.seconds, 1)} | ${f(r.torchSuccess)} |`,
  );
}
mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
const file = join(packageRoot, 'bench', 'results', `attack-report-${m0.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ machine: m0, n, rows }, null, 2)}\n`);
console.log(`\nwrote ${file}`);
