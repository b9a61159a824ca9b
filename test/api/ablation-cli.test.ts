// `nfp evaluate --ablate` as commander runs it, in-process: a small bank fitted on the first 1,500
// of 2,000 shipped Fashion-MNIST test images (bank-cli.test.ts's settings), ablated over draws and
// top (no refit) and k (a refit, which at the bank's own k reproduces the bank), and the usage
// errors of requests that cannot be measured.
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

/** Runs `nfp <args>` with stdout captured (stderr silenced); returns stdout. */
const nfp = (args: string[]): Promise<string> => runCommands([registerFitCommand, registerEvaluateCommand], args);

const usageError = async (args: string[]): Promise<string> => (await expectUsageError(nfp, args)).message;

describe('nfp evaluate --ablate', function () {
  this.timeout(300000);
  const dir = useTempDir('nfp-ablate-');
  let data = '';
  let labels = '';
  let bank = '';

  before(async () => {
    ({ data, labels, bank } = await sharedSmallCliBank());
  });

  const evaluate = (report: string, ablate: string[]) => [
    'evaluate',
    '--model',
    modelPath,
    '--bank',
    bank,
    '--data',
    data,
    '--labels',
    labels,
    '--attacks',
    'fgsm',
    '--detectors',
    '3',
    '--max-images',
    '40',
    '--report',
    report,
    ...ablate,
  ];

  it('measures draws and top without a refit and k with one, on the same attacked images', async () => {
    const report = join(dir(), 'report');
    const out = JSON.parse(
      await nfp(
        evaluate(report, [
          '--ablate',
          'draws=1,25',
          '--ablate',
          'top=10,100',
          '--ablate',
          'k=5',
          '--refit-attack-mode',
          'untargeted',
        ]),
      ),
    ) as {
      banks: Array<{
        attacks: Array<{ auc: number }>;
        ablations: Array<{
          parameter: string;
          rows: Array<{ setting: string; own: boolean; auc: Record<string, number> }>;
        }>;
      }>;
    };
    expect(out.banks[0]!.ablations.map((a) => [a.parameter, a.rows.map((r) => r.setting)])).to.deep.equal([
      ['draws', ['1', '25']],
      ['top', ['10', '100']],
      ['k', ['5']],
    ]);
    const metrics = JSON.parse(readFileSync(join(report, 'metrics.json'), 'utf8')) as Evaluation;
    const [draws, top, k] = metrics.ablations!;
    expect(draws!.rows.map((r) => r.own)).to.deep.equal([false, true]);
    expect(top!.rows.map((r) => r.fingerprints)).to.deep.equal([100, metrics.bank.fingerprints]);
    expect(top!.rows[1]!.own).to.equal(true);
    // The refit at the bank's own k with its recorded seed and settings is the bank itself.
    expect(k!.refit).to.equal(true);
    expect(k!.rows[0]!.reproducesBank).to.equal(true);
    for (const a of metrics.ablations!) {
      expect(a.detectors).to.equal(3);
      for (const r of a.rows) {
        expect(r.fprAtThreshold).to.be.within(0, 0.25);
        expect(r.attacks.map((x) => x.attack)).to.deep.equal(['fgsm']);
        // Every setting sees the main evaluation's attacked images.
        expect(r.attacks[0]!.adversarial).to.equal(metrics.attacks[0]!.adversarial);
        expect(r.attacks[0]!.auc).to.be.within(0.5, 1);
      }
    }
    // The same bank, draws and seeded draws: the rows at the bank's own settings agree.
    expect(draws!.rows[1]!.attacks[0]!.auc).to.equal(top!.rows[1]!.attacks[0]!.auc);
    expect(draws!.rows[1]!.attacks[0]!.auc).to.equal(k!.rows[0]!.attacks[0]!.auc);
    const md = readFileSync(join(report, 'report.md'), 'utf8');
    expect(md).to.match(/## Ablations/);
    expect(md).to.match(/\| 25 \* \|/);
    expect(md).to.match(/--ablate draws=1,25 --ablate top=10,100 --ablate k=5 --refit-attack-mode untargeted/);
    expect(readFileSync(join(report, 'report.html'), 'utf8')).to.match(/<h3>draws: fingerprints drawn per input/);
    for (const name of ['ablation-draws', 'ablation-top', 'ablation-k'])
      expect(readFileSync(join(report, 'figures', `${name}.svg`), 'utf8')).to.match(/<svg/);
  });

  it('refuses, before any attack runs, what it cannot measure', async () => {
    const report = join(dir(), 'bad');
    expect(await usageError(evaluate(report, ['--ablate', 'top=50,500']))).to.match(
      /--ablate top=500: the bank was fitted to keep at most 100 fingerprints per class/,
    );
    expect(await usageError(evaluate(report, ['--ablate', 'k=2000']))).to.match(
      /--ablate k=2000: k cannot exceed the bank's 1290 tapped neurons/,
    );
    expect(await usageError(evaluate(report, ['--ablate', 'taps=auto;/features/nope,logits']))).to.match(
      /--ablate taps=\/features\/nope,logits: .*\/features\/nope/,
    );
    expect(await usageError(evaluate(report, ['--ablate', 'm=5']))).to.match(
      /option '--ablate <parameter=values>' argument 'm=5' is invalid\. unknown parameter 'm'/,
    );
    expect(await usageError(evaluate(report, ['--ablate', 'draws=5', '--ablate', 'draws=7']))).to.match(
      /draws is ablated twice/,
    );
    expect(await usageError([...evaluate(report, ['--ablate', 'draws=5']), '--bank', bank, bank])).to.match(
      /--ablate takes one --bank but received/,
    );
    const other = join(dir(), 'other.npy');
    const test = await loadFashionMnist({ split: 'test' });
    writeNpy(other, { dims: [2000, 1, 28, 28], data: test.data.subarray(2000 * 784, 4000 * 784) });
    const args = evaluate(report, ['--ablate', 'draws=5']);
    args[args.indexOf(data)] = other;
    expect(await usageError(args)).to.match(
      /--ablate: The data is not what the bank was fitted on \(x\.npy, 2000 images/,
    );
  });
});
