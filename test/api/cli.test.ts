// The `nfp` command as a user runs it: the compiled dist/cli/main.js in a child process.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { FingerprintBank, writeBank } from '../../src/bank/index.js';
import { packageRoot } from '../../src/paths.js';
import { version } from '../../src/version.js';
import { useTempDir } from '../reference/temp-dir.js';

const cli = join(packageRoot, 'dist', 'cli', 'main.js');

function nfp(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

describe('nfp CLI', () => {
  before(() => {
    if (!existsSync(cli)) throw new Error(`${cli} is missing: run \`npm install\` (or \`npm run build:ts\`) first`);
  });

  it('prints the version', () => {
    const r = nfp(['--version']);
    expect(r.status).to.equal(0);
    expect(r.stdout.trim()).to.equal(version);
  });

  it('info --json reports backend, threads, CUDA build and ONNX Runtime version', () => {
    const r = nfp(['info', '--json'], { NFP_THREADS: '3' });
    expect(r.status, r.stderr).to.equal(0);
    const report = JSON.parse(r.stdout) as Record<string, unknown> & { cuda: Record<string, unknown> };
    expect(report).to.include({ version, backend: 'cpu', threads: 3 });
    expect(report.onnxruntime).to.match(/^1\.\d+\.\d+/);
    expect(report.cuda).to.have.keys('compiled', 'usable', 'devices', 'deviceName', 'runtime', 'reason');
    expect(report.cuda.usable).to.equal(false); // no GPU on the machines that run this suite
    expect(report.cuda.reason).to.be.a('string').that.is.not.empty;
    // A clone loads the addon it built, not the prebuilt binary that npm pack adds.
    expect(report.addon).to.deep.equal({
      path: join(packageRoot, 'build', 'addon', 'Release', 'nfp.node'),
      prebuilt: false,
    });
  });

  it('names a missing NFP_ADDON_PATH', () => {
    const r = nfp(['info'], { NFP_ADDON_PATH: '/nonexistent/nfp.node' });
    expect(r.status).to.equal(1);
    expect(r.stderr).to.include('NFP_ADDON_PATH names /nonexistent/nfp.node, which does not exist');
  });

  it('info prints a readable table', () => {
    const r = nfp(['info']);
    expect(r.status).to.equal(0);
    expect(r.stdout)
      .to.match(/^backend\s+cpu/m)
      .and.to.match(/^onnxruntime-node\s+1\./m);
  });

  it('falls back to cpu with a warning when NFP_BACKEND asks for an unusable cuda', () => {
    const r = nfp(['info', '--json'], { NFP_BACKEND: 'cuda' });
    expect(r.status).to.equal(0);
    expect(JSON.parse(r.stdout)).to.include({ backend: 'cpu' });
    expect(r.stderr).to.match(/NFP_BACKEND=cuda ignored/);
  });

  it('exits 2 on bad usage, with the error and a one-line hint instead of the whole help', () => {
    for (const [args, error] of [
      [['no-such-command'], /unknown command 'no-such-command'/],
      [['info', '--no-such-flag'], /unknown option '--no-such-flag'/],
      [['fit', '--model', 'm.onnx'], /required option '--data <path>' not specified/],
      [['bank', 'merge', 'a.nfp'], /required option '--out <bank.nfp>' not specified/],
    ] as const) {
      const r = nfp([...args]);
      expect(r.status, args.join(' ')).to.equal(2);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).to.have.length(2);
      expect(lines[0]).to.match(error);
      expect(lines[1]).to.equal('(add --help for usage and an example)');
    }
  });

  it('describes every bank subcommand in nfp bank --help', () => {
    const r = nfp(['bank', '--help']);
    expect(r.status).to.equal(0);
    const commands = r.stdout.split('Commands:')[1]!.split('\n');
    for (const name of ['info', 'merge', 'keygen', 'sign', 'calibrate']) {
      const line = commands.find((l) => l.trim().startsWith(name));
      expect(line, `${name} in\n${r.stdout}`).to.match(new RegExp(`^\\s+${name}\\b.*\\s{2,}\\w`));
    }
  });

  it('layers lists every layer with its shape and marks the automatic taps', () => {
    const r = nfp(['layers', join(packageRoot, 'models', 'fmnist-cnn.onnx')]);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/\/features\/pool3\/MaxPool\s+MaxPool\s+\S+\s+\[128, 3, 3\]\s+1152/);
    expect(r.stdout).to.match(/\/classifier\/relu\/Relu\s.*\[128\]\s+128\s+yes/);
    const json = nfp(['layers', '--json', join(packageRoot, 'models', 'fmnist-cnn.onnx')]);
    const layers = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { opType: string });
    expect(layers.filter((l) => l.opType === 'Conv')).to.have.length(3);
  });

  it('layers --cost adds the readout cost of the layers asked for, in the table and the JSON', () => {
    const model = join(packageRoot, 'models', 'fmnist-cnn.onnx');
    const taps = '/features/pool3/MaxPool_output_0,logits';
    const r = nfp(['layers', model, '--cost', '--taps', taps, '--batch', '4', '--neurons', '30']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/readout cost\n/);
    expect(r.stdout).to.match(/\/features\/pool3\/MaxPool\s.*1152\s+yes\s+[+-]\d+\.\d%\n/);
    expect(r.stdout).to.match(/\/features\/relu3\/Relu\s.*6272\s+yes\s*\n/);
    expect(r.stdout).to.match(/a run of 4 images that also reads 30 neurons/);
    expect(r.stdout).to.match(/all 2 layers together \(40 neurons\): [+-]\d+\.\d%/);
    const json = nfp(['layers', '--json', model, '--cost', '--taps', taps, '--batch', '4', '--neurons', '30']);
    expect(json.status, json.stderr).to.equal(0);
    const costed = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { output: string; readoutCost?: { fetched: number; neurons: number; cost: number } })
      .filter((l) => l.readoutCost !== undefined);
    const last = JSON.parse(json.stdout.trim().split('\n').at(-1)!) as { readoutCostTogether: { layers: string[] } };
    expect(last.readoutCostTogether.layers).to.deep.equal(taps.split(','));
    expect(costed.map((l) => [l.output, l.readoutCost!.neurons, l.readoutCost!.fetched])).to.deep.equal([
      ['/features/pool3/MaxPool_output_0', 30, 30],
      ['logits', 10, 10],
    ]);
    const usage = nfp(['layers', model, '--taps', taps]);
    expect(usage.status).to.equal(2);
    expect(usage.stderr).to.include('--taps goes with --cost');
  });

  it('predict reports the accuracy of the committed CNN on the shipped test set', () => {
    const r = nfp([
      'predict',
      '--model',
      join(packageRoot, 'models', 'fmnist-cnn.onnx'),
      '--data',
      join(packageRoot, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz'),
      '--summary',
    ]);
    expect(r.status, r.stderr).to.equal(0);
    const summary = JSON.parse(r.stdout) as { images: number; accuracy: number };
    expect(summary.images).to.equal(10_000);
    expect(summary.accuracy).to.be.closeTo(0.9139, 0.001);
  });

  it('predict writes one JSON line per image and fails cleanly on a missing file', () => {
    const r = nfp([
      'predict',
      '--model',
      join(packageRoot, 'models', 'fmnist-cnn.onnx'),
      '--data',
      join(packageRoot, 'test', 'testdata', 'activations', 'fmnist-cnn.input.npy'),
      '--limit',
      '3',
    ]);
    expect(r.status, r.stderr).to.equal(0);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; label: number; logits: number[] });
    expect(lines.map((l) => l.index)).to.deep.equal([0, 1, 2]);
    expect(lines[0]!.label).to.equal(9); // the first Fashion-MNIST test image is an ankle boot
    const missing = nfp([
      'predict',
      '--model',
      join(packageRoot, 'models', 'fmnist-cnn.onnx'),
      '--data',
      '/nonexistent.npy',
    ]);
    expect(missing.status).to.equal(1);
    expect(missing.stderr).to.match(/nonexistent\.npy/);
    expect(nfp(['predict', '--data', 'x.npy']).status).to.equal(2); // --model missing: bad usage
    const threads = nfp(['serve', '--model', 'm.onnx', '--bank', 'b.nfp', '--threads', '0']);
    expect(threads.status).to.equal(2);
    expect(threads.stderr).to.match(/--threads <n>' argument '0' is invalid/);
  });

  it('exits 0 for --help and shows an example', () => {
    const r = nfp(['--help']);
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/Examples?:/);
  });
});

describe('nfp CLI on a reader that stops early', () => {
  const dir = useTempDir('nfp-epipe-');
  it('ends quietly when the pipe closes (nfp bank info | head -1)', () => {
    const classes = 2000;
    const fitted = new Map(
      Array.from({ length: classes }, (_, c) => {
        const F = 3;
        const fingerprints = {
          indices: Uint32Array.from([c % 30, (c + 1) % 30, (c + 2) % 30]),
          mu0: new Float32Array(F),
          sd0: new Float32Array(F).fill(1),
          mu1: new Float32Array(F).fill(2),
          sd1: new Float32Array(F).fill(1),
          effect: new Float32Array(F).fill(2),
          passed: F,
        };
        return [c, { fingerprints, clean: 10, attacked: [10] }];
      }),
    );
    const bank = join(dir(), 'many.nfp');
    writeBank(
      bank,
      FingerprintBank.fromClasses(
        {
          model: { sha256: 'ef'.repeat(32), source: 'x.onnx', inputShape: [1, 8, 8], classes },
          taps: [{ tensor: 'a', size: 30 }],
          neurons: 30,
          k: 1,
          families: ['pgd'],
          fit: {
            candidates: 30,
            k: 1,
            pMax: 1e-3,
            dMin: 1.5,
            topK: 3,
            minFingerprints: 1,
            maxCorrelation: 1,
            attacks: {},
          },
          created: '2026-12-01T00:00:00.000Z',
        },
        fitted,
      ),
    );
    const r = spawnSync('sh', ['-c', `"${process.execPath}" "${cli}" bank info "${bank}" | head -1`], {
      encoding: 'utf8',
    });
    expect(r.status).to.equal(0);
    expect(r.stdout.split('\n').filter((l) => l !== '')).to.have.length(1);
    expect(r.stderr).to.not.match(/EPIPE|Error/);
  });
});
