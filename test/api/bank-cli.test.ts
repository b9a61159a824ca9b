// `nfp fit`, `nfp detect` and `nfp bank info | merge | calibrate` as commander runs them, in-process,
// on a small slice of the shipped Fashion-MNIST test set with the committed CNN.
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { readBank } from '../../src/bank/index.js';
import { registerBankCommand } from '../../src/cli/bank.js';
import { registerDetectCommand } from '../../src/cli/detect.js';
import { registerEvaluateCommand } from '../../src/cli/evaluate.js';
import { registerFitCommand } from '../../src/cli/fit.js';
import { loadFashionMnist, writeNpy } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { expectUsageError, runCommands } from '../reference/cli.js';
import { smallFitArgs } from '../reference/small-fit.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const testImages = join(packageRoot, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

/** Runs `nfp <args>` with stdout captured (stderr silenced); returns stdout. */
const nfp = (args: string[]): Promise<string> =>
  runCommands([registerFitCommand, registerDetectCommand, registerBankCommand, registerEvaluateCommand], args);

const small = smallFitArgs({ model: modelPath, data: testImages });

describe('nfp fit, detect and bank', function () {
  this.timeout(300000);
  const dir = useTempDir('nfp-bank-cli-');

  it('fits and calibrates a bank, shows it, and detects with it', async () => {
    const out = join(dir(), 'bank.nfp');
    const fit = JSON.parse(await nfp(['fit', ...small, '--out', out])) as {
      fingerprints: number;
      perClass: number[];
      calibrationImages: number;
      threshold: number;
    };
    expect(fit.perClass).to.have.length(10);
    expect(fit.calibrationImages).to.equal(300);
    expect(Number.isFinite(fit.threshold)).to.equal(true);
    const bank = readBank(out);
    expect(bank.fingerprints).to.equal(fit.fingerprints);
    expect(bank.header.calibration?.draws).to.equal(25);

    const info = JSON.parse(await nfp(['bank', 'info', out, '--json'])) as {
      fingerprints: number;
      classes: unknown[];
      effectHistogram: Array<{ count: number }>;
    };
    expect(info.fingerprints).to.equal(fit.fingerprints);
    expect(info.effectHistogram.reduce((a, b) => a + b.count, 0)).to.equal(fit.fingerprints);
    expect(await nfp(['bank', 'info', out])).to.match(/\|d\| histogram/);

    const test = await loadFashionMnist({ split: 'test' });
    const x = join(dir(), 'x.npy');
    writeNpy(x, { dims: [5, 1, 28, 28], data: test.data.subarray(9000 * 784, 9005 * 784) });
    const lines = (await nfp(['detect', '--model', modelPath, '--bank', out, '--explain', x]))
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { input: string; index: number; label: number; attacked: boolean; fingerprints: number[] },
      );
    expect(lines.map((l) => l.index)).to.deep.equal([0, 1, 2, 3, 4]);
    for (const l of lines) {
      expect(l.input).to.equal(x);
      expect(l.fingerprints.length).to.be.greaterThan(0);
    }

    // Evaluating on the same data file leaves out the bank's own fit and calibration rows.
    const report = join(dir(), 'report');
    const evaluation = JSON.parse(
      await nfp([
        'evaluate',
        '--model',
        modelPath,
        '--bank',
        out,
        '--data',
        testImages,
        '--attacks',
        'fgsm',
        '--detectors',
        '3',
        '--max-images',
        '30',
        '--report',
        report,
      ]),
    ) as { banks: Array<{ attacks: Array<{ attack: string }> }> };
    expect(evaluation.banks[0]!.attacks.map((a) => a.attack)).to.deep.equal(['fgsm']);
    expect(readFileSync(join(report, 'report.md'), 'utf8')).to.match(
      /rows 0-1200 fitted the bank, 1200-1500 calibrated it; rows 1500-10000 evaluated/,
    );

    // Two banks (fitted on different attacks) on the same attacked images: a cross-attack matrix.
    const fgsmBank = join(dir(), 'fgsm.nfp');
    await nfp(['fit', ...small.map((a) => (a === 'pgd' ? 'fgsm' : a)), '--limit', '1600', '--out', fgsmBank]);
    const both = join(dir(), 'matrix');
    const matrix = JSON.parse(
      await nfp([
        'evaluate',
        '--model',
        modelPath,
        '--bank',
        out,
        fgsmBank,
        '--data',
        testImages,
        '--attacks',
        'fgsm,pgd',
        '--steps',
        '3',
        '--detectors',
        '3',
        '--max-images',
        '30',
        '--report',
        both,
      ]),
    ) as { matrix: string; banks: Array<{ attacks: Array<{ auc: number }> }> };
    expect(matrix.banks).to.have.length(2);
    const table = readFileSync(matrix.matrix, 'utf8');
    expect(table).to.match(/\| bank.nfp \(pgd\) \|/);
    expect(table).to.match(/\| fgsm.nfp \(fgsm\) \|/);
    expect(readFileSync(join(both, 'bank', 'report.md'), 'utf8')).to.match(/all banks evaluated on rows 1600-10000/);
    const json = JSON.parse(readFileSync(join(both, 'matrix.json'), 'utf8')) as {
      attacks: string[];
      banks: Array<{ auc: number[] }>;
    };
    expect(json.attacks).to.deep.equal(['fgsm', 'pgd']);
    expect(json.banks[1]!.auc).to.have.length(2);

    // Two banks with one file name: each keeps its own report, told apart by position.
    mkdirSync(join(dir(), 'copy'));
    const twin = join(dir(), 'copy', 'bank.nfp');
    copyFileSync(out, twin);
    const twins = join(dir(), 'twins');
    await nfp([
      'evaluate',
      '--model',
      modelPath,
      '--bank',
      out,
      twin,
      '--data',
      testImages,
      '--attacks',
      'fgsm',
      '--detectors',
      '2',
      '--max-images',
      '10',
      '--report',
      twins,
    ]);
    expect(existsSync(join(twins, 'bank-1', 'report.md')) && existsSync(join(twins, 'bank-2', 'report.md'))).to.equal(
      true,
    );
    expect(readFileSync(join(twins, 'matrix.md'), 'utf8')).to.match(
      /\| bank.nfp \[1\] \(pgd\) \|[\s\S]*\| bank.nfp \[2\] \(pgd\) \|/,
    );
  });

  it('fits class shards, merges them and calibrates the merged bank', async () => {
    const a = join(dir(), 'a.nfp');
    const b = join(dir(), 'b.nfp');
    await nfp(['fit', ...small, '--classes', '0-4', '--out', a]);
    await nfp(['fit', ...small, '--classes', '5-9', '--out', b]);
    expect(readBank(a).header.classes.map((c) => c.fitted)).to.deep.equal([
      true,
      true,
      true,
      true,
      true,
      false,
      false,
      false,
      false,
      false,
    ]);
    expect(readBank(a).header.calibration).to.equal(undefined);
    const merged = join(dir(), 'merged.nfp');
    const m = JSON.parse(await nfp(['bank', 'merge', a, b, '--out', merged])) as { fittedClasses: number };
    expect(m.fittedClasses).to.equal(10);
    const test = await loadFashionMnist({ split: 'test' });
    const held = join(dir(), 'held.npy');
    writeNpy(held, { dims: [400, 1, 28, 28], data: test.data.subarray(8000 * 784, 8400 * 784) });
    const cal = JSON.parse(
      await nfp([
        'bank',
        'calibrate',
        '--model',
        modelPath,
        '--bank',
        merged,
        '--data',
        held,
        '--draws-per-image',
        '2',
        '--out',
        merged,
      ]),
    ) as { fpr: number; images: number };
    expect(cal.fpr).to.equal(0.05);
    expect(cal.images).to.equal(400);
    expect(readBank(merged).header.calibration?.images).to.equal(400);
    let error: unknown;
    try {
      await nfp(['bank', 'merge', a, a, '--out', join(dir(), 'x.nfp')]);
    } catch (e) {
      error = e;
    }
    expect((error as Error).message).to.match(/fitted in two/);
  });

  it('answers bad usage with a usage error', async () => {
    for (const [args, message] of [
      [
        ['fit', '--model', modelPath, '--data', testImages, '--attacks', 'pgd', '--out', join(dir(), 'x.nfp')],
        /need --eps/,
      ],
      [
        [
          'fit',
          '--model',
          modelPath,
          '--data',
          testImages,
          '--attacks',
          'jsma',
          '--eps',
          '0.1',
          '--out',
          join(dir(), 'x.nfp'),
        ],
        /unknown attack 'jsma'/,
      ],
      [
        [
          'fit',
          '--model',
          modelPath,
          '--data',
          testImages,
          '--eps',
          '0.1',
          '--classes',
          '3-1',
          '--out',
          join(dir(), 'x.nfp'),
        ],
        /bad range/,
      ],
      [
        ['fit', '--model', modelPath, '--data', testImages, '--eps', '0.1', '--out', join(dir(), 'x.bin')],
        /\.nfp path for --out/,
      ],
    ] as Array<[string[], RegExp]>) {
      expect((await expectUsageError(nfp, args)).message).to.match(message);
    }
  });
});
