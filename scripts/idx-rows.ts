// Rows of the shipped Fashion-MNIST test set as an IDX pair of their own:
//   --from F --to T   rows [F, T), e.g. the attacker's images of docs/security.md (threat T2: its own bank,
//                     fitted on rows the deployed bank never saw):
//                       npx tsx scripts/idx-rows.ts --from 3750 --to 7500 --out attacker/
//                     writes attacker/attacker-images-idx3-ubyte.gz and attacker/attacker-labels-idx1-ubyte.gz;
//   --rotate N        every row, rotated: rows N..end then 0..N-1. `nfp fit --limit` and `nfp evaluate` split
//                     a file by position (fit, calibrate, evaluate), so a rotated copy is a second split of
//                     the same images (docs/results.md, *The strongest 100*):
//                       npx tsx scripts/idx-rows.ts --rotate 4000 --name rot --out split2/
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { readIdx, writeIdx } from '../src/data/index.js';
import { packageRoot } from '../src/paths.js';

const { values } = parseArgs({
  options: {
    from: { type: 'string' },
    to: { type: 'string' },
    rotate: { type: 'string' },
    out: { type: 'string' },
    name: { type: 'string', default: 'attacker' },
  },
});
const rotating = values.rotate !== undefined;
if (values.out === undefined || rotating === (values.from !== undefined || values.to !== undefined))
  throw new Error(
    'usage: scripts/idx-rows.ts (--from <row> --to <row> | --rotate <rows>) --out <folder> [--name attacker]',
  );
const source = join(packageRoot, 'data', 'fashion-mnist');
mkdirSync(values.out, { recursive: true });
for (const [file, kind] of [
  ['t10k-images-idx3-ubyte.gz', 'images-idx3-ubyte.gz'],
  ['t10k-labels-idx1-ubyte.gz', 'labels-idx1-ubyte.gz'],
] as const) {
  const array = readIdx(join(source, file));
  const rows = array.dims[0]!;
  // The copied row ranges, in order.
  const [from, to] = rotating ? [Number(values.rotate), rows] : [Number(values.from), Number(values.to)];
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && from < to && to <= rows))
    throw new RangeError(
      rotating
        ? `Expected 0 <= rotate < ${rows} but received ${values.rotate}`
        : `Expected 0 <= from < to <= ${rows} but received ${from}, ${to}`,
    );
  const ranges: Array<[number, number]> = rotating
    ? [
        [from, rows],
        [0, from],
      ]
    : [[from, to]];
  const per = array.dims.slice(1).reduce((a, b) => a * b, 1);
  const count = ranges.reduce((n, [a, b]) => n + b - a, 0);
  const data = new (array.data.constructor as Uint8ArrayConstructor)(count * per);
  let at = 0;
  for (const [a, b] of ranges) {
    data.set(array.data.subarray(a * per, b * per), at);
    at += (b - a) * per;
  }
  writeIdx(join(values.out, `${values.name}-${kind}`), { dims: [count, ...array.dims.slice(1)], data }, { gzip: true });
}
