// Banks at ImageNet's 1,000 classes (synthetic, small per class so the test stays quick): shards of
// them merge to the whole, `nfp bank info` summarises instead of printing 2,000 rows, and readBank's
// zero-copy arrays are the same as decodeBank's copies (and never alias a caller's buffer).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';

import { syntheticBank } from '../../bench/scale.js';
import { FingerprintBank, decodeBank, readBank, writeBank } from '../../src/bank/index.js';
import type { FittedClass } from '../../src/bank/index.js';
import { registerBankCommand } from '../../src/cli/bank.js';
import { runCommands } from '../reference/cli.js';
import { useTempDir } from '../reference/temp-dir.js';

const nfp = (args: string[]) => runCommands([registerBankCommand], args);

describe('banks of 1,000 classes', () => {
  const dir = useTempDir('nfp-scale-');
  const settings = { classes: 1000, perClass: 20, neurons: 5000, shards: 10 };
  const { header, classes, bank } = syntheticBank(settings);
  const path = () => join(dir(), 'bank.nfp');

  before(() => {
    writeBank(path(), bank);
  });

  it('read with zero-copy views equal to decoded copies, which do not alias the bytes they came from', () => {
    const read = readBank(path());
    const bytes = new Uint8Array(readFileSync(path()));
    const decoded = decodeBank(bytes);
    for (const key of Object.keys(bank.arrays) as Array<keyof FingerprintBank['arrays']>) {
      expect(read.arrays[key]).to.deep.equal(bank.arrays[key]);
      expect(decoded.arrays[key]).to.deep.equal(bank.arrays[key]);
    }
    const before = decoded.arrays.mu0[0];
    bytes.fill(0);
    expect(decoded.arrays.mu0[0]).to.equal(before);
  });

  it('merge from 10 shards (nfp bank merge) to the whole bank', async () => {
    const shards = Array.from({ length: 10 }, (_, i) => {
      const fitted = new Map<number, FittedClass>();
      for (let c = i * 100; c < (i + 1) * 100; c++) fitted.set(c, classes[c]!);
      const shard = join(dir(), `shard-${i}.nfp`);
      writeBank(shard, FingerprintBank.fromClasses(header, fitted));
      return shard;
    });
    const merged = join(dir(), 'merged.nfp');
    const out = JSON.parse(await nfp(['bank', 'merge', ...shards, '--out', merged])) as { fittedClasses: number };
    expect(out.fittedClasses).to.equal(1000);
    const m = readBank(merged);
    for (const key of Object.keys(bank.arrays) as Array<keyof FingerprintBank['arrays']>)
      expect(m.arrays[key]).to.deep.equal(bank.arrays[key]);
  });

  it('nfp bank info summarises the classes (the ones to look at, --all-classes for each)', async () => {
    const fitted = new Map(classes.map((c, i) => [i, c] as const));
    fitted.delete(7);
    const few = classes[500]!;
    fitted.set(500, {
      ...few,
      fingerprints: {
        ...few.fingerprints,
        indices: few.fingerprints.indices.slice(0, 3),
        mu0: few.fingerprints.mu0.slice(0, 3),
        sd0: few.fingerprints.sd0.slice(0, 3),
        mu1: few.fingerprints.mu1.slice(0, 6),
        sd1: few.fingerprints.sd1.slice(0, 6),
        effect: few.fingerprints.effect.slice(0, 3),
        relaxed: 'kept the 3 largest |d| regardless',
      },
    });
    const odd = join(dir(), 'odd.nfp');
    writeBank(odd, FingerprintBank.fromClasses(header, fitted));
    const text = await nfp(['bank', 'info', odd]);
    const lines = text.split('\n');
    expect(lines.length).to.be.below(80);
    expect(text).to.match(/999 of 1000 classes fitted/);
    expect(text).to.match(/1 relaxed/);
    const rows = lines.filter((l) => /^\s*\d+\s+(yes|no)\s/.test(l)).map((l) => Number(l.trim().split(/\s+/)[0]));
    expect(rows).to.include(7);
    expect(rows).to.include(500);
    expect(rows).to.deep.equal([7, 500]);
    const all = await nfp(['bank', 'info', odd, '--all-classes']);
    expect(all.split('\n').filter((l) => /^\s*\d+\s+(yes|no)\s/.test(l))).to.have.length(1000);
  });
});
