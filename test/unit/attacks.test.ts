// The attack suite's shared parts and its arithmetic: geometry (projection, random starts, norms),
// criteria, seeded randomness, APGD's and Square's schedules, and each attack on a linear
// classifier, where the right answer has a closed form (FGSM's exact step, DeepFool's exact
// distance to the hyperplane, CW's minimal perturbation).
import { expect } from 'chai';

import {
  APGD,
  BIM,
  CarliniWagnerL2,
  Criterion,
  DeepFool,
  FGSM,
  MIFGSM,
  PGD,
  Square,
  apgdCheckpoints,
  attackNames,
  attackSettings,
  createAttack,
  createAttacks,
  randomTargets,
  squareShare,
} from '../../src/attacks/index.js';
import { SeededRandom } from '../../src/random.js';
import type { Attack, AttackResult } from '../../src/attacks/index.js';
import { project, randomStart } from '../../src/attacks/geometry.js';
import { LinearModel } from '../reference/linear-model.js';
import { TestRandom } from '../reference/random.js';

/** A random linear classifier over [1, 6, 6] images and a batch of images in [0.2, 0.8]. */
function linearProblem(
  seed: number,
  classes = 4,
  rows = 12,
): { model: LinearModel; x: Float32Array; labels: Int32Array } {
  const rnd = new TestRandom(seed);
  const d = 36;
  const weights = Float64Array.from({ length: classes * d }, () => rnd.normal());
  const bias = Float64Array.from({ length: classes }, () => rnd.normal() * 0.1);
  const model = new LinearModel(weights, bias, [1, 6, 6]);
  const x = rnd.floats(rows * d, 0.2, 0.8);
  const labels = Int32Array.from({ length: rows }, (_, r) => {
    // Label = the model's own prediction, so every image starts correctly classified.
    let best = 0;
    for (let c = 1; c < classes; c++)
      if (dot(weights, c, x, r, d) + bias[c]! > dot(weights, best, x, r, d) + bias[best]!) best = c;
    return best;
  });
  return { model, x, labels };
}

function dot(w: Float64Array, c: number, x: Float32Array, r: number, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += w[c * d + i]! * x[r * d + i]!;
  return s;
}

function expectValid(result: AttackResult, x: Float32Array, eps?: number): void {
  for (const v of result.adv) expect(v >= 0 && v <= 1, `value ${v}`).to.equal(true);
  if (eps !== undefined && result.norm === 'linf')
    for (const n of result.norms.linf) expect(n).to.be.at.most(eps + 1e-6);
  if (eps !== undefined && result.norm === 'l2') for (const n of result.norms.l2) expect(n).to.be.at.most(eps + 1e-5);
  expect(result.adv.length).to.equal(x.length);
}

describe('attacks: geometry', () => {
  const rnd = new TestRandom(3);
  for (const norm of ['linf', 'l2'] as const) {
    it(`projects onto the ${norm} ball and the [0, 1] box`, () => {
      const per = 500;
      const x0 = rnd.floats(4 * per, 0, 1);
      const x = rnd.floats(4 * per, -2, 3);
      const eps = norm === 'linf' ? 0.05 : 0.7;
      project(x, x0, eps, norm, per);
      for (let r = 0; r < 4; r++) {
        let m = 0,
          ss = 0;
        for (let i = r * per; i < (r + 1) * per; i++) {
          expect(x[i]! >= 0 && x[i]! <= 1).to.equal(true);
          m = Math.max(m, Math.abs(x[i]! - x0[i]!));
          ss += (x[i]! - x0[i]!) ** 2;
        }
        if (norm === 'linf') expect(m).to.be.at.most(eps + 1e-7);
        else expect(Math.sqrt(ss)).to.be.at.most(eps + 1e-6);
      }
    });

    it(`leaves points inside the ${norm} ball unchanged and starts at random inside it`, () => {
      const per = 300;
      const x0 = rnd.floats(3 * per, 0, 1);
      const inside = x0.map((v) => Math.min(1, Math.max(0, v + 1e-4)));
      const copy = inside.slice();
      project(inside, x0, 0.5, norm, per);
      expect([...inside]).to.deep.equal([...copy]);
      const start = randomStart(x0, 0.1, norm, per, new SeededRandom(5));
      const again = randomStart(x0, 0.1, norm, per, new SeededRandom(5));
      expect([...start]).to.deep.equal([...again]);
      expect([...start]).to.not.deep.equal([...x0]);
      project(again, x0, 0.1, norm, per);
      for (let i = 0; i < start.length; i++) expect(again[i]).to.be.closeTo(start[i]!, 1e-6);
    });
  }

  it('APGD checkpoints follow AutoAttack (22, 41, 57, ... for 100 steps)', () => {
    expect(apgdCheckpoints(100)).to.deep.equal([22, 41, 57, 70, 80, 87, 93, 99]);
    expect(apgdCheckpoints(1)).to.deep.equal([1]);
  });

  it("Square's window share halves on the paper's schedule", () => {
    expect(squareShare(0.8, 0, 10000)).to.equal(0.8);
    expect(squareShare(0.8, 11, 10000)).to.equal(0.4);
    expect(squareShare(0.8, 501, 10000)).to.equal(0.05);
    expect(squareShare(0.8, 9999, 10000)).to.be.closeTo(0.8 / 512, 1e-12);
    expect(squareShare(0.8, 100, 1000)).to.equal(0.8 / 16); // 100 of 1,000 = 1,000 of 10,000
  });
});

describe('attacks: criteria and randomness', () => {
  it('measures the margin to success, untargeted and targeted', () => {
    const z = Float32Array.from([1, 3, 2]);
    expect(Criterion.misclassification(Int32Array.of(1)).margin(z, 0)).to.equal(1);
    expect(Criterion.misclassification(Int32Array.of(1)).isAdversarial(z, 0)).to.equal(false);
    expect(Criterion.misclassification(Int32Array.of(0)).isAdversarial(z, 0)).to.equal(true);
    expect(Criterion.targeted(Int32Array.of(1), Int32Array.of(2)).margin(z, 0)).to.equal(1);
    expect(Criterion.targeted(Int32Array.of(0), Int32Array.of(1)).margin(z, 0)).to.equal(-1);
    expect(Criterion.targeted(Int32Array.of(0), Int32Array.of(1)).isAdversarial(z, 0)).to.equal(true);
    expect(Criterion.targeted(Int32Array.of(0), Int32Array.of(2)).isAdversarial(z, 0)).to.equal(false);
  });

  it('draws random targets uniformly among the other classes', () => {
    const labels = new Int32Array(20000).map((_, i) => i % 5);
    const targets = randomTargets(labels, 5, new SeededRandom(9));
    const counts = new Array(25).fill(0);
    targets.forEach((t, i) => {
      counts[labels[i]! * 5 + t]++;
    });
    for (let y = 0; y < 5; y++) {
      for (let t = 0; t < 5; t++) {
        if (t === y) expect(counts[y * 5 + t]).to.equal(0);
        else expect(counts[y * 5 + t]).to.be.within(850, 1150); // 1,000 expected each
      }
    }
  });

  it('reproduces a seeded stream and varies an unseeded one', () => {
    const a = new SeededRandom(42),
      b = new SeededRandom(42),
      c = new SeededRandom(43);
    const take = (r: SeededRandom) => Array.from({ length: 8 }, () => r.next());
    expect(take(a)).to.deep.equal(take(b));
    expect(take(new SeededRandom(42))).to.not.deep.equal(take(c));
    expect(take(new SeededRandom())).to.not.deep.equal(take(new SeededRandom()));
    const r = new SeededRandom(1);
    let s = 0,
      ss = 0;
    for (let i = 0; i < 20000; i++) {
      const v = r.normal();
      s += v;
      ss += v * v;
    }
    expect(s / 20000).to.be.closeTo(0, 0.03);
    expect(ss / 20000).to.be.closeTo(1, 0.04);
    expect(() => new SeededRandom(1.5)).to.throw(RangeError, /seed/);
  });
});

describe('attacks: closed forms on a linear classifier', () => {
  it('FGSM steps exactly eps * sign of the cross-entropy gradient', async () => {
    const { model, x, labels } = linearProblem(1);
    const rows = labels.length;
    const result = await new FGSM({ eps: 0.05 }).run(model, { data: x, dims: [rows, 1, 6, 6] }, { labels });
    const { grad } = await model.gradient({ data: x, dims: [rows, 1, 6, 6] }, { labels });
    for (let i = 0; i < x.length; i++) {
      const want = Math.min(1, Math.max(0, x[i]! + 0.05 * Math.sign(grad[i]!)));
      expect(result.adv[i]).to.be.closeTo(want, 1e-7);
    }
    expectValid(result, x, 0.05);
    expect([...result.iterations!]).to.deep.equal(new Array(rows).fill(1));
  });

  it('targeted FGSM descends the cross-entropy of the target', async () => {
    const { model, x, labels } = linearProblem(2);
    const rows = labels.length;
    const targets = labels.map((y) => (y + 1) % 4);
    const result = await new FGSM({ eps: 0.05 }).run(model, { data: x, dims: [rows, 1, 6, 6] }, { labels, targets });
    const { grad } = await model.gradient({ data: x, dims: [rows, 1, 6, 6] }, { labels: targets });
    for (let i = 0; i < x.length; i++)
      expect(result.adv[i]).to.be.closeTo(Math.min(1, Math.max(0, x[i]! - 0.05 * Math.sign(grad[i]!))), 1e-7);
  });

  it('DeepFool L2 lands at the nearest decision boundary (binary case: |f| / ||w||)', async () => {
    const { model, x, labels } = linearProblem(3, 2, 10);
    const rows = labels.length;
    // Inputs well inside the box, and a hyperplane close enough that clipping never binds.
    const d = 36;
    const w = Float64Array.from({ length: d }, (_, i) => model.weights[d + i]! - model.weights[i]!);
    const wNorm = Math.hypot(...w);
    const result = await new DeepFool({ overshoot: 0 }).run(model, { data: x, dims: [rows, 1, 6, 6] }, { labels });
    let checked = 0;
    for (let r = 0; r < rows; r++) {
      const f = dot(model.weights, 1, x, r, d) - dot(model.weights, 0, x, r, d) + model.bias[1]! - model.bias[0]!;
      const distance = Math.abs(f) / wNorm;
      const clipped = [...result.adv.subarray(r * d, (r + 1) * d)].some((v) => v === 0 || v === 1);
      if (clipped) continue;
      expect(result.success[r]).to.equal(1);
      expect(result.iterations![r]).to.equal(1);
      // One exact step of (|f| + 1e-4) / ||w||: just past the boundary.
      expect(result.norms.l2[r]).to.be.closeTo(distance + 1e-4 / wNorm, 1e-4);
      checked++;
    }
    expect(checked).to.be.at.least(rows / 2);
  });

  it('CW-L2 finds a perturbation close to the minimal one, never smaller', async () => {
    const { model, x, labels } = linearProblem(4, 2, 8);
    const rows = labels.length;
    const d = 36;
    const w = Float64Array.from({ length: d }, (_, i) => model.weights[d + i]! - model.weights[i]!);
    const wNorm = Math.hypot(...w);
    const result = await new CarliniWagnerL2({ steps: 200, binarySteps: 6 }).run(
      model,
      { data: x, dims: [rows, 1, 6, 6] },
      { labels, seed: 1 },
    );
    for (let r = 0; r < rows; r++) {
      const f = dot(model.weights, 1, x, r, d) - dot(model.weights, 0, x, r, d) + model.bias[1]! - model.bias[0]!;
      const minimal = Math.abs(f) / wNorm;
      expect(result.success[r]).to.equal(1);
      expect(result.norms.l2[r]).to.be.at.least(minimal * (1 - 1e-3));
      expect(result.norms.l2[r]).to.be.at.most(minimal * 1.25 + 0.01);
    }
  });

  for (const [name, attack, eps] of [
    ['PGD L-inf', new PGD({ eps: 0.1, steps: 10 }), 0.1],
    ['PGD L2', new PGD({ eps: 0.5, norm: 'l2', steps: 10 }), 0.5],
    ['BIM', new BIM({ eps: 0.1 }), 0.1],
    ['MI-FGSM', new MIFGSM({ eps: 0.1 }), 0.1],
    ['APGD L-inf', new APGD({ eps: 0.1, steps: 20 }), 0.1],
    ['APGD L2', new APGD({ eps: 0.5, norm: 'l2', steps: 20 }), 0.5],
    ['Square', new Square({ eps: 0.1, queries: 200 }), 0.1],
    ['DeepFool L-inf', new DeepFool({ norm: 'linf' }), undefined],
  ] as Array<[string, Attack, number | undefined]>) {
    it(`${name}: stays in the box and the eps-ball, and reports success as the model sees it`, async () => {
      const { model, x, labels } = linearProblem(5, 4, 16);
      const rows = labels.length;
      const result = await attack.run(model, { data: x, dims: [rows, 1, 6, 6] }, { labels, seed: 3, batchSize: 5 });
      expectValid(result, x, eps);
      const z = await model.logits({ data: result.adv, dims: result.dims });
      for (let r = 0; r < rows; r++) {
        const row = z.subarray(r * 4, (r + 1) * 4);
        const predicted = row.indexOf(Math.max(...row));
        expect(result.predicted[r]).to.equal(predicted);
        expect(result.success[r]).to.equal(predicted !== labels[r] ? 1 : 0);
      }
      expect([...result.success].reduce((a, b) => a + b, 0)).to.be.at.least(rows / 2);
    });
  }

  it('early stop freezes each image at its first adversarial iterate and spends fewer gradients', async () => {
    const { model, x, labels } = linearProblem(6, 4, 16);
    const rows = labels.length;
    const full = await new PGD({ eps: 0.2, steps: 20 }).run(
      model,
      { data: x, dims: [rows, 1, 6, 6] },
      { labels, seed: 1 },
    );
    const callsFull = model.rowsEvaluated;
    const early = await new PGD({ eps: 0.2, steps: 20, earlyStop: true }).run(
      model,
      { data: x, dims: [rows, 1, 6, 6] },
      { labels, seed: 1 },
    );
    const callsEarly = model.rowsEvaluated - callsFull;
    expect([...early.success].reduce((a, b) => a + b, 0)).to.be.at.least([...full.success].reduce((a, b) => a + b, 0));
    expect(callsEarly).to.be.below(callsFull);
    for (let r = 0; r < rows; r++) if (early.success[r]) expect(early.iterations![r]).to.be.below(20);
    const meanL2 = (a: AttackResult) => a.norms.l2.reduce((s, v) => s + v, 0) / rows;
    expect(meanL2(early)).to.be.below(meanL2(full));
  });

  it('is deterministic with a seed and random without one', async () => {
    const { model, x, labels } = linearProblem(7, 4, 8);
    const run = (seed?: number) =>
      new PGD({ eps: 0.05, steps: 3 }).run(
        model,
        { data: x, dims: [8, 1, 6, 6] },
        { labels, ...(seed === undefined ? {} : { seed }) },
      );
    expect([...(await run(11)).adv]).to.deep.equal([...(await run(11)).adv]);
    expect([...(await run()).adv]).to.not.deep.equal([...(await run()).adv]);
  });

  it('splits into batches without changing the result of a deterministic attack', async () => {
    const { model, x, labels } = linearProblem(8, 4, 13);
    const one = await new BIM({ eps: 0.05, steps: 5 }).run(
      model,
      { data: x, dims: [13, 1, 6, 6] },
      { labels, batchSize: 13 },
    );
    const many = await new BIM({ eps: 0.05, steps: 5 }).run(
      model,
      { data: x, dims: [13, 1, 6, 6] },
      { labels, batchSize: 4 },
    );
    expect([...many.adv]).to.deep.equal([...one.adv]);
    const progress: number[] = [];
    await new BIM({ eps: 0.05, steps: 5 }).run(
      model,
      { data: x, dims: [13, 1, 6, 6] },
      { labels, batchSize: 4, onProgress: (done) => progress.push(done) },
    );
    expect(progress.at(-1)).to.equal(13);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).to.be.at.least(progress[i - 1]!);
  });

  it('handles an empty batch and a single image', async () => {
    const { model, x, labels } = linearProblem(9, 4, 1);
    const empty = await new PGD({ eps: 0.1 }).run(
      model,
      { data: new Float32Array(0), dims: [0, 1, 6, 6] },
      { labels: new Int32Array(0) },
    );
    expect(empty.adv.length).to.equal(0);
    const one = await new Square({ eps: 0.1, queries: 50 }).run(
      model,
      { data: x, dims: [1, 1, 6, 6] },
      { labels, seed: 2 },
    );
    expect(one.queries![0]).to.be.within(1, 50);
  });
});

describe('attacks: argument checks', () => {
  const { model, x, labels } = linearProblem(10, 4, 3);
  const dims = [3, 1, 6, 6];
  const cases: Array<[string, () => Promise<unknown> | unknown, RegExp]> = [
    ['eps <= 0', () => new PGD({ eps: 0 }), /positive number for eps/],
    ['eps NaN', () => new FGSM({ eps: NaN }), /eps/],
    ['steps 0', () => new PGD({ eps: 0.1, steps: 0 }), /positive integer for steps/],
    ['steps 1.5', () => new APGD({ eps: 0.1, steps: 1.5 }), /steps/],
    ['norm l3', () => new PGD({ eps: 0.1, norm: 'l3' as 'l2' }), /'linf' or 'l2' for norm/],
    ['loss', () => new PGD({ eps: 0.1, loss: 'dlr' as 'ce' }), /for loss/],
    ['pInit > 1', () => new Square({ eps: 0.1, pInit: 2 }), /pInit/],
    ['kappa < 0', () => new CarliniWagnerL2({ kappa: -1 }), /kappa/],
    ['unknown attack', () => createAttack('jsma' as 'pgd', { eps: 0.1 }), /for attack/],
    ['bounded attack without eps', () => createAttack('pgd', {}), /eps/],
    [
      'images not float32',
      () =>
        new FGSM({ eps: 0.1 }).run(model, { data: new Float64Array(x) as unknown as Float32Array, dims }, { labels }),
      /float32 images of shape \[N, 1, 6, 6\] for images/,
    ],
    [
      'images wrong shape',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x, dims: [3, 36] }, { labels }),
      /for images/,
    ],
    [
      'images too short',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x.subarray(1), dims }, { labels }),
      /for images/,
    ],
    [
      'images above 1',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x.map((v, i) => (i === 7 ? 1.5 : v)), dims }, { labels }),
      /\[0, 1\] for images but received 1.5 at index 7/,
    ],
    [
      'images NaN',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x.map((v, i) => (i === 3 ? NaN : v)), dims }, { labels }),
      /received NaN at index 3/,
    ],
    [
      'labels wrong length',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x, dims }, { labels: labels.subarray(1) }),
      /3 classes for labels/,
    ],
    [
      'labels not Int32Array',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x, dims }, { labels: [0, 1, 2] as unknown as Int32Array }),
      /for labels/,
    ],
    [
      'label out of range',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x, dims }, { labels: Int32Array.of(0, 4, 1) }),
      /\[0, 4\) for labels but received 4 at index 1/,
    ],
    [
      'target out of range',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x, dims }, { labels, targets: Int32Array.of(-1, 0, 0) }),
      /for targets/,
    ],
    [
      'target equal to label',
      () => new FGSM({ eps: 0.1 }).run(model, { data: x, dims }, { labels, targets: labels.slice() }),
      /targets different from labels/,
    ],
    ['batchSize 0', () => new FGSM({ eps: 0.1 }).run(model, { data: x, dims }, { labels, batchSize: 0 }), /batchSize/],
    ['seed 0.5', () => new FGSM({ eps: 0.1 }).run(model, { data: x, dims }, { labels, seed: 0.5 }), /seed/],
  ];
  for (const [what, call, message] of cases) {
    it(`rejects ${what}`, async () => {
      let error: unknown;
      try {
        await call();
      } catch (e) {
        error = e;
      }
      expect(error, what).to.be.instanceOf(Error);
      expect((error as Error).message).to.match(message);
    });
  }

  it('knows every attack by name', () => {
    for (const name of attackNames) expect(createAttack(name, { eps: 0.1 }).name).to.equal(name);
  });

  it('gives each attack only the settings it takes', () => {
    const shared = { eps: 0.1, norm: 'l2' as const, steps: 5, queries: 300 };
    expect(attackSettings('cw', shared)).to.deep.equal({ steps: 5 });
    expect(attackSettings('mifgsm', shared)).to.deep.equal({ eps: 0.1, steps: 5 });
    expect(attackSettings('square', shared)).to.deep.equal({ eps: 0.1, queries: 300 });
    expect(attackSettings('pgd', { eps: 0.1, norm: undefined })).to.deep.equal({ eps: 0.1 });
    const [pgd, cw] = createAttacks(['pgd', 'cw'], shared);
    expect([pgd!.name, (pgd!.attack as PGD).norm, (pgd!.attack as PGD).steps]).to.deep.equal(['pgd', 'l2', 5]);
    expect(cw!.settings).to.deep.equal({ steps: 5 });
    const [withKappa] = createAttacks(['cw'], { ...shared, kappa: 5 });
    expect(withKappa!.settings).to.deep.equal({ steps: 5, kappa: 5 });
    expect((withKappa!.attack as CarliniWagnerL2).kappa).to.equal(5);
    expect(attackSettings('pgd', { eps: 0.1, kappa: 5 })).to.deep.equal({ eps: 0.1 });
  });
});
