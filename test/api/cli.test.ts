// The `nfp` command as a user runs it: the compiled dist/cli/main.js in a child process.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { packageRoot } from '../../src/paths.js';
import { version } from '../../src/version.js';

const cli = join(packageRoot, 'dist', 'cli', 'main.js');

function nfp(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

describe('nfp CLI', () => {
  before(function () {
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
  });

  it('info prints a readable table', () => {
    const r = nfp(['info']);
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/^backend\s+cpu/m).and.to.match(/^onnxruntime-node\s+1\./m);
  });

  it('falls back to cpu with a warning when NFP_BACKEND asks for an unusable cuda', () => {
    const r = nfp(['info', '--json'], { NFP_BACKEND: 'cuda' });
    expect(r.status).to.equal(0);
    expect(JSON.parse(r.stdout)).to.include({ backend: 'cpu' });
    expect(r.stderr).to.match(/NFP_BACKEND=cuda ignored/);
  });

  it('exits 2 on bad usage', () => {
    expect(nfp(['no-such-command']).status).to.equal(2);
    expect(nfp(['info', '--no-such-flag']).status).to.equal(2);
  });

  it('exits 0 for --help and shows an example', () => {
    const r = nfp(['--help']);
    expect(r.status).to.equal(0);
    expect(r.stdout).to.match(/Example:/);
  });
});
