// The detector's report on the committed models (outside CI; minutes per model): fit a bank on the
// first part of the shipped Fashion-MNIST test set, calibrate on the next part, and score held-out
// clean images against attacked ones (images the model classifies correctly, attacked untargeted;
// only successful adversarial images count).
//   npx tsx scripts/detection-report.ts [--models fmnist-cnn,fmnist-resnet,fmnist-vit] [--bank pgd | pgd,cw]
//       [--eval pgd,cw,deepfool,fgsm] [--fit 6000] [--per-class 300] [--k 5] [--candidates 100000]
//       [--draws 25] [--combine max | logsumexp | max,logsumexp] [--seed 1]
// Prints a markdown table (AUC and TPR at the calibrated 5% FPR per attack, the measured FPR on held-out
// clean images, per-class AUC) and writes bench/results/detection-report-<date>.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { CarliniWagnerL2, DeepFool, FGSM, PGD } from '../src/attacks/index.js';
import type { Attack } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { buildBank, writeBank } from '../src/bank/index.js';
import type { AttackFamily } from '../src/bank/index.js';
import { loadFashionMnist } from '../src/data/index.js';
import { FingerprintDetector } from '../src/detect/index.js';
import type { Detection } from '../src/detect/index.js';
import { auc } from '../src/eval/index.js';
import { packageRoot } from '../src/paths.js';
import { machine } from '../bench/machine.js';

/** The taps each model card recommends for the detector (models/<name>.json, detectorTaps). */
function cardTaps(name: string): string[] {
  const card = JSON.parse(readFileSync(join(packageRoot, 'models', `${name}.json`), 'utf8')) as {
    detectorTaps?: { tensors: string[] };
  };
  if (card.detectorTaps === undefined) throw new Error(`models/${name}.json recommends no detectorTaps`);
  return card.detectorTaps.tensors;
}

const attacks: Record<string, () => Attack> = {
  pgd: () => new PGD({ eps: 0.1, steps: 20 }),
  cw: () => new CarliniWagnerL2({ steps: 50, binarySteps: 3 }),
  deepfool: () => new DeepFool(),
  fgsm: () => new FGSM({ eps: 0.1 }),
};
const settingsOf: Record<string, Record<string, unknown>> = {
  pgd: { eps: 0.1, steps: 20 },
  cw: { steps: 50, binarySteps: 3 },
  deepfool: {},
  fgsm: { eps: 0.1 },
};

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'fmnist-cnn,fmnist-resnet,fmnist-vit' },
    bank: { type: 'string', default: 'pgd' },
    eval: { type: 'string', default: 'pgd,cw,deepfool,fgsm' },
    fit: { type: 'string', default: '6000' },
    'per-class': { type: 'string', default: '300' },
    k: { type: 'string', default: '3' },
    candidates: { type: 'string', default: '100000' },
    draws: { type: 'string', default: '25' },
    combine: { type: 'string', default: 'max' },
    'eval-images': { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
  },
});
const fitEnd = Number(values.fit);
const calEnd = fitEnd + Math.floor((10000 - fitEnd) / 2);
const perClass = Number(values['per-class']);
const test = await loadFashionMnist({ split: 'test' });
const rows = (from: number, to: number) => ({
  data: test.data.slice(from * 784, to * 784),
  dims: [to - from, 1, 28, 28],
});

interface Row {
  model: string;
  neurons: number;
  k: number;
  bank: string;
  combine: string;
  attack: string;
  adversarial: number;
  auc: number;
  tpr: number;
  fpr: number;
  perClass: Record<number, number>;
  fitSeconds: number;
  relaxed: number[];
}
const results: Row[] = [];
const margin = (d: Detection) => d.score - d.threshold;

for (const name of values.models.split(',')) {
  const modelPath = join(packageRoot, 'models', `${name}.onnx`);
  const taps = cardTaps(name);
  const model = await GradientModel.load(modelPath, { taps, batchSize: 128 });
  const families: AttackFamily[] = values.bank
    .split(',')
    .map((f) => ({ name: f, attack: attacks[f]!(), settings: settingsOf[f]! }));
  const started = performance.now();
  process.stderr.write(`${name}: fitting on images 0-${fitEnd} (${model.neurons} neurons) ...\n`);
  const bank = await buildBank({
    model,
    images: rows(0, fitEnd),
    labels: test.labels.slice(0, fitEnd),
    families,
    cleanPerClass: perClass,
    attackedPerClass: perClass,
    attackMode: 'untargeted',
    screen: { k: Number(values.k), candidates: Number(values.candidates) },
    seed: Number(values.seed),
  });
  const fitSeconds = (performance.now() - started) / 1000;
  const held = rows(calEnd, 10000);
  const heldLabels = test.labels.slice(calEnd);
  // Attack the correctly classified held-out images once; every family combination scores the same images.
  const cleanLabels = await model.logits(held);
  const correct = [...heldLabels.keys()].filter((i) => {
    const z = cleanLabels.subarray(i * model.classes, (i + 1) * model.classes);
    return z.indexOf(Math.max(...z)) === heldLabels[i];
  });
  const sources = correct.slice(0, Number(values['eval-images']));
  const x = new Float32Array(sources.length * 784);
  sources.forEach((r, i) => {
    x.set(held.data.subarray(r * 784, (r + 1) * 784), i * 784);
  });
  const adversarial = new Map<string, { data: Float32Array; dims: number[] }>();
  for (const a of values.eval.split(',')) {
    process.stderr.write(`${name}: ${a} on ${sources.length} held-out images ...\n`);
    const run = await attacks[a]!().run(
      model,
      { data: x, dims: [sources.length, 1, 28, 28] },
      { labels: Int32Array.from(sources, (i) => heldLabels[i]!), seed: 5 },
    );
    const ok = [...run.success.keys()].filter((i) => run.success[i]);
    const adv = new Float32Array(ok.length * 784);
    ok.forEach((r, i) => {
      adv.set(run.adv.subarray(r * 784, (r + 1) * 784), i * 784);
    });
    adversarial.set(a, { data: adv, dims: [ok.length, 1, 28, 28] });
  }
  for (const combine of values.combine.split(',') as Array<'max' | 'logsumexp'>) {
    const detector = await FingerprintDetector.load({
      model: modelPath,
      bank,
      draws: Number(values.draws),
      combine,
      seed: Number(values.seed),
    });
    await detector.calibrate(rows(fitEnd, calEnd), { fpr: 0.05 });
    writeBank(join(packageRoot, 'bench', 'results', `${name}.nfp`), detector.bank);
    const clean = await detector.detect(held);
    const cleanCorrect = correct.map((i) => clean[i]!);
    const fpr = cleanCorrect.filter((d) => d.attacked).length / cleanCorrect.length;
    for (const [a, adv] of adversarial) {
      const attacked = await detector.detect(adv);
      const per: Record<number, number> = {};
      for (let c = 0; c < model.classes; c++) {
        const neg = cleanCorrect.filter((d) => d.label === c).map(margin);
        const pos = attacked.filter((d) => d.label === c).map(margin);
        if (neg.length > 0 && pos.length >= 10) per[c] = Number(auc(neg, pos).toFixed(3));
      }
      const row: Row = {
        model: name,
        neurons: model.neurons,
        k: Number(values.k),
        bank: values.bank,
        combine,
        attack: a,
        adversarial: adv.dims[0]!,
        auc: auc(cleanCorrect.map(margin), attacked.map(margin)),
        tpr: attacked.filter((d) => d.attacked).length / attacked.length,
        fpr,
        perClass: per,
        fitSeconds,
        relaxed: bank.header.classes.flatMap((c, i) => (c.relaxed ? [i] : [])),
      };
      results.push(row);
      process.stderr.write(`  ${JSON.stringify(row)}\n`);
    }
    await detector.release();
  }
  await model.release();
}

const m0 = machine();
console.log(
  `\n${m0.cpu}, ${m0.cores} cores. Fit on test images ` +
    `0-${fitEnd} (${perClass} clean + ${perClass} attacked per class, untargeted landings), calibrate ` +
    `on ${fitEnd}-${calEnd} for 5% FPR, evaluate ` +
    `on ${calEnd}-10000 (correctly classified; successful attacks only). Bank ` +
    `families: ${values.bank}; k ${values.k}; ${values.candidates} candidates per class; ${values.draws} draws; combine ${values.combine}.`,
);
console.log(
  '| model | taps (neurons) | combine | attack | adversarial images | AUC | TPR at calibrated 5% FPR | measured FPR ' +
    '(clean) | lowest class AUC | fit s |',
);
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  const worst = Object.entries(r.perClass).sort((a, b) => a[1] - b[1])[0];
  console.log(
    `| ${r.model} | ${r.neurons} | ${r.combine} | ${r.attack} | ${r.adversarial} | ${r.auc.toFixed(4)} | ${r.tpr.toFixed(3)} | ${r.fpr.toFixed(3)} | ${worst ? `${worst[1]} (class ${worst[0]})` : '-'} | ${r.fitSeconds.toFixed(0)} |`,
  );
}
mkdirSync(join(packageRoot, 'bench', 'results'), { recursive: true });
const file = join(packageRoot, 'bench', 'results', `detection-report-${m0.date.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ machine: m0, options: values, results }, null, 2)}\n`);
console.log(`\nwrote ${file}`);
