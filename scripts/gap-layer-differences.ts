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
import { FingerprintDetector, SeededDraws, standardizedStatistics } from '../src/detect/index.js';
import type { ImageBatch } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../src/random.js';
import { printRuleTable, upperTailStandardizer } from './gap-rules.js';

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

/** A feature x_a - x_b (b = -1: the neuron x_a alone). */
interface Features {
  a: Int32Array;
  b: Int32Array;
}
/** Kept features of one class and family, with their clean and attacked Gaussians. */
interface Screened extends Features {
  mu0: Float64Array;
  sd0: Float64Array;
  mu1: Float64Array;
  sd1: Float64Array;
}

const value = (acts: Float32Array, row: number, N: number, a: number, b: number) =>
  b < 0 ? acts[row * N + a]! : acts[row * N + a]! - acts[row * N + b]!;

/** Means and sample sds of every feature over the rows of an activation matrix [n x N], in float64. */
function moments(acts: Float32Array, n: number, N: number, f: Features): { mu: Float64Array; sd: Float64Array } {
  const F = f.a.length;
  const mu = new Float64Array(F);
  const sq = new Float64Array(F);
  for (let r = 0; r < n; r++)
    for (let j = 0; j < F; j++) {
      const v = value(acts, r, N, f.a[j]!, f.b[j]!);
      mu[j] += v;
      sq[j] += v * v;
    }
  const sd = new Float64Array(F);
  for (let j = 0; j < F; j++) {
    mu[j]! /= n;
    sd[j] = Math.sqrt(Math.max((sq[j]! - n * mu[j]! * mu[j]!) / Math.max(1, n - 1), 0));
  }
  return { mu, sd };
}

/** |Cohen's d| of every feature (pooled sd), and the `keep` strongest with their statistics (sd floored). */
function screen(
  clean: Float32Array,
  n0: number,
  attacked: Float32Array,
  n1: number,
  N: number,
  f: Features,
  keep: number,
): Screened {
  const a = moments(clean, n0, N, f);
  const b = moments(attacked, n1, N, f);
  const d = new Float64Array(f.a.length);
  for (let j = 0; j < d.length; j++) {
    const pooled = Math.sqrt(((n0 - 1) * a.sd[j]! ** 2 + (n1 - 1) * b.sd[j]! ** 2) / Math.max(1, n0 + n1 - 2));
    d[j] = pooled > 1e-6 ? Math.abs(b.mu[j]! - a.mu[j]!) / pooled : 0;
  }
  const order = [...d.keys()].sort((x, y) => d[y]! - d[x]!).slice(0, keep);
  const floor = (v: number) => Math.max(v, 1e-3);
  return {
    a: Int32Array.from(order, (j) => f.a[j]!),
    b: Int32Array.from(order, (j) => f.b[j]!),
    mu0: Float64Array.from(order, (j) => a.mu[j]!),
    sd0: Float64Array.from(order, (j) => floor(a.sd[j]!)),
    mu1: Float64Array.from(order, (j) => b.mu[j]!),
    sd1: Float64Array.from(order, (j) => floor(b.sd[j]!)),
  };
}

const logNormal = (x: number, mu: number, sd: number) => -Math.log(sd) - (0.5 * (x - mu) ** 2) / (sd * sd);

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
  const cal = detector.bank.header.calibration!.confidence!;
  const familiesInBank = detector.bank.families;
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
  const everyNeuron: Features = { a: Int32Array.from({ length: N }, (_, j) => j), b: new Int32Array(N).fill(-1) };
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
      const strongest = screen(clean, ofClass.length, attacked, mine.length, N, everyNeuron, 300);
      fitted.get('single')![fi]!.push({
        ...strongest,
        a: strongest.a.slice(0, top),
        b: strongest.b.slice(0, top),
        mu0: strongest.mu0.slice(0, top),
        sd0: strongest.sd0.slice(0, top),
        mu1: strongest.mu1.slice(0, top),
        sd1: strongest.sd1.slice(0, top),
      });
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

  let drawSeed = 101;
  type Row = { label: number; z: number[]; sums: number[][] };
  /** Per image and draw: its class, the library's z's, and per variant and family the drawn LLR sum. */
  const score = async (images: ImageBatch, reps: number): Promise<Row[]> => {
    const out = await detector.classifier.run(images);
    const scored: Row[] = [];
    for (let rep = 0; rep < reps; rep++) {
      const s = await detector.scoreActivations(out.activations, out.labels, {
        logits: out.logits,
        draws: new SeededDraws(drawSeed++),
      });
      const pick = new SeededRandom(drawSeed++);
      out.labels.forEach((c, i) => {
        const z = standardizedStatistics(
          cal,
          c,
          s.familySums!.subarray(i * familiesInBank, (i + 1) * familiesInBank),
          s.confidence![i]!,
        );
        const sums = variants.map((v) =>
          fitFamilies.map((_, fi) => {
            const fam = fitted.get(v)![fi]![c]!;
            const chosen = new Set<number>();
            while (chosen.size < Math.min(draws, fam.a.length)) chosen.add(pick.int(fam.a.length));
            let sum = 0;
            for (const f of chosen) {
              const x = value(out.activations, i, N, fam.a[f]!, fam.b[f]!);
              sum += logNormal(x, fam.mu1[f]!, fam.sd1[f]!) - logNormal(x, fam.mu0[f]!, fam.sd0[f]!);
            }
            return sum;
          }),
        );
        scored.push({ label: c, z, sums });
      });
    }
    return scored;
  };
  const calibration = await score(rows(6000, 8000), 5);
  const held = rows(8000, 10_000);
  const heldOut = await detector.classifier.run(held, { activations: false });
  const correctHeld = [...heldOut.labels.keys()].filter((i) => heldOut.labels[i] === test.labels[8000 + i]);
  const clean = await score(gatherImages(held, correctHeld), 3);
  const attacked = new Map<string, Row[]>();
  for (const a of attacks) attacked.set(a, await score(cached(`held-${a}`), 3));

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
