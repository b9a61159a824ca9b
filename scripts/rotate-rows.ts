// The shipped Fashion-MNIST test set rotated by N rows, as an IDX pair of its own: rows N..9,999 then
// 0..N-1. `nfp fit --limit` and `nfp evaluate` split a file by position (fit, calibrate, evaluate), so a
// rotated copy gives a second split of the same images (docs/results.md, *The strongest 100*):
//   npx tsx scripts/rotate-rows.ts --by 4000 --out split2/
// writes split2/rot-images-idx3-ubyte.gz and split2/rot-labels-idx1-ubyte.gz.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { readIdx, writeIdx } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';

const { values } = parseArgs({
  options: {
    by: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string', default: 'rot' },
  },
});
if (values.by === undefined || values.out === undefined)
  throw new Error('usage: scripts/rotate-rows.ts --by <rows> --out <folder> [--name rot]');
const by = Number(values.by);
const source = join(packageRoot, 'data', 'fashion-mnist');
mkdirSync(values.out, { recursive: true });
for (const [file, kind] of [
  ['t10k-images-idx3-ubyte.gz', 'images-idx3-ubyte.gz'],
  ['t10k-labels-idx1-ubyte.gz', 'labels-idx1-ubyte.gz'],
] as const) {
  const array = readIdx(join(source, file));
  const rows = array.dims[0]!;
  if (!(Number.isInteger(by) && by > 0 && by < rows))
    throw new RangeError(`Expected 0 < by < ${rows} but received ${values.by}`);
  const per = array.dims.slice(1).reduce((a, b) => a * b, 1);
  const rotated = array.data.slice();
  rotated.set(array.data.subarray(by * per), 0);
  rotated.set(array.data.subarray(0, by * per), (rows - by) * per);
  writeIdx(join(values.out, `${values.name}-${kind}`), { dims: array.dims, data: rotated }, { gzip: true });
}
