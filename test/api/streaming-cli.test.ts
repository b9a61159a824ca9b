// `nfp predict`, `nfp detect`, `nfp attack` and `nfp bank calibrate` over files read a batch at a time
// (issue 17, items 5, 6 and 9): the same results as reading everything, memory that depends on the
// batch and not on the file (peak RSS measured in a child process), and options checked before work.
import { spawnSync } from 'node:child_process';
import { mkdirSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

import { expect } from 'chai';
import type { CommanderError } from 'commander';

import { PGD, randomTargets } from '../../src/attacks/index.js';
import { GradientModel } from '../../src/autodiff/index.js';
import { readBank } from '../../src/bank/index.js';
import { registerAttackCommand } from '../../src/cli/attack.js';
import { registerBankCommand } from '../../src/cli/bank.js';
import { registerDetectCommand } from '../../src/cli/detect.js';
import { registerFitCommand } from '../../src/cli/fit.js';
import { registerPredictCommand } from '../../src/cli/predict.js';
import { loadFashionMnist, readNpy, writeNpy } from '../../src/data/index.js';
import { Classifier } from '../../src/model/index.js';
import { packageRoot } from '../../src/paths.js';
import { SeededRandom } from '../../src/random.js';
import { expectUsageError, runCommands } from '../reference/cli.js';
import { idxWithHeader, npyWithHeader, solidImage } from '../reference/hostile-inputs.js';
import { writeSmallBank } from '../reference/small-bank.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const nfp = (args: string[]) =>
  runCommands(
    [registerPredictCommand, registerDetectCommand, registerAttackCommand, registerBankCommand, registerFitCommand],
    args,
  );
const jsonLines = (out: string) =>
  out
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const usageError = (args: string[]): Promise<CommanderError> => expectUsageError(nfp, args, 2);

/** Peak RSS and images seen of an experiment run by test/reference/rss-child.ts. */
function inChild(spec: Record<string, unknown>): { images: number; maxRssMB: number } {
  const child = spawnSync(
    process.execPath,
    ['--import', 'tsx', join(packageRoot, 'test', 'reference', 'rss-child.ts'), JSON.stringify(spec)],
    { encoding: 'utf8', cwd: packageRoot },
  );
  expect(child.status, child.stderr.slice(-2000)).to.equal(0);
  return JSON.parse(child.stdout) as { images: number; maxRssMB: number };
}

describe('nfp predict, detect, attack and bank calibrate over files', function () {
  this.timeout(300_000);
  const dir = useTempDir('nfp-streaming-');
  const test = loadFashionMnist({ split: 'test' });
  const rows = 40;
  const images = () => join(dir(), 'x.npy');
  const labels = () => join(dir(), 'y.npy');
  const bank = () => join(dir(), 'bank.nfp');

  before(async () => {
    writeNpy(images(), { dims: [rows, 1, 28, 28], data: test.data.subarray(0, rows * 784) });
    writeNpy(labels(), { dims: [rows], data: test.labels.subarray(0, rows) });
    await writeSmallBank(modelPath, bank());
  });

  it('predict streams batches to the same predictions as one run, and checks --labels and --data first', async () => {
    const lines = jsonLines(
      await nfp(['predict', '--model', modelPath, '--data', images(), '--labels', labels(), '--batch-size', '7']),
    );
    const classifier = await Classifier.load(modelPath, { taps: [] });
    const whole = await classifier.run({ data: test.data.subarray(0, rows * 784), dims: [rows, 1, 28, 28] });
    await classifier.release();
    expect(lines.map((l) => l.index)).to.deep.equal(Array.from({ length: rows }, (_, i) => i));
    expect(lines.map((l) => l.label)).to.deep.equal(Array.from(whole.labels));
    expect(lines.map((l) => l.truth)).to.deep.equal(Array.from(test.labels.subarray(0, rows)));

    const three = join(dir(), 'three.npy');
    writeNpy(three, { dims: [3], data: new Int32Array(3) });
    const mismatch = await usageError(['predict', '--model', modelPath, '--data', images(), '--labels', three]);
    expect(mismatch.message).to.contain('--labels has 3 labels but --data has 40 images');
    const rgb = join(dir(), 'rgb.npy');
    writeNpy(rgb, { dims: [2, 3, 8, 8], data: new Float32Array(384) });
    const shape = await usageError(['predict', '--model', modelPath, '--data', rgb]);
    expect(shape.message).to.contain('--data holds images [3, 8, 8] but the model takes [1, 28, 28]');
    const rgbLabels = join(dir(), 'rgb-labels.npy');
    writeNpy(rgbLabels, { dims: [2], data: new Int32Array(2) });
    const attack = ['attack', '--model', modelPath, '--data', rgb, '--labels', rgbLabels, '--attack', 'fgsm'];
    const attacked = await usageError([...attack, '--eps', '0.1', '--out', join(dir(), 'rgb-adv.npy')]);
    expect(attacked.message).to.contain('--data holds images [3, 8, 8] but the model takes [1, 28, 28]');
  });

  it('predict decodes an image folder to the model input, by content, with --image-formats', async () => {
    const root = join(dir(), 'folder');
    mkdirSync(join(root, 'a'), { recursive: true });
    writeFileSync(join(root, 'a', 'one.png'), await solidImage(40, 30, 'png'));
    writeFileSync(join(root, 'a', 'two.png'), await solidImage(30, 40, 'gif'));
    const args = ['predict', '--model', modelPath, '--data', root];
    let error: unknown;
    try {
      await nfp(args);
    } catch (err) {
      error = err;
    }
    expect((error as Error).message).to.contain('two.png: cannot decode image (GIF images are not accepted');
    const lines = jsonLines(await nfp([...args, '--image-formats', 'png,gif']));
    expect(lines.map((l) => [l.index, l.truth])).to.deep.equal([
      [0, 0],
      [1, 0],
    ]);
  });

  it('fit reads an image folder as the model takes it, with --image-formats', async () => {
    const root = join(dir(), 'fit-folder');
    mkdirSync(join(root, 'a'), { recursive: true });
    writeFileSync(join(root, 'a', 'one.png'), await solidImage(40, 30, 'png'));
    writeFileSync(join(root, 'a', 'two.png'), await solidImage(30, 40, 'gif'));
    const args = ['fit', '--model', modelPath, '--data', root, '--eps', '0.1', '--out', join(dir(), 'fit.nfp')];
    const failure = async (extra: string[]) => {
      try {
        await nfp([...args, ...extra]);
      } catch (err) {
        return (err as Error).message;
      }
      return expect.fail('expected the fit of two images to stop');
    };
    expect(await failure([])).to.contain('two.png: cannot decode image (GIF images are not accepted');
    // Decoded (RGB, 40x30) to the model's [1, 28, 28]: the fit gets as far as the images' labels.
    expect(await failure(['--image-formats', 'png,gif'])).to.contain('correctly classified images of class');
  });

  it('predict holds the rows it uses, not the file: 100 of a 200 MB .npy of 256,000 images', () => {
    // The file, sparse on disk: a 256,000 x 1 x 28 x 28 uint8 header and 200 MB of zeros.
    const path = join(dir(), 'u8-256k.npy');
    const header = npyWithHeader("{'descr': '|u1', 'fortran_order': False, 'shape': (256000, 1, 28, 28), }");
    writeFileSync(path, header);
    truncateSync(path, header.length + 256_000 * 784);
    const { images: seen, maxRssMB } = inChild({ predict: { model: modelPath, data: path, limit: 100 } });
    expect(seen).to.equal(100);
    // Before: the whole file as float32 (800 MB), and an abort building Float32Array.from's array.
    expect(maxRssMB, `peak RSS ${maxRssMB} MB`).to.be.below(300);
  });

  it('detect scores a 4,000-image file a batch at a time: memory of the batch, not of the file', () => {
    const path = join(dir(), 'blank-images-idx3-ubyte.gz');
    writeFileSync(path, gzipSync(idxWithHeader([4000, 28, 28], new Uint8Array(4000 * 784))));
    const { images: seen, maxRssMB } = inChild({
      detect: { model: modelPath, bank: bank(), threshold: 0, inputs: [path] },
    });
    expect(seen).to.equal(4000);
    // Before: every image's 54,602 tapped activations at once, 1.0 GB for these 4,000 (4.4 GB for 20,000).
    expect(maxRssMB, `peak RSS ${maxRssMB} MB`).to.be.below(600);
  });

  it('detect reads tensor files in batches and image files by content; a missing input fails before any work', async () => {
    const png = join(dir(), 'boot.png');
    writeFileSync(png, await solidImage(28, 28, 'png', { r: 0, g: 0, b: 0 }));
    const base = ['detect', '--model', modelPath, '--bank', bank(), '--threshold', '0', '--batch-size', '6'];
    const lines = jsonLines(await nfp([...base, images(), png]));
    expect(lines.map((l) => [l.input, l.index])).to.deep.equal([
      ...Array.from({ length: rows }, (_, i) => [images(), i]),
      [png, 0],
    ]);
    const classifier = await Classifier.load(modelPath, { taps: [] });
    const whole = await classifier.run({ data: test.data.subarray(0, rows * 784), dims: [rows, 1, 28, 28] });
    await classifier.release();
    expect(lines.slice(0, rows).map((l) => l.label)).to.deep.equal(Array.from(whole.labels));

    let out = '';
    let error: unknown;
    try {
      out = await nfp([...base, images(), join(dir(), 'missing.npy')]);
    } catch (err) {
      error = err;
    }
    expect((error as Error).message).to.match(/missing\.npy: cannot read/);
    expect(out).to.equal('');
    const rgb = join(dir(), 'rgb-detect.npy');
    writeNpy(rgb, { dims: [2, 3, 8, 8], data: new Float32Array(384) });
    const shape = await usageError([...base, images(), rgb]);
    expect(shape.message).to.contain(`${rgb} holds images [3, 8, 8] but the model takes [1, 28, 28]`);
    const svg = join(dir(), 'x.png');
    writeFileSync(
      svg,
      '<svg xmlns="http://www.w3.org/2000/svg" width="28" height="28"><rect width="9" height="9"/></svg>',
    );
    try {
      await nfp([...base, svg]);
      expect.fail('expected a refusal');
    } catch (err) {
      expect((err as Error).message).to.contain('SVG images are not accepted');
    }
    expect(jsonLines(await nfp([...base, '--image-formats', 'svg', svg]))).to.have.length(1);
  });

  it('attack streams batches through one random stream: the images one run over all of them makes', async () => {
    const out = join(dir(), 'pgd.npy');
    const summary = jsonLines(
      await nfp([
        'attack',
        '--model',
        modelPath,
        '--data',
        images(),
        '--labels',
        labels(),
        '--attack',
        'pgd',
        '--eps',
        '0.1',
        '--steps',
        '3',
        '--targeted',
        '--seed',
        '5',
        '--batch-size',
        '8',
        '--out',
        out,
      ]),
    )[0]!;
    const y = test.labels.subarray(0, rows);
    const targets = randomTargets(y, 10, new SeededRandom(5));
    const keep = [...targets.keys()].filter((i) => targets[i] !== y[i]);
    expect(summary.images).to.equal(keep.length);
    const model = await GradientModel.load(modelPath, { taps: [], inputShape: [1, 28, 28], batchSize: 8 });
    const reference = await new PGD({ eps: 0.1, steps: 3 }).run(
      model,
      {
        data: Float32Array.from(keep.flatMap((i) => Array.from(test.data.subarray(i * 784, (i + 1) * 784)))),
        dims: [keep.length, 1, 28, 28],
      },
      {
        labels: Int32Array.from(keep, (i) => y[i]!),
        targets: Int32Array.from(keep, (i) => targets[i]!),
        seed: 5,
        batchSize: 8,
      },
    );
    await model.release();
    const adv = readNpy(out);
    expect(adv.dims).to.deep.equal([keep.length, 1, 28, 28]);
    expect(Buffer.from((adv.data as Float32Array).buffer).equals(Buffer.from(reference.adv.buffer))).to.equal(true);
    expect(Array.from(readNpy(join(dir(), 'pgd.success.npy')).data as Uint8Array)).to.deep.equal(
      Array.from(reference.success),
    );
  });

  it('bank calibrate checks --fpr, --out and --data before loading the model, and calibrates on --limit images', async () => {
    const base = ['bank', 'calibrate', '--model', modelPath, '--bank', bank(), '--data', images()];
    const out = join(dir(), 'calibrated.nfp');
    expect((await usageError([...base, '--fpr', '0', '--out', out])).message).to.contain(
      'Expected a rate in (0, 1) for --fpr but received 0',
    );
    expect((await usageError([...base, '--out', join(dir(), 'no', 'such', 'b.nfp')])).message).to.contain(
      'Expected --out in an existing folder',
    );
    expect((await usageError([...base, '--out', dir()])).message).to.contain('.nfp path for --out');
    const rgb = join(dir(), 'rgb32.npy');
    writeNpy(rgb, { dims: [2, 3, 32, 32], data: new Float32Array(2 * 3 * 32 * 32) });
    const shape = await usageError([
      'bank',
      'calibrate',
      '--model',
      modelPath,
      '--bank',
      bank(),
      '--data',
      rgb,
      '--out',
      out,
    ]);
    expect(shape.message).to.contain('--data holds images [3, 32, 32] but the model takes [1, 28, 28]');
    const result = jsonLines(await nfp([...base, '--limit', '30', '--draws-per-image', '2', '--out', out]))[0]!;
    expect(result.images).to.equal(30);
    expect(readBank(out).header.calibration?.images).to.equal(30);
  });
});
