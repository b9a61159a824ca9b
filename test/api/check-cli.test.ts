// `nfp check` and the check that long commands run first; `nfp predict`, `nfp attack`, a fit and
// detect on a model exported channels-last with a fixed batch of 1 and softmax probabilities out,
// given NCHW data.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { registerAttackCommand } from '../../src/cli/attack.js';
import type { checkModel } from '../../src/experiment/index.js';
import { registerCheckCommand } from '../../src/cli/check.js';
import { predictCommand } from '../../src/cli/predict.js';
import { loadFashionMnist, readNpy, toLayout, writeNpy } from '../../src/data/index.js';
import { FingerprintDetector } from '../../src/detect/index.js';
import {
  ExperimentError,
  ModelCheckError,
  detectFiles,
  fitExperiment,
  openData,
  readRows,
} from '../../src/experiment/index.js';
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
    // No activation layers: the first Gemm's output (a stem no activation follows) and the logits.
    expect(out).to.match(/taps\s+nfp fit's \(wide\): 6 neurons/);
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

/**
 * The shipped Fashion-MNIST CNN as a zoo might publish it: input [batch, 28, 28, 1] channels-last
 * (a Transpose in front), the batch fixed, softmax probabilities out.
 */
function channelsLastCnn(batch: number): Uint8Array {
  const proto = ModelProtoType.decode(readFileSync(cnn)) as unknown as {
    graph: {
      node: object[];
      input: Array<{ name: string; type: object }>;
      output: Array<{ name: string; type?: object }>;
    };
  };
  const g = proto.graph;
  const tensor = (dims: number[]) => ({
    tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } },
  });
  const input = g.input[0]!.name;
  const logits = g.output[0]!.name;
  g.node = [
    { name: 'to_nchw', opType: 'Transpose', input: ['image_nhwc'], output: [input], attribute: [perm()] },
    ...g.node,
    { name: 'softmax', opType: 'Softmax', input: [logits], output: ['probabilities'], attribute: [axis()] },
  ];
  g.input = [{ name: 'image_nhwc', type: tensor([batch, 28, 28, 1]) }, ...g.input.slice(1)];
  g.output = [{ name: 'probabilities', type: tensor([batch, 10]) }];
  return ModelProtoType.encode(ModelProtoType.fromObject(proto)).finish();
}

const perm = () => ({ name: 'perm', type: 7, ints: [0, 3, 1, 2] });
const axis = () => ({ name: 'axis', type: 2, i: 1 });

describe('fit and detect on a channels-last, fixed-batch, softmax model with NCHW data', function () {
  this.timeout(300000);
  const dir = useTempDir('nfp-zoo-fit-');

  it('nfp fit runs the check first and stops before reading any data', async () => {
    const path = join(dir(), 'unsupported.onnx');
    writeFileSync(path, unsupportedModel());
    await fitExperiment({
      model: path,
      data: join(dir(), 'missing.npy'),
      attacks: ['fgsm'],
      attack: { eps: 0.1 },
    }).then(
      () => expect.fail('no error'),
      (e: Error) => {
        expect(e).to.be.instanceOf(ModelCheckError);
        expect(e.message).to.match(/unsupported\.onnx cannot be used for fit: its input gradient cannot be built/);
        expect(e.message).to.not.match(/missing\.npy/);
      },
    );
  });

  it('a bank fitted from channels-first images scores channels-first and channels-last files alike', async () => {
    const model = join(dir(), 'fmnist-cnn-nhwc-b16-softmax.onnx');
    writeFileSync(model, channelsLastCnn(16));
    const test = loadFashionMnist({ split: 'test' });
    const n = 400;
    const nchw = { data: test.data.subarray(0, n * 784), dims: [n, 1, 28, 28] as const };
    const data = { images: nchw, labels: test.labels.subarray(0, n), source: 'fmnist', digest: 'fmnist', total: n };
    const { bank, summary } = await fitExperiment({
      model,
      data,
      attacks: ['fgsm'],
      attack: { eps: 0.1 },
      cleanPerClass: 10,
      attackedPerClass: 10,
      screen: { k: 2, candidates: 50, topK: 3 },
      calibrateShare: 0.25,
      seed: 3,
    });
    expect(summary.fitImages).to.equal(300);
    expect(bank.header.model.inputShape).to.deep.equal([28, 28, 1]);
    expect(bank.fingerprints).to.be.above(0);
    const first = join(dir(), 'x-nchw.npy');
    const last = join(dir(), 'x-nhwc.npy');
    const rows = { data: nchw.data.subarray(300 * 784, 308 * 784), dims: [8, 1, 28, 28] };
    writeNpy(first, rows);
    writeNpy(last, toLayout(rows, 'nchw', 'nhwc'));
    const detector = await FingerprintDetector.load({ model, bank, seed: 1 });
    try {
      const scores = async (file: string) => {
        const out: number[] = [];
        for await (const r of detectFiles(detector, { inputs: [file] })) out.push(r.detection.score);
        return out;
      };
      const a = await scores(first);
      expect(a).to.have.length(8);
      expect(await scores(last)).to.deep.equal(a);
    } finally {
      await detector.release();
    }
  });
});

describe("openData for a channels-last model's input", () => {
  const dir = useTempDir('nfp-layout-');

  it('transposes a channels-first file, takes a channels-last one as it is, names both shapes otherwise', async () => {
    const nchw = { data: Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i / 120), dims: [2, 3, 4, 5] };
    const nhwc = toLayout(nchw, 'nchw', 'nhwc');
    const first = join(dir(), 'first.npy');
    const last = join(dir(), 'last.npy');
    writeNpy(first, nchw);
    writeNpy(last, nhwc);
    const model = { inputShape: [4, 5, 3], layout: 'nhwc' as const };
    for (const file of [first, last]) {
      const data = await openData(file, model);
      expect(data.reader.dims).to.deep.equal([2, 4, 5, 3]);
      expect(Array.from((await readRows(data)).data)).to.deep.equal(Array.from(nhwc.data));
    }
    await openData(first, { inputShape: [5, 4, 3], layout: 'nhwc' }).then(
      () => expect.fail('no error'),
      (e: Error) => {
        expect(e).to.be.instanceOf(ExperimentError);
        expect(e.message).to.equal('--data holds images [3, 4, 5] but the model takes [5, 4, 3] (or [3, 5, 4])');
      },
    );
  });
});
