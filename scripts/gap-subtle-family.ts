// Offline experiment (outside CI): single-neuron fingerprints for the subtle attack families, selected by what
// they add to the margin term rather than by their own effect, next to the library's confidence term:
//   npx tsx scripts/gap-subtle-family.ts --banks <dir> --cache <dir> [--models fmnist-cnn,...] [--top 200]
// Subtle families fitted on the fit rows (rows 0-5,999 of the Fashion-MNIST test set): DeepFool (L2, untargeted)
// and a short CW-L2 at kappa 5 (one binary-search step of 100 Adam steps), each on 1,000 correctly classified
// fit images (cached under --cache). For class c, every tapped neuron is screened between the family's
// images that land in c and clean images of c (Cohen's d with pooled sd), and the top --top by |d| become
// the family's fingerprints with their Gaussian statistics, in two ways:
//   plain          clean = every correctly classified clean fit image of c (the library's selection)
//   margin-aware   clean = the quarter of them with the smallest logit margin: the clean images the margin
//                  term would flag, so the fingerprints kept are those that tell the attack from them
// A family's score is the log-likelihood ratio summed over 25 of its fingerprints drawn at random per image
// (seeded), standardized per class on the calibration rows (6,000-7,999) as the confidence term standardizes
// its statistics, and joins the largest z. Thresholds per class for 5% FPR on the calibration rows (5 draws);
// held out: the correctly classified images of 8,000-9,999 and the attacks cached by
// scripts/baselines-report.ts, over 3 draws. Prints a markdown table per model.
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

import { CarliniWagnerL2, DeepFool } from '../src/attacks/index.js';
import type { Attack } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { gatherImages, gatherRows, loadFashionMnist, readNpy, writeNpy } from '../src/data/index.js';
import { FingerprintDetector, logitMargins } from '../src/detect/index.js';
import type { ImageBatch } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../src/random.js';
import { drawnLlrSum, heldOutSets, libraryScorer, printRuleTable, upperTailStandardizer } from './gap-rules.js';
import type { ScoredRow } from './gap-rules.js';
import { everyNeuron, screen } from './gap-screen.js';
import type { Screened } from './gap-screen.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'fmnist-cnn,fmnist-resnet,fmnist-vit' },
    banks: { type: 'string' },
    cache: { type: 'string' },
    top: { type: 'string', default: '200' },
    sources: { type: 'string', default: '1000' },
  },
});
if (args.banks === undefined || args.cache === undefined)
  throw new Error('--banks <dir> and --cache <dir> are required');
const top = Number(args.top);
const attacks = ['pgd', 'fgsm', 'mifgsm', 'deepfool', 'cw', 'cw-kappa5'];
const draws = 25;
const test = loadFashionMnist({ split: 'test' });
const rows = (a: number, b: number): ImageBatch => ({
  data: test.data.subarray(a * 784, b * 784),
  dims: [b - a, 1, 28, 28],
});
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

for (const name of args.models.split(',')) {
  const modelPath = join(packageRoot, 'models', `${name}.onnx`);
  const cached = (key: string): ImageBatch => {
    const npy = readNpy(join(args.cache!, name, `${key}.npy`));
    return { data: npy.data as Float32Array, dims: npy.dims };
  };
  const detector = await FingerprintDetector.load({
    model: modelPath,
    bank: join(args.banks, name, 'confidence.nfp'),
    confidence: true,
    seed: 3,
  });
  await detector.calibrate(rows(6000, 8000));
  const classes = detector.classifier.classes;
  const N = detector.classifier.neurons;
  const singles = everyNeuron(N);
  const attackModel = await GradientModel.load(modelPath, { taps: [], batchSize: 128 });

  // The subtle families' images on correctly classified fit rows not used by baselines-report's PGD and FGSM.
  const fitImages = rows(0, 6000);
  const fitOut = await detector.classifier.run(fitImages, { activations: false });
  const correct = [...fitOut.labels.keys()].filter((i) => fitOut.labels[i] === test.labels[i]);
  const rng = new SeededRandom(17);
  for (let i = correct.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [correct[i], correct[j]] = [correct[j]!, correct[i]!];
  }
  const subtle: Array<[string, Attack]> = [
    ['deepfool', new DeepFool()],
    ['cw-kappa5-short', new CarliniWagnerL2({ kappa: 5, binarySteps: 1, steps: 100 })],
  ];
  const landed = new Map<string, ImageBatch>();
  for (const [f, [family, attack]] of subtle.entries()) {
    const path = join(args.cache, name, `fit-${family}.npy`);
    if (!existsSync(path)) {
      const chosen = correct.slice(f * Number(args.sources), (f + 1) * Number(args.sources));
      log(`${name}: ${family} on ${chosen.length} fit images`);
      const run = await attack.run(attackModel, gatherImages(fitImages, chosen), {
        labels: Int32Array.from(chosen, (i) => test.labels[i]!),
        seed: 23 + f,
      });
      const hit = [...run.success.keys()].filter((i) => run.success[i]);
      mkdirSync(dirname(path), { recursive: true });
      writeNpy(path, gatherImages({ data: run.adv, dims: run.dims }, hit));
    }
    landed.set(family, cached(`fit-${family}`));
  }

  // Per class: clean activations (all correctly classified fit images of c and its lowest-margin quarter) and
  // each subtle family's landings in c; screened both ways.
  const fitted = new Map<string, Screened[]>();
  const cleanOut = await detector.classifier.run(gatherImages(fitImages, correct), { activations: false });
  const margins = logitMargins(cleanOut.logits, correct.length);
  const landedOut = new Map<string, Awaited<ReturnType<typeof detector.classifier.run>>>();
  for (const [family, images] of landed) landedOut.set(family, await detector.classifier.run(images));
  for (const [family] of subtle) {
    fitted.set(`${family} plain`, []);
    fitted.set(`${family} margin-aware`, []);
  }
  for (let c = 0; c < classes; c++) {
    const ofClass = [...correct.keys()].filter((i) => cleanOut.labels[i] === c);
    const byMargin = [...ofClass].sort((x, y) => margins[x]! - margins[y]!);
    const hard = byMargin.slice(0, Math.max(20, Math.floor(byMargin.length / 4)));
    const actsOf = async (idx: number[]) =>
      (
        await detector.classifier.run(
          gatherImages(
            fitImages,
            Array.from(idx, (i) => correct[i]!),
          ),
        )
      ).activations;
    const all = await actsOf(ofClass);
    const hardActs = await actsOf(hard);
    for (const [family] of subtle) {
      const out = landedOut.get(family)!;
      const mine = [...out.labels.keys()].filter((i) => out.labels[i] === c);
      const attacked = gatherRows(out.activations, mine, N);
      fitted.get(`${family} plain`)!.push(screen(all, ofClass.length, attacked, mine.length, N, singles, top));
      fitted.get(`${family} margin-aware`)!.push(screen(hardActs, hard.length, attacked, mine.length, N, singles, top));
    }
  }
  log(`${name}: screened ${[...landed].map(([f, s]) => `${f} ${s.dims[0]}`).join(', ')}`);

  const variants = [...fitted.keys()];
  type Row = ScoredRow<number[]>;
  /** Per image and draw: its class, the library's z's and each variant's log-likelihood ratio sum. */
  const score = libraryScorer(detector, 101, (acts, i, c, pick) =>
    variants.map((v) => {
      const fam = fitted.get(v)![c]!;
      return drawnLlrSum(pick, draws, fam, (f) => acts[i * N + fam.a[f]!]!);
    }),
  );
  const calibration = await score(rows(6000, 8000), 5);
  const { clean, attacked } = await heldOutSets(
    score,
    detector.classifier,
    { images: rows(8000, 10_000), truth: test.labels.subarray(8000) },
    attacks,
    (a) => cached(`held-${a}`),
  );

  // Each variant's sum standardized per class on the calibration rows (median, upper-tail spread).
  const standard = variants.map((_, v) => upperTailStandardizer(calibration, classes, (x) => x.sums[v]!));
  const zOf = (x: Row, v: number) => standard[v]!(x, x.sums[v]!);
  const rules: Array<[string, (x: Row) => number]> = [["largest z (the library's)", (x) => Math.max(...x.z)]];
  for (const [v, variant] of variants.entries()) {
    rules.push([`${variant} z alone`, (x) => zOf(x, v)]);
    rules.push([`largest z + ${variant} z`, (x) => Math.max(...x.z, zOf(x, v))]);
  }
  const both = (kind: string) => variants.flatMap((v, i) => (v.endsWith(kind) ? [i] : []));
  for (const kind of ['plain', 'margin-aware'])
    rules.push([`largest z + both ${kind} z`, (x) => Math.max(...x.z, ...both(kind).map((v) => zOf(x, v)))]);

  console.log(`\n### ${name}\n`);
  console.log(
    `Fit: ${[...landed].map(([f, s]) => `${s.dims[0]} ${f} images`).join(', ')}; top ${top} neurons per class and ` +
      `family, 25 drawn per image.\n`,
  );
  printRuleTable(rules, classes, { calibration, clean, attacked }, attacks);
  await Promise.all([detector.release(), attackModel.release()]);
  log(`${name}: done`);
}
