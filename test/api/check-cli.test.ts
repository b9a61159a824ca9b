// `nfp check` and the check that long commands run first; `nfp predict` and `nfp attack` on a model
// exported channels-last with a fixed batch of 1 and softmax probabilities out, given NCHW data.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { registerAttackCommand } from '../../src/cli/attack.js';
import type { checkModel } from '../../src/experiment/index.js';
import { registerCheckCommand } from '../../src/cli/check.js';
import { predictCommand } from '../../src/cli/predict.js';
import { readNpy } from '../../src/data/index.js';
import { ModelProtoType } from '../../src/model/onnx-schema.js';
import { packageRoot } from '../../src/paths.js';
import { captureStdout, runCommands } from '../reference/cli.js';
import { useTempDir } from '../reference/temp-dir.js';

const fixturesDir = join(packageRoot, 'test', 'testdata', 'gradients');
const cnn = join(packageRoot, 'models', 'fmnist-cnn.onnx');

/** x [N, 1, 2, 2] -> logits through a Gemm, then Hardmax and CumSum (no gradient rules) on the way to the output. */
function unsupportedModel(): Uint8Array {
  const image = {
    tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }, { dimValue: 2 }, { dimValue: 2 }] } },
  };
  const node = (opType: string, input: string[], output: string, attribute: object[] = []) => ({
    name: `m/${opType}_${output}`,
    opType,
    input,
    output: [output],
    attribute,
  });
  return ModelProtoType.encode(
    ModelProtoType.fromObject({
      irVersion: 8,
      opsetImport: [{ version: 13 }],
      graph: {
        name: 'unsupported',
        node: [
          node('Flatten', ['x'], 'f'),
          node('Gemm', ['f', 'w'], 'z'),
          node('Hardmax', ['z'], 'h'),
          node('CumSum', ['f', 'axis'], 'c'),
          node('Gemm', ['c', 'w'], 'cz'),
          node('Add', ['h', 'z'], 'hz'),
          node('Add', ['hz', 'cz'], 'y'),
        ],
        initializer: [
          { name: 'w', dims: [4, 3], dataType: 1, floatData: [1, -2, 3, 0.5, 1, -1, 2, 0, 1, -1, 1, 2] },
          { name: 'axis', dims: [], dataType: 7, int64Data: [1] },
        ],
        input: [{ name: 'x', type: image }],
        output: [{ name: 'y' }],
      },
    }),
  ).finish();
}

describe('nfp check', function () {
  this.timeout(120000);
  const dir = useTempDir('nfp-check-');
  const check = (args: string[]) => runCommands([registerCheckCommand], ['check', ...args]);

  afterEach(() => {
    process.exitCode = undefined;
  });

  it('a model that works for everything: input, output, opset, taps, fit memory; exit code 0', async () => {
    const out = await check([cnn]);
    expect(process.exitCode).to.equal(undefined);
    expect(out).to.match(/opset 17/);
    expect(out).to.match(/input\s+'input' \[N, 1, 28, 28\] NCHW float32, batch free/);
    expect(out).to.match(/output\s+'logits' \[N, 10\]: logits/);
    expect(out).to.match(/gradient\s+every op on the way from the input to the logits has a rule/);
    // The model card's detector taps, as nfp fit takes them.
    expect(out).to.match(/taps\s+nfp fit's \(card\): 54,602 neurons/);
    expect(out).to.match(/\/classifier\/relu\/Relu_output_0 \(128\)/);
    expect(out).to.match(/fit memory\s+~[\d.]+ MB/);
    expect(out).to.match(/works for\s+predict yes, attack yes, fit yes, detect yes/);
    expect(out.split('\n').length).to.be.below(25); // one screen
  });

  it('a channels-last model with a fixed batch and softmax output says so', async () => {
    const out = await check([join(fixturesDir, 'mini-zoo-nhwc-b1.op11.onnx')]);
    expect(out).to.match(/'input' \[1, 31, 31, 3\] NHWC float32, batch fixed at 1/);
    expect(out).to.match(/probabilities; the logits are the input of its final Softmax, '\/net\/fc\/Gemm_output_0'/);
    expect(out).to.match(/opset 11/);
    expect(out).to.match(/works for\s+predict yes, attack yes, fit yes, detect yes/);
  });

  it('lists every op without a gradient rule, not only the first; exit code 1', async () => {
    const path = join(dir(), 'unsupported.onnx');
    writeFileSync(path, unsupportedModel());
    const out = await check([path]);
    expect(process.exitCode).to.equal(1);
    expect(out).to.match(/cannot be built \(2 problems\)/);
    expect(out).to.match(/Hardmax: no gradient rule.*'m\/Hardmax_h'/);
    expect(out).to.match(/CumSum: no gradient rule.*'m\/CumSum_c'/);
    expect(out).to.match(/taps\s+nfp fit's \(wide\): 3 neurons/); // no activation layers: the logits alone
    expect(out).to.match(/works for\s+predict yes, attack no, fit no, detect yes/);
    const json = JSON.parse(await check([path, '--json'])) as Awaited<ReturnType<typeof checkModel>>;
    expect(json.gradientProblems.map((p) => p.op)).to.deep.equal(['Hardmax', 'CumSum']);
  });

  it('nfp attack runs the check first and stops before reading any data', async () => {
    const path = join(dir(), 'unsupported.onnx');
    writeFileSync(path, unsupportedModel());
    const args = ['attack', '--model', path, '--data', join(dir(), 'missing.npy'), '--attack', 'fgsm', '--eps', '0.1'];
    await runCommands([registerAttackCommand], [...args, '--out', join(dir(), 'adv.npy')]).then(
      () => expect.fail('no error'),
      (e: Error) => {
        expect(e.message).to.match(/unsupported\.onnx cannot be used for attack: its input gradient cannot be built/);
        expect(e.message)
          .to.match(/Hardmax/)
          .and.to.match(/CumSum/);
        expect(e.message).to.not.match(/missing\.npy/);
      },
    );
  });
});

describe('nfp predict and attack on a channels-last, fixed-batch, softmax model with NCHW data', function () {
  this.timeout(120000);
  const dir = useTempDir('nfp-zoo-');

  it('predict gives the channels-first model its labels; attack writes images in the model layout', async () => {
    const data = join(fixturesDir, 'mini-zoo.op13.input.npy'); // [4, 3, 31, 31]
    const labels = join(fixturesDir, 'mini-zoo.op13.labels.npy');
    const run = (model: string) =>
      captureStdout(() => predictCommand({ model: join(fixturesDir, model), data, labels, summary: true }));
    const plain = JSON.parse(await run('mini-zoo.op13.onnx')) as { accuracy: number; correct: number };
    const last = JSON.parse(await run('mini-zoo-nhwc-b1.op13.onnx')) as { accuracy: number; correct: number };
    expect(last.correct).to.equal(plain.correct);
    const out = join(dir(), 'adv.npy');
    const args = ['--data', data, '--labels', labels, '--attack', 'fgsm', '--eps', '0.1', '--out', out];
    const line = await runCommands(
      [registerAttackCommand],
      ['attack', '--model', join(fixturesDir, 'mini-zoo-nhwc-b1.op13.onnx'), ...args],
    );
    expect((JSON.parse(line) as { images: number }).images).to.equal(4);
    expect(readNpy(out).dims).to.deep.equal([4, 31, 31, 3]);
  });
});
