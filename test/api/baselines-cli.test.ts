// `nfp evaluate --baselines` as commander runs it, in-process: a small bank fitted on the first 1,500 of
// 2,000 shipped Fashion-MNIST test images (ablation-cli.test.ts's settings), evaluated against FGSM with
// the three peer detectors on the same images: one row per detector and attack in metrics.json, the
// report and matrix.md/matrix.json, and the usage errors of requests that cannot be carried out.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { registerEvaluateCommand } from '../../src/cli/evaluate.js';
import { registerFitCommand } from '../../src/cli/fit.js';
import { loadFashionMnist, writeNpy } from '../../src/data/index.js';
import type { Evaluation } from '../../src/eval/index.js';
import { packageRoot } from '../../src/paths.js';
import { expectUsageError, runCommands } from '../reference/cli.js';
import { sharedSmallCliBank } from '../reference/small-fit.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');

const nfp = (args: string[]): Promise<string> => runCommands([registerFitCommand, registerEvaluateCommand], args);

const usageError = async (args: string[]): Promise<string> => (await expectUsageError(nfp, args)).message;

describe('nfp evaluate --baselines', function () {
  this.timeout(300000);
  const dir = useTempDir('nfp-baselines-');
  let data = '';
  let labels = '';
  let bank = '';

  before(async () => {
    ({ data, labels, bank } = await sharedSmallCliBank());
  });

  const evaluate = (report: string, more: string[]) => [
    ...`evaluate --model ${modelPath} --bank ${bank} --data ${data} --labels ${labels} --attacks fgsm,deepfool`.split(
      ' ',
    ),
    ...`--detectors 3 --max-images 40 --baseline-fit-images 60 --report ${report}`.split(' '),
    ...more,
  ];

  it('adds one row per peer detector and attack to metrics.json, the report and the matrix', async () => {
    const report = join(dir(), 'report');
    const out = JSON.parse(await nfp(evaluate(report, ['--baselines', 'mahalanobis,lid,squeeze']))) as {
      banks: Array<{ baselines: Array<{ detector: string; auc: Record<string, number> }> }>;
    };
    const metrics = JSON.parse(readFileSync(join(report, 'metrics.json'), 'utf8')) as Evaluation;
    const peers = metrics.baselines!;
    expect(peers.baselines.map((b) => b.name)).to.deep.equal(['mahalanobis', 'lid', 'squeeze']);
    // The bank's calibration rows (1,200-1,500, the default 20% share) and FPR; the evaluation's clean
    // images (the correctly classified held-out ones) and its adversarial images.
    expect(peers.calibration).to.equal(300);
    expect(peers.fpr).to.equal(metrics.bank.fpr);
    expect(peers.clean).to.equal(metrics.clean.correct);
    for (const b of peers.baselines) {
      expect(b.attacks.map((a) => [a.attack, a.adversarial])).to.deep.equal(
        metrics.attacks.map((a) => [a.attack, a.adversarial]),
      );
      expect(b.fprAtThreshold).to.be.within(0, 0.25);
      expect(b.cost.scoredImages).to.equal(peers.clean + metrics.attacks.reduce((n, a) => n + a.adversarial, 0));
      expect(b.cost.scoreSecondsPerImage).to.be.greaterThan(0);
      for (const a of b.attacks) {
        expect(a.auc).to.be.within(0, 1);
        expect(a.tprAt1).to.be.at.most(a.tprAt5);
      }
    }
    // Mahalanobis and LID learn from the fit rows (clean ones and PGD, the bank's family); squeezing from nothing.
    const [maha, lid, squeeze] = peers.baselines;
    expect(maha!.cost.fitImages).to.be.greaterThan(1000);
    expect(lid!.cost.fitImages).to.be.greaterThan(0);
    expect(squeeze!.cost.fitImages).to.equal(0);
    // FGSM at eps 0.1 is far from the clean images: every peer detector sees it.
    for (const b of peers.baselines) expect(b.attacks[0]!.auc, b.name).to.be.greaterThan(0.7);

    expect(out.banks[0]!.baselines.map((b) => Object.keys(b.auc))).to.deep.equal([
      ['fgsm', 'deepfool'],
      ['fgsm', 'deepfool'],
      ['fgsm', 'deepfool'],
    ]);
    const md = readFileSync(join(report, 'report.md'), 'utf8');
    expect(md).to.match(/## Peer detectors/);
    for (const name of ['fingerprints', 'mahalanobis', 'lid', 'squeeze'])
      expect(md).to.match(new RegExp(`\\| ${name} \\| fgsm \\|`));
    const matrix = JSON.parse(readFileSync(join(report, 'matrix.json'), 'utf8')) as {
      attacks: string[];
      baselines: Array<{ detector: string; auc: number[]; tprAt5: number[]; cleanFpr: number }>;
    };
    expect(matrix.attacks).to.deep.equal(['fgsm', 'deepfool']);
    expect(matrix.baselines.map((b) => b.detector)).to.deep.equal(['mahalanobis', 'lid', 'squeeze']);
    expect(matrix.baselines[1]!.auc[0]).to.equal(lid!.attacks[0]!.auc);
    expect(readFileSync(join(report, 'matrix.md'), 'utf8')).to.match(/\| squeeze \(peer detector\) \|/);
  });

  it('refuses, before any attack runs, what it cannot carry out', async () => {
    const report = join(dir(), 'bad');
    expect(await usageError(evaluate(report, ['--baselines', 'mahalanobis,odin']))).to.match(
      /unknown baseline 'odin' \(known: mahalanobis, lid, squeeze\)/,
    );
    const other = join(dir(), 'other.npy');
    const test = await loadFashionMnist({ split: 'test' });
    writeNpy(other, { dims: [2000, 1, 28, 28], data: test.data.subarray(2000 * 784, 4000 * 784) });
    const args = evaluate(report, ['--baselines', 'squeeze']);
    args[args.indexOf(data)] = other;
    expect(await usageError(args)).to.match(/--baselines fit on the rows the bank was fitted and calibrated on/);
  });
});
