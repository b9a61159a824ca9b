// The model runtime against PyTorch: tapped activations equal forward-hook activations
// (fixtures from scripts/gen_activation_fixtures.py), accuracy equals each model card's, and
// bad models fail with clear errors.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { Classifier, ClassifierError, ModelFormatError, TapError } from '../../src/index.js';
import { loadFashionMnist, readNpy } from '../../src/data/index.js';
import { ModelProtoType } from '../../src/model/onnx-schema.js';
import { packageRoot } from '../../src/paths.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelsDir = join(packageRoot, 'models');
const fixturesDir = join(packageRoot, 'test', 'testdata', 'activations');
const fixtureModels = readdirSync(fixturesDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.replace(/\.json$/, ''));
const cards = readdirSync(modelsDir).filter((f) => /^fmnist-.*\.json$/.test(f));

function float32(path: string): { data: Float32Array; dims: number[] } {
  const a = readNpy(path);
  if (a.dtype !== 'float32') throw new Error(`${path}: expected float32`);
  return { data: a.data, dims: a.dims };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).to.equal(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** A tiny valid ONNX model whose output is not [batch, classes]: an Identity on images. */
function identityModel(): Uint8Array {
  const image = {
    tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }, { dimValue: 4 }, { dimValue: 4 }] } },
  };
  return ModelProtoType.encode(
    ModelProtoType.fromObject({
      irVersion: 8,
      opsetImport: [{ version: 17 }],
      graph: {
        name: 'g',
        node: [{ name: 'id', opType: 'Identity', input: ['x'], output: ['y'] }],
        input: [{ name: 'x', type: image }],
        output: [{ name: 'y', type: image }],
      },
    }),
  ).finish();
}

describe('Classifier', () => {
  it('has PyTorch fixtures for at least one committed model', () => {
    expect(fixtureModels).to.include('fmnist-cnn');
  });

  for (const name of fixtureModels) {
    it(`${name}: logits and tapped activations equal PyTorch forward hooks within 1e-4`, async () => {
      const meta = JSON.parse(readFileSync(join(fixturesDir, `${name}.json`), 'utf8')) as { taps: string[] };
      const classifier = await Classifier.load(join(modelsDir, `${name}.onnx`), { taps: meta.taps, batchSize: 3 });
      try {
        const input = float32(join(fixturesDir, `${name}.input.npy`));
        const out = await classifier.run(input);
        expect(maxAbsDiff(out.logits, float32(join(fixturesDir, `${name}.logits.npy`)).data)).to.be.below(1e-4);
        expect(classifier.taps.map((t) => t.tensor)).to.deep.equal(meta.taps);
        classifier.taps.forEach((tap, i) => {
          const want = float32(join(fixturesDir, `${name}.${i}.npy`));
          expect(tap.shape).to.deep.equal(want.dims.slice(1));
          const got = new Float32Array(out.rows * tap.size);
          for (let b = 0; b < out.rows; b++)
            got.set(
              out.activations.subarray(
                b * classifier.neurons + tap.offset,
                b * classifier.neurons + tap.offset + tap.size,
              ),
              b * tap.size,
            );
          expect(maxAbsDiff(got, want.data), tap.tensor).to.be.below(1e-4);
        });
      } finally {
        await classifier.release();
      }
    });
  }

  for (const card of cards) {
    it(
      `${card.replace('.json', '')}: accuracy on the shipped test set equals the model card's within ` + `0.1%`,
      async () => {
        const meta = JSON.parse(readFileSync(join(modelsDir, card), 'utf8')) as {
          file: string;
          test_accuracy: number;
          sha256: string;
        };
        const test = loadFashionMnist({ split: 'test' });
        const classifier = await Classifier.load(join(modelsDir, meta.file), { taps: [], batchSize: 256 });
        try {
          expect(classifier.sha256).to.equal(meta.sha256);
          const out = await classifier.run(test);
          let correct = 0;
          for (let i = 0; i < out.rows; i++) if (out.labels[i] === test.labels[i]) correct++;
          expect(out.rows).to.equal(10_000);
          expect(Math.abs(correct / out.rows - meta.test_accuracy)).to.be.at.most(0.001);
        } finally {
          await classifier.release();
        }
      },
    );
  }

  it("'auto' taps the input of the final linear layer and the logits", async () => {
    const classifier = await Classifier.load(join(modelsDir, 'fmnist-cnn.onnx'), { taps: 'auto' });
    try {
      expect(classifier.taps.map((t) => t.tensor)).to.deep.equal(['/classifier/relu/Relu_output_0', 'logits']);
      expect(classifier.neurons).to.equal(128 + 10);
      const x = float32(join(fixturesDir, 'fmnist-cnn.input.npy'));
      const out = await classifier.run(x);
      // The logits tap is the logits.
      for (let b = 0; b < out.rows; b++) {
        expect(Array.from(out.activations.subarray(b * 138 + 128, b * 138 + 138))).to.deep.equal(
          Array.from(out.logits.subarray(b * 10, b * 10 + 10)),
        );
      }
    } finally {
      await classifier.release();
    }
  });

  it('gives the same results whatever the batch size, and for zero images', async () => {
    const x = float32(join(fixturesDir, 'fmnist-cnn.input.npy'));
    const one = await Classifier.load(join(modelsDir, 'fmnist-cnn.onnx'), { batchSize: 1 });
    const many = await Classifier.load(join(modelsDir, 'fmnist-cnn.onnx'), { batchSize: 64 });
    try {
      const a = await one.run(x),
        b = await many.run(x);
      expect(maxAbsDiff(a.activations, b.activations)).to.be.below(1e-5);
      expect(Array.from(a.labels)).to.deep.equal(Array.from(b.labels));
      const empty = await one.run({ data: new Float32Array(0), dims: [0, 1, 28, 28] });
      expect(empty.rows).to.equal(0);
    } finally {
      await one.release();
      await many.release();
    }
  });

  it('applies a declared preprocess spec', async () => {
    const plain = await Classifier.load(join(modelsDir, 'fmnist-cnn.onnx'));
    const shifted = await Classifier.load(join(modelsDir, 'fmnist-cnn.onnx'), { preprocess: { mean: [-1], std: [2] } });
    try {
      const x = float32(join(fixturesDir, 'fmnist-cnn.input.npy'));
      const y = { data: x.data.map((v) => (v - 1) / 2), dims: x.dims }; // (y - (-1)) / 2 ... inverted below
      const direct = await plain.run({ data: y.data.map((v) => (v + 1) / 2), dims: x.dims });
      const via = await shifted.run(y);
      expect(maxAbsDiff(direct.logits, via.logits)).to.be.below(1e-5);
    } finally {
      await plain.release();
      await shifted.release();
    }
  });

  describe('errors', () => {
    const tempDir = useTempDir('nfp-model-');
    const cnn = readFileSync(join(modelsDir, 'fmnist-cnn.onnx'));

    it('a missing file', async () => {
      await Classifier.load(join(tempDir(), 'nope.onnx')).then(
        () => expect.fail('loaded'),
        (e: Error) =>
          expect(e)
            .to.be.instanceOf(ClassifierError)
            .with.property('message')
            .that.matches(/cannot read model/),
      );
    });

    for (const cut of [0, 10, 1000, Math.floor(cnn.length / 2)]) {
      it(`a truncated model (${cut} bytes)`, async () => {
        const path = join(tempDir(), `cut${cut}.onnx`);
        writeFileSync(path, cnn.subarray(0, cut));
        await Classifier.load(path).then(
          () => expect.fail('loaded'),
          (e: Error) => {
            expect(e.message).to.match(new RegExp(`cut${cut}\\.onnx`));
            expect(e).to.satisfy(
              (x: Error) => x instanceof ModelFormatError || x instanceof ClassifierError || /onnx/i.test(x.message),
            );
          },
        );
      });
    }

    it('a file that is not ONNX at all', async () => {
      const path = join(tempDir(), 'text.onnx');
      writeFileSync(path, 'this is not a model\n'.repeat(20));
      await Classifier.load(path).then(
        () => expect.fail('loaded'),
        (e: Error) => expect(e).to.be.instanceOf(ModelFormatError),
      );
    });

    it('a model that is not a classifier', async () => {
      await Classifier.load(identityModel()).then(
        () => expect.fail('loaded'),
        (e: Error) => {
          expect(e).to.be.instanceOf(ClassifierError);
          expect(e.message).to.match(/not a classifier.*\[N, 1, 4, 4\]/);
        },
      );
    });

    it('an unknown tap name', async () => {
      await Classifier.load(cnn, { taps: ['/features/conv9'] }).then(
        () => expect.fail('loaded'),
        (e: Error) => {
          expect(e).to.be.instanceOf(TapError);
          expect(e.message).to.match(/unknown tap '\/features\/conv9'.*did you mean/);
        },
      );
    });

    it('a wrong input shape or type', async () => {
      const classifier = await Classifier.load(cnn);
      try {
        await classifier.run({ data: new Float32Array(3 * 28 * 28), dims: [1, 3, 28, 28] }).then(
          () => expect.fail('ran'),
          (e: Error) => expect(e.message).to.match(/Expected input of shape \[N, 1, 28, 28\].*\[1, 3, 28, 28\]/),
        );
        await classifier.run({ data: new Float32Array(10), dims: [1, 1, 28, 28] }).then(
          () => expect.fail('ran'),
          (e: Error) => expect(e.message).to.match(/Expected 784 values/),
        );
        await classifier.run({ data: new Float64Array(784) as unknown as Float32Array, dims: [1, 1, 28, 28] }).then(
          () => expect.fail('ran'),
          (e: Error) => expect(e.message).to.match(/float32/),
        );
      } finally {
        await classifier.release();
      }
    });
  });
});
