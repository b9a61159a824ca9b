// `nfp grad` as commander runs it: the command registered on a fresh program and parsed in-process
// (main.ts wires it for the shipped CLI), its .npy outputs checked against GradientModel.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { expect } from 'chai';
import { Command, CommanderError } from 'commander';

import { GradientModel } from '../../src/autodiff/index.js';
import { registerGradCommand } from '../../src/cli/grad.js';
import { readNpy, writeNpy } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const fixtures = join(packageRoot, 'test', 'testdata', 'gradients');

let stdout = '';

/** A program with only `grad`; its stdout and stderr are captured while it runs. */
function program(): { run: (args: string[]) => Promise<void>; stderr: () => string } {
  let err = '';
  const p = new Command().exitOverride().configureOutput({
    writeErr: (s) => {
      err += s;
    },
    writeOut: () => {},
  });
  registerGradCommand(p);
  const run = async (args: string[]) => {
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => {
      stdout += chunk;
      return true;
    }) as typeof process.stdout.write;
    try {
      await p.parseAsync(['grad', ...args], { from: 'user' });
    } finally {
      process.stdout.write = write;
    }
  };
  return { run, stderr: () => err };
}

async function rejects(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => expect.fail('no error'),
    (e: unknown) => e,
  );
}

describe('nfp grad', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'nfp-grad-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const x = join(fixtures, 'fmnist-cnn.input.npy');
  const seed = join(fixtures, 'fmnist-cnn.logit_seed.npy');
  const tapSeed = join(fixtures, 'fmnist-cnn.tap_seed.npy');

  it('writes the gradient of logit seed + tap seed and the logits, equal to GradientModel', async () => {
    const out = join(dir, 'g.npy');
    const logitsOut = join(dir, 'l.npy');
    await program().run([
      '--model',
      modelPath,
      '--input',
      x,
      '--seed',
      seed,
      '--tap-seed',
      tapSeed,
      '--out',
      out,
      '--logits-out',
      logitsOut,
      '--batch-size',
      '3',
    ]);
    const model = await GradientModel.load(modelPath, { taps: 'auto' });
    try {
      const images = readNpy(x);
      const want = await model.gradient(
        { data: images.data as Float32Array, dims: images.dims },
        { logitSeed: readNpy(seed).data as Float32Array, tapSeed: readNpy(tapSeed).data as Float32Array },
      );
      const g = readNpy(out);
      expect(g.dtype).to.equal('float32');
      expect(g.dims).to.deep.equal(images.dims);
      const scale = want.grad.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(scale).to.be.above(0);
      (g.data as Float32Array).forEach((v, i) => {
        expect(Math.abs(v - want.grad[i]!)).to.be.at.most(1e-6 * scale);
      });
      const l = readNpy(logitsOut);
      expect(l.dims).to.deep.equal([4, 10]);
      (l.data as Float32Array).forEach((v, i) => {
        expect(v).to.be.closeTo(want.logits[i]!, 1e-5);
      });
    } finally {
      await model.release();
    }
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).to.include({ rows: 4, classes: 10, out });
  });

  it('without --tap-seed taps nothing; the logit-seed gradient matches the PyTorch fixture', async () => {
    const out = join(dir, 'g2.npy');
    await program().run(['--model', modelPath, '--input', x, '--seed', seed, '--out', out]);
    const want = readNpy(join(fixtures, 'fmnist-cnn.grad_logit.npy')).data as Float32Array;
    const got = readNpy(out).data as Float32Array;
    const scale = want.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    got.forEach((v, i) => {
      expect(Math.abs(v - want[i]!)).to.be.at.most(1e-3 * scale);
    });
  });

  it(
    'bad usage (a seed of the wrong shape, float64 input, no --out, bad --taps) is a CommanderError: exit code 2 ' +
      'in nfp',
    async () => {
      const wrong = join(dir, 'wrong.npy');
      writeNpy(wrong, { dims: [4, 9], data: new Float32Array(36) });
      const p = program();
      const e = await rejects(
        p.run(['--model', modelPath, '--input', x, '--seed', wrong, '--out', join(dir, 'g3.npy')]),
      );
      expect(e).to.be.instanceOf(CommanderError);
      expect((e as CommanderError).exitCode).to.equal(2);
      expect(p.stderr()).to.match(/\[4, 10\] for --seed but received \[4, 9\]/);

      const f64 = join(dir, 'f64.npy');
      writeNpy(f64, { dims: [1, 1, 28, 28], data: new Float64Array(784) });
      expect(
        await rejects(
          program().run(['--model', modelPath, '--input', f64, '--seed', seed, '--out', join(dir, 'g4.npy')]),
        ),
      ).to.be.instanceOf(CommanderError);
      expect(await rejects(program().run(['--model', modelPath, '--input', x, '--seed', seed]))).to.be.instanceOf(
        CommanderError,
      );
      expect(
        await rejects(
          program().run([
            '--model',
            modelPath,
            '--input',
            x,
            '--seed',
            seed,
            '--out',
            join(dir, 'g5.npy'),
            '--taps',
            ',',
          ]),
        ),
      ).to.be.instanceOf(CommanderError);
    },
  );

  it('a failure (missing model file) is a plain error: exit code 1 in nfp', async () => {
    const e = await rejects(
      program().run(['--model', join(dir, 'none.onnx'), '--input', x, '--seed', seed, '--out', join(dir, 'g6.npy')]),
    );
    expect(e).to.be.instanceOf(Error);
    expect(e).not.to.be.instanceOf(CommanderError);
    expect((e as Error).message).to.include('none.onnx');
  });
});
