// Rows [from, to) of the shipped Fashion-MNIST test set as an IDX pair of their own, e.g. the
// attacker's images of docs/security.md (threat T2: its own bank, fitted on rows the deployed bank
// never saw):
//   npx tsx scripts/idx-rows.ts --from 3750 --to 7500 --out attacker/
// writes attacker/attacker-images-idx3-ubyte.gz and attacker/attacker-labels-idx1-ubyte.gz.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { readIdx, writeIdx } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';

const { values } = parseArgs({
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string', default: 'attacker' },
  },
});
if (values.from === undefined || values.to === undefined || values.out === undefined)
  throw new Error('usage: scripts/idx-rows.ts --from <row> --to <row> --out <folder> [--name attacker]');
const from = Number(values.from);
const to = Number(values.to);
const source = join(packageRoot, 'data', 'fashion-mnist');
mkdirSync(values.out, { recursive: true });
for (const [file, kind] of [
  ['t10k-images-idx3-ubyte.gz', 'images-idx3-ubyte.gz'],
  ['t10k-labels-idx1-ubyte.gz', 'labels-idx1-ubyte.gz'],
] as const) {
  const array = readIdx(join(source, file));
  const per = array.dims.slice(1).reduce((a, b) => a * b, 1);
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from < to && to <= array.dims[0]!))
    throw new RangeError(`Expected 0 <= from < to <= ${array.dims[0]} but received ${from}, ${to}`);
  writeIdx(
    join(values.out, `${values.name}-${kind}`),
    { dims: [to - from, ...array.dims.slice(1)], data: array.data.slice(from * per, to * per) },
    { gzip: true },
  );
}
