// Offline experiment (outside CI): fingerprints over differences between layers, next to single neurons
// screened on the same images, with and without the library's detector (issue 21's "fingerprints over
// differences between layers"):
//   npx tsx scripts/gap-layer-differences.ts --banks <dir> --cache <dir> [--models fmnist-cnn] [--top 100]
//       [--pairs 20000] [--families pgd,fgsm,deepfool,cw-kappa5-short]
// A candidate is x_a - x_b for two tapped neurons of different taps: a neuron read against one of another
// layer, so that what both layers share (the image's overall activity) cancels and what the attack moves in
// one layer and not the other is left. Per class and family, three candidate sets are screened by |Cohen's d|
// between the clean fit images of the class and the family's fit images that land in it, top --top kept:
//   single     every tapped neuron (the library's candidates, k = 1)
//   random     --pairs random pairs across taps
//   anchored   --pairs pairs whose first neuron is one of the class's 300 strongest single neurons (for that
//              family) and whose second is a random neuron of another tap
// Images: the fit rows' attacks cached by scripts/baselines-report.ts (fit-pgd, fit-fgsm) and
// scripts/gap-subtle-family.ts (fit-deepfool, fit-cw-kappa5-short), which must be run first; held-out attacks
// from baselines-report.ts. A variant's score is, per family, the Gaussian log-likelihood ratio summed over 25
// of its features drawn per image (seeded), standardized per class on the calibration rows 6,000-7,999 as the
// confidence term standardizes its statistics, and the largest over families; rules as gap-subtle-family.ts.
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { gatherImages, gatherRows, loadFashionMnist, readNpy } from '../src/data/index.js';
import { FingerprintDetector } from '../src/detect/index.js';
import type { ImageBatch } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../src/random.js';
import { drawnLlrSum, heldOutSets, libraryScorer, printRuleTable, upperTailStandardizer } from './gap-rules.js';
import type { ScoredRow } from './gap-rules.js';
import { everyNeuron, screen, strongestOf, value } from './gap-screen.js';
import type { Features, Screened } from './gap-screen.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'fmnist-cnn' },
    banks: { type: 'string' },
    cache: { type: 'string' },
    top: { type: 'string', default: '100' },
    pairs: { type: 'string', default: '20000' },
    families: { type: 'string', default: 'pgd,fgsm,deepfool,cw-kappa5-short' },
  },
});
if (args.banks === undefined || args.cache === undefined)
  throw new Error('--banks <dir> and --cache <dir> are required');
const top = Number(args.top);
const pairCount = Number(args.pairs);
const fitFamilies = args.families.split(',');
const attacks = ['pgd', 'fgsm', 'mifgsm', 'deepfool', 'cw', 'cw-kappa5'];
const draws = 25;
const test = loadFashionMnist({ split: 'test' });
const rows = (a: number, b: number): ImageBatch => ({
  data: test.data.subarray(a * 784, b * 784),
  dims: [b - a, 1, 28, 28],
});
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

for (const name of args.models.split(',')) {
  const cached = (key: string): ImageBatch => {
    const npy = readNpy(join(args.cache!, name, `${key}.npy`));
    return { data: npy.data as Float32Array, dims: npy.dims };
  };
  const detector = await FingerprintDetector.load({
    model: join(packageRoot, 'models', `${name}.onnx`),
    bank: join(args.banks, name, 'confidence.nfp'),
    confidence: true,
    seed: 3,
  });
  await detector.calibrate(rows(6000, 8000));
  const classes = detector.classifier.classes;
  const N = detector.classifier.neurons;
  // Which tap each neuron belongs to, so that a pair spans two layers.
  const tapOf = new Int32Array(N);
  const tapStarts = [...detector.classifier.taps.map((tap) => tap.offset), N];
  for (let t = 0; t + 1 < tapStarts.length; t++) tapOf.fill(t, tapStarts[t], tapStarts[t + 1]);
  const taps = tapStarts.length - 1;
  const neuronOfOtherTap = (rng: SeededRandom, tap: number): number => {
    let t = rng.int(taps - 1);
    if (t >= tap) t += 1;
    return tapStarts[t]! + rng.int(tapStarts[t + 1]! - tapStarts[t]!);
  };

  const fitImages = rows(0, 6000);
  const fitOut = await detector.classifier.run(fitImages, { activations: false });
  const correct = [...fitOut.labels.keys()].filter((i) => fitOut.labels[i] === test.labels[i]);
  const familyOut = new Map<string, Awaited<ReturnType<typeof detector.classifier.run>>>();
  for (const f of fitFamilies) familyOut.set(f, await detector.classifier.run(cached(`fit-${f}`)));

  const variants = ['single', 'random', 'anchored'] as const;
  type Variant = (typeof variants)[number];
  /** fitted[variant][family][class] */
  const fitted = new Map<Variant, Screened[][]>(variants.map((v) => [v, fitFamilies.map(() => [])]));
  const rng = new SeededRandom(29);
  const singles = everyNeuron(N);
  for (let c = 0; c < classes; c++) {
    const ofClass = correct.filter((i) => fitOut.labels[i] === c);
    const clean = (await detector.classifier.run(gatherImages(fitImages, ofClass))).activations;
    const randomPairs: Features = { a: new Int32Array(pairCount), b: new Int32Array(pairCount) };
    for (let j = 0; j < pairCount; j++) {
      const a = rng.int(N);
      randomPairs.a[j] = a;
      randomPairs.b[j] = neuronOfOtherTap(rng, tapOf[a]!);
    }
    for (const [fi, f] of fitFamilies.entries()) {
      const out = familyOut.get(f)!;
      const mine = [...out.labels.keys()].filter((i) => out.labels[i] === c);
      if (mine.length < 2) throw new Error(`${name}: family ${f} has ${mine.length} fit images in class ${c}`);
      const attacked = gatherRows(out.activations, mine, N);
      const strongest = screen(clean, ofClass.length, attacked, mine.length, N, singles, 300);
      fitted.get('single')![fi]!.push(strongestOf(strongest, top));
      const anchoredPairs: Features = { a: new Int32Array(pairCount), b: new Int32Array(pairCount) };
      for (let j = 0; j < pairCount; j++) {
        const a = strongest.a[rng.int(strongest.a.length)]!;
        anchoredPairs.a[j] = a;
        anchoredPairs.b[j] = neuronOfOtherTap(rng, tapOf[a]!);
      }
      fitted.get('random')![fi]!.push(screen(clean, ofClass.length, attacked, mine.length, N, randomPairs, top));
      fitted.get('anchored')![fi]!.push(screen(clean, ofClass.length, attacked, mine.length, N, anchoredPairs, top));
    }
    log(`${name}: class ${c} screened (${ofClass.length} clean)`);
  }

  type Row = ScoredRow<number[][]>;
  /** Per image and draw: its class, the library's z's, and per variant and family the drawn LLR sum. */
  const score = libraryScorer(detector, 101, (acts, i, c, pick) =>
    variants.map((v) =>
      fitFamilies.map((_, fi) => {
        const fam = fitted.get(v)![fi]![c]!;
        return drawnLlrSum(pick, draws, fam, (f) => value(acts, i, N, fam.a[f]!, fam.b[f]!));
      }),
    ),
  );
  const calibration = await score(rows(6000, 8000), 5);
  const { clean, attacked } = await heldOutSets(
    score,
    detector.classifier,
    { images: rows(8000, 10_000), truth: test.labels.subarray(8000) },
    attacks,
    (a) => cached(`held-${a}`),
  );

  // Per variant and family: the drawn sum standardized per class on the calibration rows; a variant's z is the
  // largest over its families.
  const standard = variants.map((_, v) =>
    fitFamilies.map((_, fi) => upperTailStandardizer(calibration, classes, (x) => x.sums[v]![fi]!)),
  );
  const zOf = (x: Row, v: number) => Math.max(...fitFamilies.map((_, fi) => standard[v]![fi]!(x, x.sums[v]![fi]!)));
  const rules: Array<[string, (x: Row) => number]> = [["largest z (the library's)", (x) => Math.max(...x.z)]];
  for (const [v, variant] of variants.entries()) {
    rules.push([`${variant} alone`, (x) => zOf(x, v)]);
    rules.push([`largest z + ${variant}`, (x) => Math.max(...x.z, zOf(x, v))]);
  }
  rules.push(['margin z + random', (x) => Math.max(x.z[x.z.length - 1]!, zOf(x, 1))]);
  rules.push(['margin z + single', (x) => Math.max(x.z[x.z.length - 1]!, zOf(x, 0))]);

  console.log(`\n### ${name}\n`);
  console.log(
    `Fit families: ${fitFamilies.map((f) => `${f} ${familyOut.get(f)!.labels.length}`).join(', ')}; ` +
      `top ${top} per class and family, ${pairCount} candidate pairs, 25 drawn per image.\n`,
  );
  printRuleTable(rules, classes, { calibration, clean, attacked }, attacks);
  await detector.release();
  log(`${name}: done`);
}
