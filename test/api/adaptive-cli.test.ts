// `nfp evaluate --adaptive` as commander runs it, in-process, on tiny settings: a small bank fitted on
// the first 1,500 of 2,000 shipped test images (ablation-cli.test.ts's settings at k = 1), attacked
// on 5 held-out images; metrics.json gains `adaptive` and report.md its section; bad settings are
// bad usage.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { registerBankCommand } from '../../src/cli/bank.js';
import { registerEvaluateCommand } from '../../src/cli/evaluate.js';
import { FingerprintBank, encodeBank, readBank, writeBank } from '../../src/bank/index.js';
import { registerFitCommand } from '../../src/cli/fit.js';
import { loadFashionMnist, writeNpy } from '../../src/data/index.js';
import { defaultAdaptiveSettings, parseAdaptiveSettings } from '../../src/experiment/index.js';
import type { AdaptiveResults } from '../../src/experiment/index.js';
import { packageRoot } from '../../src/paths.js';
import { expectUsageError, runCommands } from '../reference/cli.js';
import { smallFitArgs } from '../reference/small-fit.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const sha256Of = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const nfp = (args: string[]): Promise<string> =>
  runCommands([registerFitCommand, registerEvaluateCommand, registerBankCommand], args);

/** The first 2,000 shipped test images and labels (.npy) in `dir`, and the small fit at k = 1 over them. */
async function smallK1Fit(dir: string): Promise<{ data: string; labels: string; bank: string }> {
  const test = loadFashionMnist({ split: 'test' });
  const data = join(dir, 'x.npy');
  const labels = join(dir, 'y.npy');
  writeNpy(data, { dims: [2000, 1, 28, 28], data: test.data.subarray(0, 2000 * 784) });
  writeNpy(labels, { dims: [2000], data: test.labels.slice(0, 2000) });
  const bank = join(dir, 'bank.nfp');
  // The shared small fit at k = 1 (a later --k overrides an earlier one).
  await nfp(['fit', ...smallFitArgs({ model: modelPath, data, labels }), '--k', '1', '--out', bank]);
  return { data, labels, bank };
}

describe('nfp evaluate --adaptive', function () {
  this.timeout(300000);
  const dir = useTempDir('nfp-adaptive-cli-');
  let data = '';
  let labels = '';
  let bank = '';

  before(async () => {
    ({ data, labels, bank } = await smallK1Fit(dir()));
  });

  const evaluate = (report: string, extra: string[]) =>
    [
      ['evaluate', '--model', modelPath, '--bank', bank, '--data', data, '--labels', labels, '--attacks', 'fgsm'],
      ['--detectors', '3', '--max-images', '20', '--report', report, ...extra],
    ].flat();

  it('adds every adaptive attack, judged at 5% and 1% FPR, to metrics.json and report.md', async () => {
    const report = join(dir(), 'report');
    const settings = 'eps=0.1;weights=1;steps=3;images=5;copies=1,all;candidate-runs=2;detectors=3';
    // The bank stands in for the attacker's own (a T2 run needs only a calibrated bank of the same model).
    await nfp(evaluate(report, ['--adaptive', settings, '--attacker-bank', bank]));
    const metrics = JSON.parse(readFileSync(join(report, 'metrics.json'), 'utf8')) as { adaptive: AdaptiveResults };
    const a = metrics.adaptive;
    expect(a.images).to.equal(5);
    expect(a.rows[0]).to.be.at.least(1500);
    expect(a.attacks.map((r) => `${r.threat} ${r.attack}`)).to.deep.equal([
      'T1 pgd',
      'T3 static',
      'T3 eot',
      'T2 static',
      'T2 eot',
    ]);
    for (const r of a.attacks) {
      expect(r.evasion.map((e) => e.fpr)).to.deep.equal([0.05, 0.01]);
      for (const e of r.evasion) expect(e.randomized).to.be.within(0, r.success);
      expect(r.linf).to.be.at.most(0.1 + 1e-6);
      expect(r.gradientSteps).to.equal(3);
    }
    expect(a.rejection.map((r) => r.copies)).to.deep.equal([1, 'all']);
    for (const r of a.rejection) expect(r.evasion).to.be.at.most(r.passedLocal + 1e-12);
    const md = readFileSync(join(report, 'report.md'), 'utf8');
    expect(md).to.include('## Adaptive attacks');
    // The run names the model it attacked.
    expect(a.model).to.deep.equal({ source: 'fmnist-cnn.onnx', sha256: sha256Of(modelPath) });
    expect(md).to.include(`Model fmnist-cnn.onnx (sha256 ${a.model!.sha256.slice(0, 12)}…)`);
  });

  it('attacks and judges a bank calibrated with the confidence term (kappa keeps the margin up)', async () => {
    const withConfidence = join(dir(), 'confidence.nfp');
    const calibrate = ['bank', 'calibrate', '--model', modelPath, '--bank', bank, '--data', data, '--held-out'];
    await nfp([...calibrate, '--seed', '1', '--confidence', '--out', withConfidence]);
    const report = join(dir(), 'report-confidence');
    const settings = 'eps=0.1;weights=1;kappa=3;steps=3;images=4;copies=none;attacks=pgd,eot;detectors=2';
    await nfp([
      ...['evaluate', '--model', modelPath, '--bank', withConfidence, '--data', data, '--labels', labels],
      ...['--attacks', 'fgsm', '--detectors', '2', '--max-images', '20', '--report', report, '--adaptive', settings],
    ]);
    const metrics = JSON.parse(readFileSync(join(report, 'metrics.json'), 'utf8')) as { adaptive: AdaptiveResults };
    expect(metrics.adaptive.attacks.map((r) => `${r.threat} ${r.attack}`)).to.deep.equal(['T1 pgd', 'T3 eot']);
    for (const e of metrics.adaptive.cleanFpr) expect(e.randomized).to.be.within(0, 1);
  });

  it('relu-surrogate: the attacks differentiate smoothed ReLUs, the judge stays the exact model', async () => {
    const settings = 'eps=0.1;weights=1;steps=3;images=5;copies=none;attacks=static;detectors=3';
    const run = async (name: string, extra: string) => {
      const report = join(dir(), name);
      await nfp(evaluate(report, ['--adaptive', `${settings}${extra}`]));
      const metrics = JSON.parse(readFileSync(join(report, 'metrics.json'), 'utf8')) as { adaptive: AdaptiveResults };
      return { a: metrics.adaptive, md: readFileSync(join(report, 'report.md'), 'utf8') };
    };
    const exact = await run('exact', '');
    const smooth = await run('smooth', ';relu-surrogate=0.5');
    expect(smooth.a.settings.reluSurrogate).to.equal(0.5);
    // Same images, same judge: the clean false-positive rates are the exact run's.
    expect(smooth.a.rows).to.deep.equal(exact.a.rows);
    expect(smooth.a.cleanFpr).to.deep.equal(exact.a.cleanFpr);
    expect(smooth.a.attacks.map((r) => `${r.threat} ${r.attack} ${r.gradientSteps}`)).to.deep.equal(['T3 static 3']);
    expect(smooth.md).to.include('BPDA: sigmoid(x / 0.5) backward');
    expect(exact.md).to.not.include('BPDA');
  });

  it('refuses bad settings as bad usage', async () => {
    for (const bad of [
      'eps=-1',
      'steps=2.5',
      'color=red',
      'eps',
      'random-start=2',
      'attacks=cw',
      'candidates=x',
      'relu-surrogate=0',
    ]) {
      await expectUsageError(nfp, evaluate(join(dir(), 'bad'), ['--adaptive', bad]));
    }
  });
});

describe('--adaptive settings', () => {
  it('parses lists, none, all and the switches, and keeps the defaults of what is not given', () => {
    const got = parseAdaptiveSettings(
      'eps=0.03,0.05; weights=0,1; copies=none; random-start=0; attacks=static,eot; step-size=0.001; start=7500; fused=1',
    );
    expect(got).to.deep.equal({
      ...defaultAdaptiveSettings,
      eps: [0.03, 0.05],
      weights: [0, 1],
      copies: [],
      randomStart: false,
      attacks: ['static', 'eot'],
      stepSize: 0.001,
      start: 7500,
      fused: true,
    });
    expect(() => parseAdaptiveSettings('fused=yes')).to.throw(/fused: expected 0 or 1/);
    expect(parseAdaptiveSettings('copies=1,100,all').copies).to.deep.equal([1, 100, 'all']);
    expect(parseAdaptiveSettings('')).to.deep.equal(defaultAdaptiveSettings);
  });

  it('relu-surrogate: a positive temperature, absent by default; 0, negatives and words refused naming it', () => {
    expect(parseAdaptiveSettings('relu-surrogate=0.1;steps=10')).to.deep.equal({
      ...defaultAdaptiveSettings,
      steps: 10,
      reluSurrogate: 0.1,
    });
    expect(defaultAdaptiveSettings.reluSurrogate).to.equal(undefined);
    for (const bad of ['0', '-1', 'abc', 'inf', '0.1,1'])
      expect(() => parseAdaptiveSettings(`relu-surrogate=${bad}`)).to.throw(
        /--adaptive relu-surrogate: expected a positive number/,
      );
  });
});

describe('nfp fit --eot-against (an adaptive refit)', function () {
  this.timeout(300000);
  const dir = useTempDir('nfp-eot-refit-');
  let data = '';
  let labels = '';
  let bank = '';
  const fitArgs = () => [...smallFitArgs({ model: modelPath, data, labels }), '--k', '1'];

  before(async () => {
    ({ data, labels, bank } = await smallK1Fit(dir()));
  });

  it("fits the 'eot' family against the bank and records which bank it attacked", async () => {
    const refit = join(dir(), 'refit.nfp');
    const screen = ['--d-min', '1', '--p-max', '0.01'];
    await nfp([
      'fit',
      ...fitArgs(),
      '--eot-against',
      bank,
      '--eot-steps',
      '3',
      '--eot-weight',
      '0.5',
      ...screen,
      '--out',
      refit,
    ]);
    const prior = readBank(bank);
    const next = readBank(refit);
    expect(next.header.families).to.deep.equal(['pgd', 'eot']);
    expect([next.header.fit.dMin, next.header.fit.pMax]).to.deep.equal([1, 0.01]);
    expect(next.header.fit.attacks.eot).to.deep.equal({
      eps: 0.1,
      steps: 3,
      weight: 0.5,
      fused: true,
      against: {
        file: 'bank.nfp',
        sha256: createHash('sha256').update(encodeBank(prior)).digest('hex'),
        families: ['pgd'],
      },
    });
    // The adaptive attack reached the classes, and the screen kept fingerprints for its family.
    const attacked = next.header.classes.map((c) => c.attacked[1]!);
    expect(attacked.filter((n) => n >= 2).length).to.be.at.least(8);
    expect(next.header.calibration).to.not.equal(undefined);
    expect(next.arrays.mu1.length).to.equal(next.fingerprints * 2);

    // The next round attacks both earlier banks, one family each.
    const second = join(dir(), 'refit2.nfp');
    await nfp(['fit', ...fitArgs(), '--eot-against', `${bank},${refit}`, '--eot-steps', '2', '--out', second]);
    const round2 = readBank(second);
    expect(round2.header.families).to.deep.equal(['pgd', 'eot', 'eot2']);
    const against = (f: string) => (round2.header.fit.attacks[f] as { against: { file: string } }).against.file;
    expect([against('eot'), against('eot2')]).to.deep.equal(['bank.nfp', 'refit.nfp']);
  });

  it('refuses a bank it cannot attack as bad usage, before fitting', async () => {
    const { calibration: _, ...uncalibrated } = readBank(bank).header;
    const raw = join(dir(), 'uncalibrated.nfp');
    writeBank(raw, new FingerprintBank(uncalibrated, readBank(bank).arrays));
    const out = join(dir(), 'never.nfp');
    for (const [extra, why] of [
      [['--eot-against', raw], /calibrated/],
      [['--eot-against', join(dir(), 'missing.nfp')], /Cannot find/],
      [['--eot-against', `${bank},${join(dir(), 'missing.nfp')}`], /Cannot find/],
      [['--eot-against', bank, '--taps', 'logits'], /over the fit's taps/],
      [['--eot-against', bank, '--eot-steps', '0'], /eot-steps/],
      [['--eot-against', bank, '--eot-weight', '-1'], /eot-weight/],
    ] as Array<[string[], RegExp]>) {
      const error = await expectUsageError(nfp, ['fit', ...fitArgs(), ...extra, '--out', out]);
      expect(error.message, extra.join(' ')).to.match(why);
    }
    expect(existsSync(out)).to.equal(false);
  });
});
