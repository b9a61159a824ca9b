// Sharded and resumable fitting as a Kubernetes indexed Job runs it: `nfp fit --shard env/3` in three
// processes at once, each with its own JOB_COMPLETION_INDEX, merged and calibrated on the held-out
// rows, gives the bank one process fits (arrays and header, calibration included); a fit killed
// after its first per-class checkpoint resumes to that same bank. A tiny fit of the committed CNN.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { readBank } from '../../src/bank/index.js';
import type { FingerprintBank } from '../../src/bank/index.js';
import { parseShard, shardClasses } from '../../src/experiment/index.js';
import { packageRoot } from '../../src/paths.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const dataPath = join(packageRoot, 'data', 'fashion-mnist', 't10k-images-idx3-ubyte.gz');
const main = join(packageRoot, 'src', 'cli', 'main.ts');

const tiny = [
  '--model',
  modelPath,
  '--data',
  dataPath,
  '--limit',
  '600',
  '--attacks',
  'pgd',
  '--eps',
  '0.1',
  '--steps',
  '3',
  '--taps',
  '/features/pool3/MaxPool_output_0,/classifier/relu/Relu_output_0,logits',
  '--k',
  '5',
  '--candidates',
  '500',
  '--top',
  '50',
  '--clean-per-class',
  '20',
  '--attacked-per-class',
  '20',
  '--attack-mode',
  'targeted',
  '--draws',
  '5',
  '--seed',
  '1',
];

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** `nfp <args>` in a child process (TypeScript through tsx); `stop` may kill it early. */
function nfp(args: string[], env: NodeJS.ProcessEnv = {}, stop?: (kill: () => void) => void): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
      cwd: packageRoot,
      env: { ...process.env, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
    stop?.(() => child.kill('SIGKILL'));
  });
}

function ok(run: Run): Record<string, unknown> {
  expect(run.code, run.stderr.slice(-2000)).to.equal(0);
  return JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** The same bank: header (less its creation time) and every array, byte for byte. */
function expectSameBank(a: FingerprintBank, b: FingerprintBank): void {
  expect({ ...a.header, created: '' }).to.deep.equal({ ...b.header, created: '' });
  for (const key of Object.keys(a.arrays) as Array<keyof FingerprintBank['arrays']>) {
    const [x, y] = [a.arrays[key], b.arrays[key]];
    expect(
      Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(Buffer.from(y.buffer, y.byteOffset, y.byteLength)),
    ).to.equal(true, key);
  }
}

describe('shards', () => {
  it('map i/n, env/n and env to contiguous blocks of classes that cover every class once', () => {
    expect(parseShard('2/3')).to.deep.equal({ index: 2, count: 3 });
    expect(parseShard('env/8', { JOB_COMPLETION_INDEX: '7' })).to.deep.equal({ index: 7, count: 8 });
    expect(parseShard('env', { JOB_COMPLETION_INDEX: '0', NFP_SHARD_COUNT: '4' })).to.deep.equal({
      index: 0,
      count: 4,
    });
    for (const bad of ['3/3', '-1/3', '1/0', 'a/2', '1', '1.5/3'])
      expect(() => parseShard(bad), bad).to.throw(/--shard/);
    expect(() => parseShard('env/3', {})).to.throw(/JOB_COMPLETION_INDEX/);
    for (const [classes, count] of [
      [10, 3],
      [1000, 7],
      [1000, 1000],
    ] as const) {
      const all = Array.from({ length: count }, (_, index) => shardClasses({ index, count }, classes)).flat();
      expect(all).to.deep.equal(Array.from({ length: classes }, (_, c) => c));
    }
    expect(shardClasses({ index: 2, count: 3 }, 10)).to.deep.equal([6, 7, 8, 9]);
    expect(() => shardClasses({ index: 0, count: 11 }, 10)).to.throw(/at most 10 shards/);
  });
});

describe('nfp fit --shard and --checkpoints in processes', function () {
  this.timeout(600_000);
  const dir = useTempDir('nfp-shard-');
  const full = () => join(dir(), 'full.nfp');

  before(async () => {
    ok(await nfp(['fit', ...tiny, '--out', full()]));
  });

  it('three shard processes with JOB_COMPLETION_INDEX, merged and calibrated, give the one-process bank', async () => {
    const shards = [0, 1, 2].map((i) => join(dir(), `shard-${i}.nfp`));
    const runs = await Promise.all(
      shards.map((out, i) =>
        nfp(['fit', ...tiny, '--shard', 'env/3', '--out', out], { JOB_COMPLETION_INDEX: String(i) }),
      ),
    );
    expect(runs.map((r) => ok(r).classes)).to.deep.equal([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7, 8, 9],
    ]);
    const merged = join(dir(), 'merged.nfp');
    ok(await nfp(['bank', 'merge', ...shards, '--out', merged]));
    expect(readBank(merged).header.calibration).to.equal(undefined);
    const calibration = ok(
      await nfp([
        'bank',
        'calibrate',
        '--model',
        modelPath,
        '--bank',
        merged,
        '--data',
        dataPath,
        '--held-out',
        '--draws',
        '5',
        '--seed',
        '1',
        '--out',
        merged,
      ]),
    );
    expect(calibration.images).to.equal(120);
    expectSameBank(readBank(merged), readBank(full()));
  });

  it('a fit killed after a checkpoint resumes from its checkpoints to the same bank', async () => {
    const checkpoints = join(dir(), 'checkpoints');
    const out = join(dir(), 'resumed.nfp');
    const args = ['fit', ...tiny, '--checkpoints', checkpoints, '--out', out];
    const killed = await nfp(args, {}, (kill) => {
      const poll = setInterval(() => {
        if (existsSync(join(checkpoints, 'class-0000.nfp'))) {
          clearInterval(poll);
          kill();
        }
      }, 10);
    });
    expect(killed.signal).to.equal('SIGKILL');
    expect(existsSync(out)).to.equal(false);
    const saved = readdirSync(checkpoints).filter((f) => f.endsWith('.nfp'));
    expect(saved.length).to.be.within(1, 9);
    const summary = ok(await nfp(args));
    const resumed = summary.resumedClasses as number[];
    expect(resumed.length).to.be.at.least(saved.length);
    expect(resumed).to.include(0);
    expectSameBank(readBank(out), readBank(full()));
    // Everything checkpointed: a rerun fits nothing and writes the same bank again.
    expect(ok(await nfp(args)).resumedClasses).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expectSameBank(readBank(out), readBank(full()));
  });

  it('refuses shards and checkpoints without a seed, and a checkpoint of another fit', async () => {
    const noSeed = tiny.slice(0, -2);
    for (const extra of [
      ['--shard', '0/2'],
      ['--checkpoints', join(dir(), 'c')],
    ]) {
      const run = await nfp(['fit', ...noSeed, ...extra, '--out', join(dir(), 'x.nfp')]);
      expect(run.code, run.stderr).to.equal(2);
      expect(run.stderr).to.match(/needs --seed/);
    }
    const other = await nfp([
      'fit',
      ...tiny,
      '--top',
      '40',
      '--checkpoints',
      join(dir(), 'checkpoints'),
      '--out',
      join(dir(), 'x.nfp'),
    ]);
    expect(other.code).to.equal(1);
    expect(other.stderr).to.match(/checkpoint of another fit/);
  });
});
