// The attacks against an independent PyTorch implementation (scripts/torch_attacks.py fixtures)
// on the committed Fashion-MNIST CNN, whose weights both sides share, and the attack suite's
// contract on a real model: norms, box, seeds, targeted success and the strength each attack must reach.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { GradientModel } from '../../src/autodiff/index.js';
import { BIM, FGSM, createAttack, randomTargets } from '../../src/attacks/index.js';
import { SeededRandom } from '../../src/random.js';
import type { AttackName, AttackResult, AttackSettings } from '../../src/attacks/index.js';
import { loadFashionMnist, readNpy } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';

const fixtures = join(packageRoot, 'test', 'testdata', 'attacks');
const torchRun = JSON.parse(readFileSync(join(fixtures, 'fmnist-cnn.attacks.json'), 'utf8')) as {
  images: number;
  eps: number;
  bim: { alpha: number; steps: number; success: number[] };
  fgsm: { success: number[] };
  fgsmTargeted: { targets: number[]; success: number[] };
};

/** Share of pixels where two adversarial images agree to 1e-5. */
function pixelAgreement(a: Float32Array, b: Float32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) <= 1e-5) same++;
  return same / a.length;
}

const successRate = (r: AttackResult) => r.success.reduce((a, b) => a + b, 0) / r.success.length;

describe('attacks on the committed CNN', function () {
  this.timeout(300000);
  let model: GradientModel;
  let x: Float32Array;
  let labels: Int32Array;
  const n = torchRun.images;
  const dims = [n, 1, 28, 28];

  before(async () => {
    model = await GradientModel.load(join(packageRoot, 'models', 'fmnist-cnn.onnx'), { taps: [], batchSize: 100 });
    const test = await loadFashionMnist({ split: 'test' });
    x = test.data.slice(0, n * 784);
    labels = test.labels.slice(0, n);
  });
  after(async () => model.release());

  it('FGSM matches PyTorch pixel for pixel (>= 99.9%) and image for image', async () => {
    const ours = await new FGSM({ eps: torchRun.eps }).run(model, { data: x, dims }, { labels });
    const theirs = readNpy(join(fixtures, 'fmnist-cnn.fgsm.npy')).data as Float32Array;
    const agreement = pixelAgreement(ours.adv, theirs);
    expect(agreement).to.be.at.least(0.999);
    expect([...ours.success]).to.deep.equal(torchRun.fgsm.success);
  });

  it('targeted FGSM matches PyTorch', async () => {
    const targets = Int32Array.from(torchRun.fgsmTargeted.targets);
    const ours = await new FGSM({ eps: torchRun.eps }).run(model, { data: x, dims }, { labels, targets });
    const theirs = readNpy(join(fixtures, 'fmnist-cnn.fgsm-targeted.npy')).data as Float32Array;
    expect(pixelAgreement(ours.adv, theirs)).to.be.at.least(0.999);
    expect([...ours.success]).to.deep.equal(torchRun.fgsmTargeted.success);
  });

  it('BIM matches PyTorch on >= 98% of images and most pixels', async () => {
    const ours = await new BIM({ eps: torchRun.eps, stepSize: torchRun.bim.alpha, steps: torchRun.bim.steps }).run(
      model,
      { data: x, dims },
      { labels },
    );
    const theirs = readNpy(join(fixtures, 'fmnist-cnn.bim.npy')).data as Float32Array;
    const same = torchRun.bim.success.filter((s, i) => s === ours.success[i]).length;
    expect(same / n).to.be.at.least(0.98);
    // Iterating amplifies the rare sign flips of near-zero gradients, so pixels agree a little less.
    expect(pixelAgreement(ours.adv, theirs)).to.be.at.least(0.95);
  });

  const cases: Array<[AttackName, AttackSettings, boolean, number]> = [
    ['fgsm', { eps: 0.1 }, false, 0.6],
    ['bim', { eps: 0.1, steps: 10 }, false, 0.9],
    ['pgd', { eps: 0.1, steps: 20 }, false, 0.93],
    ['pgd', { eps: 1.5, norm: 'l2', steps: 20 }, false, 0.85],
    ['mifgsm', { eps: 0.1 }, false, 0.85],
    ['apgd', { eps: 0.1, steps: 25 }, false, 0.93],
    ['cw', { steps: 50, binarySteps: 3 }, false, 0.95],
    ['deepfool', {}, false, 0.95],
    ['deepfool', { norm: 'linf' }, false, 0.95],
    ['square', { eps: 0.1, queries: 300 }, false, 0.6],
    ['pgd', { eps: 0.1, steps: 20 }, true, 0.5],
    ['deepfool', {}, true, 0.9],
  ];
  for (const [name, settings, targeted, floor] of cases) {
    it(
      `${name} ${JSON.stringify(settings)}${targeted ? ' targeted' : ''}: valid images, success as the model sees ` +
        `it, >= ${floor * 100}%`,
      async () => {
        const rows = 32;
        const sub = { data: x.subarray(0, rows * 784), dims: [rows, 1, 28, 28] };
        const targets = targeted ? randomTargets(labels.subarray(0, rows), 10, new SeededRandom(4)) : undefined;
        const result = await createAttack(name, settings).run(model, sub, {
          labels: labels.subarray(0, rows),
          seed: 7,
          ...(targets ? { targets } : {}),
        });
        for (const v of result.adv) expect(v >= 0 && v <= 1).to.equal(true);
        const eps = settings.eps;
        if (eps !== undefined) {
          const norms = result.norm === 'linf' ? result.norms.linf : result.norms.l2;
          for (const v of norms) expect(v).to.be.at.most(eps + (result.norm === 'linf' ? 1e-6 : 1e-5));
        }
        const logits = await model.logits({ data: result.adv, dims: result.dims });
        for (let r = 0; r < rows; r++) {
          const z = logits.subarray(r * 10, (r + 1) * 10);
          const predicted = z.indexOf(Math.max(...z));
          expect(result.predicted[r]).to.equal(predicted);
          expect(result.success[r]).to.equal((targets ? predicted === targets[r] : predicted !== labels[r]) ? 1 : 0);
        }
        expect(successRate(result)).to.be.at.least(floor);
      },
    );
  }

  it('reproduces a seeded PGD exactly; unseeded runs differ', async () => {
    const sub = { data: x.subarray(0, 8 * 784), dims: [8, 1, 28, 28] };
    const run = (seed?: number) =>
      createAttack('pgd', { eps: 0.1, steps: 3 }).run(model, sub, {
        labels: labels.subarray(0, 8),
        ...(seed === undefined ? {} : { seed }),
      });
    expect([...(await run(5)).adv]).to.deep.equal([...(await run(5)).adv]);
    expect([...(await run()).adv]).to.not.deep.equal([...(await run()).adv]);
  });
});
