// The user's path: `npm pack`, then the tarball installed into new projects as a dependency, once with
// install scripts (onnxruntime-node's switched off as README says) and once with --ignore-scripts, and
// examples/service run against each: the prebuilt addon loads, images are judged over HTTP, bad bytes
// are refused. Offline: npm takes the dependencies from its cache (--prefer-offline).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';
import sharp from 'sharp';

import { loadFashionMnist } from '../../src/data/index.js';
import { FingerprintDetector } from '../../src/detect/index.js';
import { packageRoot } from '../../src/paths.js';
import { writeSmallBank } from '../reference/small-bank.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment a user's shell has: none of the npm_* variables `npm test` sets (the repo's .npmrc among them). */
function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...env, ...extra };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let [stdout, stderr] = ['', ''];
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The address a server child logs once it listens ("listening at http://127.0.0.1:<port>"); fails with its output. */
async function listeningUrl(child: ChildProcess): Promise<string> {
  let [out, err] = ['', ''];
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const listening = /listening at (http:\/\/127\.0\.0\.1:\d+)/;
  const deadline = Date.now() + 30_000;
  while (!listening.test(out) && child.exitCode === null && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  const url = listening.exec(out)?.[1];
  expect(url, `${out}\n${err}`).to.be.a('string');
  return url!;
}

describe('the package installed as a dependency (npm pack)', function () {
  this.timeout(180_000);
  const dir = useTempDir('nfp-package-');
  const test = loadFashionMnist({ split: 'test' });
  const projects = { scripts: '', ignoreScripts: '' };
  let png: Buffer;
  let tarball = '';

  before(async function () {
    this.timeout(300_000);
    const bank = join(dir(), 'bank.nfp');
    // Packing and installing (npm's work) overlap the bank's fit and calibration (ours).
    const installing = run('npm', ['pack', '--pack-destination', dir()], packageRoot, process.env, 240_000).then(
      async (packed) => {
        expect(packed.code, packed.stderr).to.equal(0);
        tarball = join(dir(), readdirSync(dir()).find((f) => f.endsWith('.tgz'))!);
        // Both projects install at once: the work is unpacking from npm's cache.
        await Promise.all((['scripts', 'ignoreScripts'] as const).map((kind) => install(kind)));
      },
    );
    // A calibrated bank for the example, as a user would have from nfp fit.
    await writeSmallBank(modelPath, bank);
    const detector = await FingerprintDetector.load({ model: modelPath, bank });
    await detector.calibrate({ data: test.data.slice(2000 * 784, 2400 * 784), dims: [400, 1, 28, 28] }, { fpr: 0.1 });
    detector.save(bank);
    await detector.release();
    png = await sharp(Buffer.from(test.data.slice(0, 784).map((v) => Math.round(v * 255))), {
      raw: { width: 28, height: 28, channels: 1 },
    })
      .png()
      .toBuffer();
    await installing;
  });

  async function install(kind: 'scripts' | 'ignoreScripts'): Promise<void> {
    const project = join(dir(), kind);
    mkdirSync(project);
    const example = join(packageRoot, 'examples', 'service');
    const pkg = JSON.parse(readFileSync(join(example, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    pkg.dependencies['neural-fingerprints'] = `file:${tarball}`;
    writeFileSync(join(project, 'package.json'), JSON.stringify(pkg, null, 2));
    copyFileSync(join(example, 'server.mjs'), join(project, 'server.mjs'));
    const flags = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];
    const r =
      kind === 'scripts'
        ? await run('npm', ['install', ...flags], project, userEnv({ ONNXRUNTIME_NODE_INSTALL: 'skip' }), 150_000)
        : await run('npm', ['install', '--ignore-scripts', ...flags], project, userEnv(), 150_000);
    expect(r.code, r.stderr).to.equal(0);
    projects[kind] = project;
  }

  for (const kind of ['scripts', 'ignoreScripts'] as const) {
    it(`installed ${kind === 'scripts' ? 'with install scripts' : 'with --ignore-scripts'}: loads the prebuilt addon and serves examples/service`, async () => {
      const project = projects[kind];
      const info = await run(
        join(project, 'node_modules', '.bin', 'nfp'),
        ['info', '--json'],
        project,
        userEnv(),
        30_000,
      );
      expect(info.code, info.stderr).to.equal(0);
      const addon = (JSON.parse(info.stdout) as { addon: { path: string; prebuilt: boolean } }).addon;
      expect(addon.prebuilt).to.equal(true);
      expect(addon.path).to.equal(
        join(project, 'node_modules', 'neural-fingerprints', 'prebuilds', 'linux-x64-glibc', 'nfp.node'),
      );

      // CommonJS: require() of the ES module (Node >= 20.19 and 22.12 load it synchronously).
      const cjs = await run(
        process.execPath,
        [
          '-e',
          "const m = require('neural-fingerprints'); const s = require('neural-fingerprints/serve'); " +
            "console.log(m.shippedModels().join(','), typeof s.createService)",
        ],
        project,
        userEnv(),
        30_000,
      );
      expect(cjs.stdout.trim(), cjs.stderr).to.equal('fmnist-cnn,fmnist-resnet,fmnist-vit function');

      const env = userEnv({ NFP_BANK: join(dir(), 'bank.nfp'), PORT: '0' });
      const child = spawn(process.execPath, ['server.mjs'], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      try {
        const url = await listeningUrl(child);
        const post = async (body: Uint8Array) => {
          const r = await fetch(`${url}/classify`, { method: 'POST', body, headers: { 'content-type': 'image/png' } });
          return { status: r.status, body: (await r.json()) as { label?: number; error?: string } };
        };
        const good = await post(png);
        // Calibrated for a 10% false-positive rate: a clean image is flagged now and then (422).
        if (good.status === 200) expect(good.body.label).to.equal(test.labels[0]);
        else expect(good.body.error).to.include('manipulated');
        const bad = await post(png.subarray(0, 50));
        expect(bad.status).to.equal(422);
        expect(bad.body.error).to.include('not decoded');
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).to.equal(0);
    });
  }

  it('the installed nfp serve answers from its inference thread (the compiled worker is packed)', async () => {
    const project = projects.ignoreScripts;
    const model = join(project, 'node_modules', 'neural-fingerprints', 'models', 'fmnist-cnn.onnx');
    const child = spawn(
      join(project, 'node_modules', '.bin', 'nfp'),
      ['serve', '--model', model, '--bank', join(dir(), 'bank.nfp'), '--port', '0', '--threads', '1'],
      { cwd: project, env: userEnv(), stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const url = await listeningUrl(child);
      const r = await fetch(`${url}/v1/detect?dims=1,1,28,28`, {
        method: 'POST',
        body: Buffer.from(test.data.slice(0, 784).buffer),
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(r.status).to.equal(200);
      const body = (await r.json()) as { detections: Array<{ label: number }> };
      expect(body.detections).to.have.length(1);
      expect(body.detections[0]!.label).to.equal(test.labels[0]);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).to.equal(0);
  });

  it('packs the prebuilt addon, the models and the data, and no build folder', async () => {
    const r = await run('tar', ['-tzf', tarball], dir(), process.env, 30_000);
    const files = r.stdout.split('\n');
    for (const f of [
      'package/prebuilds/linux-x64-glibc/nfp.node',
      'package/prebuilds/linux-x64-glibc/nfp.json',
      'package/models/fmnist-cnn.onnx',
      'package/dist/index.js',
      'package/scripts/addon.mjs',
    ])
      expect(files, f).to.include(f);
    expect(files.some((f) => f.startsWith('package/build/'))).to.equal(false);
  });
});
