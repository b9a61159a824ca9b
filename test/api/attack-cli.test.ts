// `nfp attack` as commander runs it: registered on a fresh program and parsed in-process; its .npy
// outputs checked against the model, and bad usage answered with exit code 2.
import { join } from 'node:path';

import { expect } from 'chai';
import { CommanderError } from 'commander';

import { GradientModel } from '../../src/autodiff/index.js';
import { registerAttackCommand } from '../../src/cli/attack.js';
import { readNpy, writeNpy } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { runCommands } from '../reference/cli.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const testImages = join(packageRoot, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');

/** Runs `nfp attack <args>` with stdout captured (stderr silenced); returns stdout. */
const attack = (args: string[]): Promise<string> => runCommands([registerAttackCommand], ['attack', ...args]);

/** Bad usage ends as a CommanderError, which the shipped `nfp` (main.ts) turns into exit code 2. */
async function usageError(args: string[], message: RegExp): Promise<void> {
  const error = await attack(args).then(
    () => expect.fail('no error'),
    (e: unknown) => e,
  );
  expect(error).to.be.instanceOf(CommanderError);
  expect((error as CommanderError).exitCode).to.not.equal(0);
  expect((error as CommanderError).message).to.match(message);
}

describe('nfp attack', function () {
  this.timeout(120000);
  const dir = useTempDir('nfp-attack-');

  it('writes adversarial images, labels, predictions and success flags that the model confirms', async () => {
    const out = join(dir(), 'pgd.npy');
    const line = await attack([
      '--model',
      modelPath,
      '--data',
      testImages,
      '--limit',
      '24',
      '--attack',
      'pgd',
      '--eps',
      '0.1',
      '--steps',
      '5',
      '--seed',
      '1',
      '--out',
      out,
    ]);
    const summary = JSON.parse(line) as {
      images: number;
      successes: number;
      successRate: number;
      linf: { max: number };
    };
    expect(summary.images).to.equal(24);
    expect(summary.linf.max).to.be.at.most(0.1 + 1e-6);
    const adv = readNpy(out);
    expect(adv.dims).to.deep.equal([24, 1, 28, 28]);
    const labels = readNpy(join(dir(), 'pgd.labels.npy')).data as Int32Array;
    const predicted = readNpy(join(dir(), 'pgd.predicted.npy')).data as Int32Array;
    const success = readNpy(join(dir(), 'pgd.success.npy')).data as Uint8Array;
    const model = await GradientModel.load(modelPath, { taps: [] });
    try {
      const logits = await model.logits({ data: adv.data as Float32Array, dims: adv.dims });
      for (let r = 0; r < 24; r++) {
        const z = logits.subarray(r * 10, (r + 1) * 10);
        expect(predicted[r]).to.equal(z.indexOf(Math.max(...z)));
        expect(success[r]).to.equal(predicted[r] !== labels[r] ? 1 : 0);
      }
    } finally {
      await model.release();
    }
    expect(summary.successes).to.equal(success.reduce((a, b) => a + b, 0));
  });

  it('attacks towards one class, leaving out images already of it, from a .npy with --labels', async () => {
    const x = join(dir(), 'x.npy');
    const y = join(dir(), 'y.npy');
    const images = readNpy(join(packageRoot, 'test', 'testdata', 'attacks', 'fmnist-cnn.fgsm.npy'));
    writeNpy(x, { dims: [12, 1, 28, 28], data: (images.data as Float32Array).subarray(0, 12 * 784) });
    writeNpy(y, { dims: [12], data: Int32Array.from({ length: 12 }, (_, i) => i % 4) });
    const out = join(dir(), 'df.npy');
    const summary = JSON.parse(
      await attack([
        '--model',
        modelPath,
        '--data',
        x,
        '--labels',
        y,
        '--attack',
        'deepfool',
        '--targeted',
        '--target',
        '2',
        '--out',
        out,
      ]),
    ) as { images: number; skippedAlreadyTarget: number; successRate: number };
    expect(summary.images).to.equal(9);
    expect(summary.skippedAlreadyTarget).to.equal(3);
    const targets = readNpy(join(dir(), 'df.targets.npy')).data as Int32Array;
    expect([...targets]).to.deep.equal(new Array(9).fill(2));
    const predicted = readNpy(join(dir(), 'df.predicted.npy')).data as Int32Array;
    const success = readNpy(join(dir(), 'df.success.npy')).data as Uint8Array;
    success.forEach((s, i) => {
      expect(s).to.equal(predicted[i] === 2 ? 1 : 0);
    });
  });

  it('answers bad usage with a usage error', async () => {
    const base = ['--model', modelPath, '--data', testImages, '--limit', '2', '--out', join(dir(), 'a.npy')];
    await usageError([...base, '--attack', 'pgd'], /--attack pgd needs --eps/);
    await usageError([...base, '--attack', 'jsma', '--eps', '0.1'], /jsma/);
    await usageError([...base, '--attack', 'pgd', '--eps', '-1'], /positive number/);
    await usageError([...base, '--attack', 'cw', '--target', '3'], /--target needs --targeted/);
    await usageError(
      [...base, '--attack', 'cw', '--targeted', '--target', '12'],
      /class in \[0, 10\) or 'random' for --target/,
    );
    await usageError(
      ['--model', modelPath, '--data', testImages, '--attack', 'cw', '--out', join(dir(), 'a.bin')],
      /\.npy path for --out/,
    );
  });
});
