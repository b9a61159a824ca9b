import { GradientModel } from '../src/autodiff/index.js';
import { loadFashionMnist } from '../src/data/index.js';
import { PGD, CarliniWagnerL2, createAttack } from '../src/attacks/index.js';
import { buildBank, writeBank } from '../src/bank/index.js';
import { FingerprintDetector } from '../src/detect/index.js';
import { auc, rateAbove, tprAtFpr } from '../src/eval/index.js';
const taps = (process.env.TAPS ?? '/classifier/relu/Relu_output_0,logits').split(',');
const k = Number(process.env.K ?? 10), C = Number(process.env.C ?? 20000), per = Number(process.env.PER ?? 200);
const model = await GradientModel.load('models/fmnist-cnn.onnx', { taps, batchSize: 128 });
console.log('neurons', model.neurons);
const test = await loadFashionMnist({ split: 'test' });
const half = Number(process.env.FIT ?? 5000);
const calEnd = half + Math.floor((10000 - half) / 2);
const fit = { data: test.data.slice(0, half * 784), dims: [half, 1, 28, 28] };
const t0 = performance.now();
const fams = (process.env.FAMS ?? 'pgd').split(',');
const families = fams.map((f) => f === 'pgd' ? { name: 'pgd', attack: new PGD({ eps: 0.1, steps: 20 }), settings: { eps: 0.1, steps: 20 } } : { name: 'cw', attack: new CarliniWagnerL2({ steps: 50, binarySteps: 3 }), settings: { steps: 50, binarySteps: 3 } });
const bank = await buildBank({ model, images: fit, labels: test.labels.slice(0, half), families, cleanPerClass: per, attackedPerClass: per, screen: { candidates: C, k, topK: 2000 }, seed: 1, attackMode: (process.env.MODE ?? 'mixed') as 'mixed',
  onProgress: (p) => { if (p.stage === 'done') process.stderr.write(`class ${p.class} done ${((performance.now() - t0) / 1000).toFixed(0)}s\n`); } });
console.log('fit s', ((performance.now() - t0) / 1000).toFixed(1), bank.header.classes.map((c) => `${c.count}/${c.passed}${c.relaxed ? '!' : ''} a=${c.attacked}`).join(' '));
writeBank('/tmp/nfp/bank.nfp', bank);
const det = await FingerprintDetector.load({ model: 'models/fmnist-cnn.onnx', bank, draws: Number(process.env.DRAWS ?? 25), seed: 3 });
// held-out: calibration on 5000..7500 clean, evaluation on 7500..10000
const cal = { data: test.data.slice(half * 784, calEnd * 784), dims: [calEnd - half, 1, 28, 28] };
const c = await det.calibrate(cal, { fpr: 0.05 });
console.log('calibration global', c.global.toFixed(2), 'perClass', c.perClass.map((v) => v?.toFixed(1)).join(' '));
const ev = { data: test.data.slice(calEnd * 784), dims: [10000 - calEnd, 1, 28, 28] };
const evLabels = test.labels.slice(calEnd);
const cleanDet = await det.detect(ev);
const correct = cleanDet.map((d, i) => d.label === evLabels[i]);
const cleanScores = cleanDet.filter((_, i) => correct[i]).map((d) => d.score - d.threshold);
console.log('measured FPR on held-out clean (correct):', (cleanDet.filter((d, i) => correct[i] && d.attacked).length / cleanScores.length).toFixed(4));
for (const spec of (process.env.EVAL ?? 'pgd,cw').split(',')) {
  const attack = spec === 'pgd' ? new PGD({ eps: 0.1, steps: 20 }) : spec === 'cw' ? new CarliniWagnerL2({ steps: 50, binarySteps: 3 }) : createAttack(spec as 'fgsm', { eps: 0.1 });
  const n = 1000;
  const idx = [...Array(10000 - calEnd).keys()].filter((i) => correct[i]).slice(0, n);
  const x = new Float32Array(idx.length * 784); idx.forEach((r, i) => x.set(ev.data.subarray(r * 784, (r + 1) * 784), i * 784));
  const r = await attack.run(model, { data: x, dims: [idx.length, 1, 28, 28] }, { labels: Int32Array.from(idx, (i) => evLabels[i]!), seed: 5 });
  const ok = [...r.success.keys()].filter((i) => r.success[i]);
  const adv = new Float32Array(ok.length * 784); ok.forEach((rr, i) => adv.set(r.adv.subarray(rr * 784, (rr + 1) * 784), i * 784));
  const advDet = await det.detect({ data: adv, dims: [ok.length, 1, 28, 28] });
  const pos = advDet.map((d) => d.score - d.threshold);
  const per: string[] = [];
  for (let c = 0; c < 10; c++) {
    const neg = cleanDet.filter((d, i) => correct[i] && d.label === c).map((d) => d.score - d.threshold);
    const posc = advDet.filter((d) => d.label === c).map((d) => d.score - d.threshold);
    if (neg.length > 0 && posc.length > 0) per.push(`${c}:${auc(neg, posc).toFixed(3)}(${posc.length})`);
  }
  console.log('  per class', per.join(' '));
  console.log(spec, 'adv', ok.length, 'AUC', auc(cleanScores, pos).toFixed(4), 'TPR@5%', tprAtFpr(cleanScores, pos, 0.05).toFixed(3), 'TPR at calibrated', (advDet.filter((d) => d.attacked).length / ok.length).toFixed(3));
}
