// Offline experiment on the gap to Mahalanobis (outside CI; minutes per model): does a draw's score gain from
// the correlations between its neurons? The library sums one Gaussian log-likelihood ratio per drawn
// fingerprint, as if the neurons were independent; Mahalanobis, which beats it on the ViT's gradient attacks,
// uses a covariance. On the images scripts/baselines-report.ts cached and the bank it read:
//   npx tsx scripts/gap-joint.ts --banks <dir> --cache <dir> [--models fmnist-vit] [--top 100] [--draw 25]
// Each class keeps its strongest --top fingerprints of <banks>/<model>/confidence.nfp (k = 1: single neurons).
// Clean statistics (means, covariance) come from the correctly classified images of rows 0-5,999 (the bank's
// fit rows), attacked ones from the cached fit-pgd and fit-fgsm images (the bank's families), each under the
// class the model gives it. Every rule scores the same seeded draws of --draw of the class's --top neurons:
//   diagonal LLR (bank)       the library's sum of per-neuron Gaussian LLRs with the bank's statistics,
//                             the largest over families
//   shared correlation (l)    the Gaussian LLR with the bank's means and deviations and, for both the clean
//                             and the attacked Gaussian, the clean correlation of the drawn neurons, shrunk
//                             toward the identity by l: the diagonal LLR is the case l = 1
//   tied-covariance LDA (l)   w = S^-1 (mu1 - mu0), the linear LLR of two Gaussians with the clean covariance
//   full QDA (l)              both covariances estimated (attacked ones from the cached fit images)
//   one-class (l)             the clean Mahalanobis distance of the drawn neurons, no attacked statistics
// Each rule's score is standardized per class on the calibration rows 6,000-7,999 (5 draws per image), then
// judged as the largest of it and the margin z (the confidence term) as well as alone; thresholds per class
// for 5% FPR; held out: the correct images of 8,000-9,999 and the cached attacks, 3 draws per image.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { loadFashionMnist, readNpy } from '../src/data/index.js';
import { FingerprintDetector, confidenceStatistic, thresholdFor } from '../src/detect/index.js';
import { auc, rateAbove, tprAtFpr } from '../src/eval/index.js';
import type { ImageBatch } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';
import { SeededRandom } from '../src/random.js';

const { values: args } = parseArgs({
  options: {
    models: { type: 'string', default: 'fmnist-vit' },
    banks: { type: 'string' },
    cache: { type: 'string' },
    top: { type: 'string', default: '100' },
    draw: { type: 'string', default: '25' },
    lambdas: { type: 'string', default: '0.05,0.2,0.5' },
  },
});
if (args.banks === undefined || args.cache === undefined)
  throw new Error('--banks <dir> and --cache <dir> are required');
const TOP = Number(args.top);
const DRAW = Number(args.draw);
const LAMBDAS = args.lambdas.split(',').map(Number);
const attacks = ['pgd', 'fgsm', 'mifgsm', 'deepfool', 'cw', 'cw-kappa5'];
const test = loadFashionMnist({ split: 'test' });
const rows = (a: number, b: number): ImageBatch => ({
  data: test.data.subarray(a * 784, b * 784),
  dims: [b - a, 1, 28, 28],
});
const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
const Z95 = 1.6448536269514722;

/** One image: its class, the class's TOP neuron values, and the margin z of the confidence term. */
interface Sample {
  label: number;
  x: Float64Array;
  marginZ: number;
}

/** Gaussian statistics of a set of TOP-vectors. */
interface Moments {
  n: number;
  mean: Float64Array;
  /** TOP x TOP covariance (maximum likelihood). */
  cov: Float64Array;
}

function moments(set: Float64Array[]): Moments {
  const n = set.length;
  const mean = new Float64Array(TOP);
  for (const x of set) for (let j = 0; j < TOP; j++) mean[j]! += x[j]! / Math.max(n, 1);
  const cov = new Float64Array(TOP * TOP);
  for (const x of set)
    for (let a = 0; a < TOP; a++) {
      const da = x[a]! - mean[a]!;
      for (let b = a; b < TOP; b++) cov[a * TOP + b]! += (da * (x[b]! - mean[b]!)) / Math.max(n, 1);
    }
  for (let a = 0; a < TOP; a++) for (let b = 0; b < a; b++) cov[a * TOP + b] = cov[b * TOP + a]!;
  return { n, mean, cov };
}

/** In-place Cholesky of an m x m SPD matrix (lower); returns log det, or NaN when not positive definite. */
function cholesky(A: Float64Array, m: number): number {
  let logdet = 0;
  for (let j = 0; j < m; j++) {
    let d = A[j * m + j]!;
    for (let k = 0; k < j; k++) d -= A[j * m + k]! ** 2;
    if (!(d > 0)) return Number.NaN;
    const l = Math.sqrt(d);
    A[j * m + j] = l;
    logdet += 2 * Math.log(l);
    for (let i = j + 1; i < m; i++) {
      let s = A[i * m + j]!;
      for (let k = 0; k < j; k++) s -= A[i * m + k]! * A[j * m + k]!;
      A[i * m + j] = s / l;
    }
  }
  return logdet;
}

/** |L^-1 v|^2 for a Cholesky factor L (m x m, lower). */
function quad(L: Float64Array, m: number, v: Float64Array): number {
  const y = new Float64Array(m);
  let q = 0;
  for (let i = 0; i < m; i++) {
    let s = v[i]!;
    for (let k = 0; k < i; k++) s -= L[i * m + k]! * y[k]!;
    y[i] = s / L[i * m + i]!;
    q += y[i]! ** 2;
  }
  return q;
}

/** L^-T L^-1 v = S^-1 v. */
function solve(L: Float64Array, m: number, v: Float64Array): Float64Array {
  const y = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = v[i]!;
    for (let k = 0; k < i; k++) s -= L[i * m + k]! * y[k]!;
    y[i] = s / L[i * m + i]!;
  }
  const x = new Float64Array(m);
  for (let i = m - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < m; k++) s -= L[k * m + i]! * x[k]!;
    x[i] = s / L[i * m + i]!;
  }
  return x;
}

/** The covariance of the drawn neurons, shrunk toward its diagonal by l, with a floor on the diagonal. */
function subCov(cov: Float64Array, draw: Uint8Array, l: number, floor: Float64Array): Float64Array {
  const m = draw.length;
  const S = new Float64Array(m * m);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < m; j++) {
      const v = cov[draw[i]! * TOP + draw[j]!]!;
      S[i * m + j] = i === j ? Math.max(v, floor[draw[i]!]! ** 2) : (1 - l) * v;
    }
  return S;
}

function centerScale(values: number[]): [number, number] {
  const s = Float64Array.from(values).sort();
  const q = (p: number) => {
    const at = p * (s.length - 1);
    const lo = Math.floor(at);
    const hi = Math.min(s.length - 1, lo + 1);
    return s[lo]! + (at - lo) * (s[hi]! - s[lo]!);
  };
  return [q(0.5), Math.max((q(0.95) - q(0.5)) / Z95, 1e-9)];
}

for (const name of args.models.split(',')) {
  const modelPath = join(packageRoot, 'models', `${name}.onnx`);
  const cached = (key: string): ImageBatch => {
    const path = join(args.cache!, name, `${key}.npy`);
    if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/baselines-report.ts --cache first`);
    const npy = readNpy(path);
    return { data: npy.data as Float32Array, dims: npy.dims };
  };
  const detector = await FingerprintDetector.load({
    model: modelPath,
    bank: join(args.banks, name, 'confidence.nfp'),
    confidence: true,
    readout: false,
    seed: 3,
  });
  await detector.calibrate(rows(6000, 8000));
  const margin = detector.bank.header.calibration!.confidence!.margin;
  const bank = detector.bank;
  const families = bank.header.families;
  const classes = detector.classifier.classes;
  const neurons = detector.classifier.neurons;
  // Each class's strongest TOP single-neuron fingerprints and their bank statistics.
  const chosen = Array.from({ length: classes }, (_, c) => {
    const fp = bank.classFingerprints(c);
    const count = fp.mu0.length;
    const order = [...Array(count).keys()].sort((a, b) => fp.effect[b]! - fp.effect[a]!).slice(0, TOP);
    if (order.length < TOP) throw new Error(`class ${c} has ${order.length} fingerprints, fewer than --top ${TOP}`);
    return {
      index: Uint32Array.from(order, (i) => fp.indices[i * bank.header.k]!),
      mu0: Float64Array.from(order, (i) => fp.mu0[i]!),
      sd0: Float64Array.from(order, (i) => fp.sd0[i]!),
      mu1: families.map((_, f) => Float64Array.from(order, (i) => fp.mu1[f * count + i]!)),
      sd1: families.map((_, f) => Float64Array.from(order, (i) => fp.sd1[f * count + i]!)),
    };
  });

  const samples = async (images: ImageBatch, keep?: (i: number, label: number) => boolean): Promise<Sample[]> => {
    const out: Sample[] = [];
    const per = images.dims.slice(1).reduce((a, b) => a * b, 1);
    for (let start = 0; start < images.dims[0]!; start += 500) {
      const end = Math.min(images.dims[0]!, start + 500);
      const chunk = {
        data: images.data.subarray(start * per, end * per),
        dims: [end - start, ...images.dims.slice(1)],
      };
      const run = await detector.classifier.run(chunk);
      const conf = confidenceStatistic(run.logits, run.rows);
      for (let i = 0; i < run.rows; i++) {
        const c = run.labels[i]!;
        if (keep !== undefined && !keep(start + i, c)) continue;
        const x = Float64Array.from(chosen[c]!.index, (n) => run.activations[i * neurons + n]!);
        const [m, s] = margin[c]!;
        out.push({ label: c, x, marginZ: (conf[i]! - m) / s });
      }
    }
    return out;
  };

  log(`${name}: activations`);
  const fitClean = await samples(rows(0, 6000), (i, c) => test.labels[i] === c);
  const fitAttacked = families.map(() => [] as Sample[]);
  for (const [f, family] of families.entries()) fitAttacked[f] = await samples(cached(`fit-${family}`));
  const calibration = await samples(rows(6000, 8000));
  const clean = await samples(rows(8000, 10_000), (i, c) => test.labels[8000 + i] === c);
  const attacked = new Map<string, Sample[]>();
  for (const a of attacks) attacked.set(a, await samples(cached(`held-${a}`)));

  const cleanMoments = Array.from({ length: classes }, (_, c) =>
    moments(fitClean.filter((s) => s.label === c).map((s) => s.x)),
  );
  const attackedMoments = families.map((_, f) =>
    Array.from({ length: classes }, (_, c) => moments(fitAttacked[f]!.filter((s) => s.label === c).map((s) => s.x))),
  );
  console.log(`\n### ${name}: top ${TOP}, draws of ${DRAW}\n`);
  console.log(
    `fit images per class: clean ${cleanMoments.map((m) => m.n).join(' ')}; ` +
      families.map((f, i) => `${f} ${attackedMoments[i]!.map((m) => m.n).join(' ')}`).join('; '),
  );

  // A rule maps (sample, draw) to a score; the draw is TOP-positions of the class's neurons.
  type Rule = (s: Sample, draw: Uint8Array) => number;
  const diagonal: Rule = (s, draw) => {
    const b = chosen[s.label]!;
    let best = -Infinity;
    for (let f = 0; f < families.length; f++) {
      let llr = 0;
      for (const j of draw) {
        const z0 = (s.x[j]! - b.mu0[j]!) / b.sd0[j]!;
        const z1 = (s.x[j]! - b.mu1[f]![j]!) / b.sd1[f]![j]!;
        llr += 0.5 * z0 * z0 - 0.5 * z1 * z1 + Math.log(b.sd0[j]! / b.sd1[f]![j]!);
      }
      best = Math.max(best, llr);
    }
    return best;
  };
  // The clean correlation of a class's neurons (from its clean fit images).
  const correlation = cleanMoments.map((m) => {
    const R = new Float64Array(TOP * TOP);
    for (let a = 0; a < TOP; a++)
      for (let b = 0; b < TOP; b++)
        R[a * TOP + b] = m.cov[a * TOP + b]! / Math.sqrt(Math.max(m.cov[a * TOP + a]! * m.cov[b * TOP + b]!, 1e-24));
    for (let a = 0; a < TOP; a++) R[a * TOP + a] = 1;
    return R;
  });
  const ones = new Float64Array(TOP).fill(1);
  const sharedCorrelation =
    (l: number): Rule =>
    (s, draw) => {
      const b = chosen[s.label]!;
      const L = subCov(correlation[s.label]!, draw, l, ones);
      if (Number.isNaN(cholesky(L, draw.length))) return Number.NaN;
      const z0 = Float64Array.from(draw, (j) => (s.x[j]! - b.mu0[j]!) / b.sd0[j]!);
      const q0 = quad(L, draw.length, z0);
      let best = -Infinity;
      for (let f = 0; f < families.length; f++) {
        const z1 = Float64Array.from(draw, (j) => (s.x[j]! - b.mu1[f]![j]!) / b.sd1[f]![j]!);
        let logs = 0;
        for (const j of draw) logs += Math.log(b.sd0[j]! / b.sd1[f]![j]!);
        best = Math.max(best, 0.5 * q0 - 0.5 * quad(L, draw.length, z1) + logs);
      }
      return best;
    };
  const lda =
    (l: number): Rule =>
    (s, draw) => {
      const b = chosen[s.label]!;
      const m = cleanMoments[s.label]!;
      const L = subCov(m.cov, draw, l, b.sd0);
      if (Number.isNaN(cholesky(L, draw.length))) return Number.NaN;
      let best = -Infinity;
      for (let f = 0; f < families.length; f++) {
        const delta = Float64Array.from(draw, (j) => b.mu1[f]![j]! - b.mu0[j]!);
        const w = solve(L, draw.length, delta);
        let v = 0;
        draw.forEach((j, i) => {
          v += w[i]! * (s.x[j]! - 0.5 * (b.mu0[j]! + b.mu1[f]![j]!));
        });
        best = Math.max(best, v);
      }
      return best;
    };
  const qda =
    (l: number): Rule =>
    (s, draw) => {
      const m0 = cleanMoments[s.label]!;
      const L0 = subCov(m0.cov, draw, l, chosen[s.label]!.sd0);
      const d0 = cholesky(L0, draw.length);
      const q0 = quad(
        L0,
        draw.length,
        Float64Array.from(draw, (j) => s.x[j]! - m0.mean[j]!),
      );
      let best = -Infinity;
      for (let f = 0; f < families.length; f++) {
        const m1 = attackedMoments[f]![s.label]!;
        if (m1.n < 2 * DRAW) continue;
        const L1 = subCov(m1.cov, draw, l, chosen[s.label]!.sd1[f]!);
        const d1 = cholesky(L1, draw.length);
        const q1 = quad(
          L1,
          draw.length,
          Float64Array.from(draw, (j) => s.x[j]! - m1.mean[j]!),
        );
        best = Math.max(best, 0.5 * (q0 - q1) + 0.5 * (d0 - d1));
      }
      return best === -Infinity ? diagonal(s, draw) : best;
    };
  const oneClass =
    (l: number): Rule =>
    (s, draw) => {
      const b = chosen[s.label]!;
      const L = subCov(correlation[s.label]!, draw, l, ones);
      cholesky(L, draw.length);
      return quad(
        L,
        draw.length,
        Float64Array.from(draw, (j) => (s.x[j]! - b.mu0[j]!) / b.sd0[j]!),
      );
    };
  const rules: Array<[string, Rule]> = [['diagonal LLR (bank: the library)', diagonal]];
  for (const l of LAMBDAS) rules.push([`shared correlation (${l})`, sharedCorrelation(l)]);
  for (const l of LAMBDAS) rules.push([`tied-covariance LDA (${l})`, lda(l)]);
  for (const l of LAMBDAS) rules.push([`full QDA (${l})`, qda(l)]);
  for (const l of LAMBDAS) rules.push([`one-class (${l})`, oneClass(l)]);

  // The same seeded draws for every rule.
  const draws = (set: Sample[], per: number, seed: number): Array<[Sample, Uint8Array]> => {
    const rng = new SeededRandom(seed);
    const out: Array<[Sample, Uint8Array]> = [];
    const pool = Uint8Array.from(Array(TOP).keys());
    for (const s of set)
      for (let d = 0; d < per; d++) {
        for (let i = 0; i < DRAW; i++) {
          const j = i + Math.floor(rng.next() * (TOP - i));
          [pool[i], pool[j]] = [pool[j]!, pool[i]!];
        }
        out.push([s, pool.slice(0, DRAW)]);
      }
    return out;
  };
  const calDraws = draws(calibration, 5, 21);
  const cleanDraws = draws(clean, 3, 22);
  const attackedDraws = new Map(attacks.map((a, i) => [a, draws(attacked.get(a)!, 3, 23 + i)]));

  console.log(`\n| rule | margin term | FPR | ${attacks.join(' | ')} |`);
  console.log(`|---|---|---|${attacks.map(() => '---|').join('')}`);
  for (const [ruleName, rule] of rules) {
    const t0 = performance.now();
    const calScores = calDraws.map(([s, d]) => rule(s, d));
    const all = centerScale(calScores.filter(Number.isFinite));
    const per = Array.from({ length: classes }, (_, c) => {
      const v = calScores.filter((x, i) => calDraws[i]![0].label === c && Number.isFinite(x));
      return v.length >= 200 ? centerScale(v) : all;
    });
    const z = (s: Sample, v: number) => (Number.isFinite(v) ? (v - per[s.label]![0]) / per[s.label]![1] : 1e9);
    const cleanScores = cleanDraws.map(([s, d]) => z(s, rule(s, d)));
    const attackedScores = new Map(attacks.map((a) => [a, attackedDraws.get(a)!.map(([s, d]) => z(s, rule(s, d)))]));
    const calZ = calScores.map((v, i) => z(calDraws[i]![0], v));
    for (const withMargin of [false, true]) {
      const combine = (s: Sample, v: number) => (withMargin ? Math.max(v, s.marginZ) : v);
      const thresholds = Array.from({ length: classes }, (_, c) =>
        thresholdFor(
          calZ.flatMap((v, i) => (calDraws[i]![0].label === c ? [combine(calDraws[i]![0], v)] : [])),
          0.05,
        ),
      );
      const margins = (set: Array<[Sample, Uint8Array]>, scores: number[]) =>
        scores.map((v, i) => combine(set[i]![0], v) - thresholds[set[i]![0].label]!);
      const negatives = margins(cleanDraws, cleanScores);
      const cells = attacks.map((a) => {
        const positives = margins(attackedDraws.get(a)!, attackedScores.get(a)!);
        return `${auc(negatives, positives).toFixed(4)} (${tprAtFpr(negatives, positives, 0.05).toFixed(3)})`;
      });
      console.log(
        `| ${ruleName} | ${withMargin ? 'yes' : 'no'} | ${rateAbove(negatives, 0).toFixed(3)} | ${cells.join(' | ')} |`,
      );
    }
    log(`${ruleName}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }
  await detector.release();
}
