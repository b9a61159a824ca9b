// `nfp demo --quick`: the whole loop (fit, calibrate, attack, evaluate, report) in seconds, as a
// smoke test of its wiring; `nfp demo` without --quick is the real run (minutes).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { readBank } from '../../src/bank/index.js';
import { demoCommand } from '../../src/cli/demo.js';
import { evaluationSchema } from '../../src/eval/index.js';
import type { Evaluation } from '../../src/eval/index.js';
import { captureStdout } from '../reference/cli.js';
import { useTempDir } from '../reference/temp-dir.js';

describe('nfp demo --quick', function () {
  this.timeout(300000);
  const dir = useTempDir('nfp-demo-');

  it('writes a calibrated bank, metrics.json, report.md, report.html and the figures', async () => {
    const out = join(dir(), 'demo');
    const stdout = await captureStdout(() => demoCommand({ out, quick: true, seed: 1 }));
    const summary = JSON.parse(stdout) as { attacks: Array<{ attack: string; auc: number }> };
    expect(summary.attacks.map((a) => a.attack)).to.deep.equal(['pgd', 'fgsm']);
    const bank = readBank(join(out, 'bank.nfp'));
    expect(bank.header.calibration?.fpr).to.equal(0.05);
    expect(bank.header.fit.data?.fit).to.deep.equal([0, 1500]);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as Evaluation;
    expect(metrics.schema).to.equal(evaluationSchema);
    for (const a of metrics.attacks) {
      expect(a.auc).to.be.within(0.5, 1);
      expect(a.consistency.detectors).to.equal(10);
      expect(a.consistency.aucs).to.have.length(10);
      expect(a.roc.fpr[0]).to.equal(0);
      expect(a.roc.tpr.at(-1)).to.equal(1);
      expect(a.perClass).to.have.length(10);
    }
    expect(metrics.clean.fprAtThreshold).to.be.within(0, 0.2);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).to.match(/rows 0-1500 fitted the bank, 1500-2000 calibrated it; rows 2000-10000 evaluated/);
    expect(md).to.match(/## The family of detectors/);
    expect(md).to.match(/\| pgd \| /);
    expect(readFileSync(join(out, 'report.html'), 'utf8')).to.match(/<svg/);
    for (const f of ['roc', 'scores', 'consistency']) {
      expect(existsSync(join(out, 'figures', `${f}.svg`))).to.equal(true);
      const png = readFileSync(join(out, 'figures', `${f}.png`));
      expect(png.subarray(1, 4).toString('latin1')).to.equal('PNG');
    }
  });

  it('--confidence calibrates the confidence term into the bank and adds the CW attack built against it', async () => {
    const out = join(dir(), 'demo-confidence');
    const stdout = await captureStdout(() => demoCommand({ out, quick: true, seed: 2, confidence: true }));
    const summary = JSON.parse(stdout) as { attacks: Array<{ attack: string; auc: number }> };
    expect(summary.attacks.map((a) => a.attack)).to.deep.equal(['pgd', 'fgsm', 'cw-kappa5']);
    const calibration = readBank(join(out, 'bank.nfp')).header.calibration;
    expect(calibration?.confidence?.margin).to.have.length(10);
    expect(readFileSync(join(out, 'report.md'), 'utf8')).to.match(/nfp demo --quick --confidence --seed 2/);
  });
});
