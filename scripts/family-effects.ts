// Per class and attack family of a bank: how many of the class's fingerprints separate that family's
// attacked images from clean ones (|Cohen's d| >= 1.5, from the stored means and standard deviations),
// the largest |d|, and how many have attacked spreads under half the clean one. docs/security.md uses it
// to show that an EOT family finds almost no separating neuron:
//   npx tsx scripts/family-effects.ts refit.nfp
import { readBank } from '../src/bank/index.js';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: npx tsx scripts/family-effects.ts <bank.nfp>');
const bank = readBank(path);
const { mu0, sd0, mu1, sd1 } = bank.arrays;
const total = bank.fingerprints;
const families = bank.header.families;
for (let c = 0; c < bank.header.classes.length; c++) {
  const { start, count } = bank.range(c);
  const parts = families.map((name, f) => {
    let separating = 0;
    let largest = 0;
    let narrow = 0;
    for (let j = start; j < start + count; j++) {
      const attackedSd = sd1[f * total + j]!;
      const d = (mu1[f * total + j]! - mu0[j]!) / Math.sqrt((sd0[j]! ** 2 + attackedSd ** 2) / 2);
      if (Math.abs(d) >= 1.5) separating++;
      largest = Math.max(largest, Math.abs(d));
      if (attackedSd < 0.5 * sd0[j]!) narrow++;
    }
    return `${name}: |d| >= 1.5 ${separating}/${count}, max ${largest.toFixed(1)}, sd1 < sd0/2 ${narrow}`;
  });
  process.stdout.write(`class ${c}  ${parts.join(' | ')}\n`);
}
