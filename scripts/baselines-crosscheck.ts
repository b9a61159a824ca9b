// The baselines on a small shared case, written out for an independent check in numpy/scipy/PyTorch
// (scripts/baselines_crosscheck.py, which implements the authors' formulas on the same images):
//   npx tsx scripts/baselines-crosscheck.ts [--dir /tmp/nfp-baselines-check]
//   /usr/bin/python3 scripts/baselines_crosscheck.py [--dir /tmp/nfp-baselines-check]
// The committed CNN with its card's taps; the Fashion-MNIST test set's rows 0-1,999 fit (clean, with labels),
// FGSM at eps 0.1 on the correctly classified ones among rows 0-399 is the attacked fit set, and the queries
// are rows 8,000-8,199 and their FGSM images. Written: the images (.npy), and ours: the Mahalanobis layer
// scores of the queries at eps 0 and 0.002, its regression's rows (features, labels) with the
// cross-validated strength, scores and coefficients, the LID of the queries within their minibatches of
// 100, and the squeezing scores of the queries.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { FGSM } from '../src/attacks/index.js';
import { GradientModel } from '../src/autodiff/index.js';
import { FeatureSqueezingDetector, LidDetector, MahalanobisDetector, fitLogisticCV } from '../src/baselines/index.js';
import { gatherImages, loadFashionMnist, writeNpy } from '../src/data/index.js';
import type { ImageBatch } from '../src/model/index.js';
import { packageRoot } from '../src/paths.js';

const { values: args } = parseArgs({ options: { dir: { type: 'string', default: '/tmp/nfp-baselines-check' } } });
const dir = args.dir;
mkdirSync(dir, { recursive: true });
const test = loadFashionMnist({ split: 'test' });
const rows = (a: number, b: number): ImageBatch => ({
  data: test.data.subarray(a * 784, b * 784),
  dims: [b - a, 1, 28, 28],
});
const save = (name: string, dims: readonly number[], data: Float32Array | Float64Array | Int32Array) =>
  writeNpy(join(dir, `${name}.npy`), { dims, data });

const model = await GradientModel.load(join(packageRoot, 'models', 'fmnist-cnn.onnx'), { batchSize: 100 });
const fgsm = new FGSM({ eps: 0.1 });
const fitClean = rows(0, 2000);
const fitLabels = test.labels.slice(0, 2000);
const sourceRows = [...Array(400).keys()];
const attackedFit = await fgsm.run(model, gatherImages(fitClean, sourceRows), {
  labels: Int32Array.from(sourceRows, (i) => fitLabels[i]!),
});
const hit = [...attackedFit.success.keys()].filter((i) => attackedFit.success[i]);
const fitAttacked = gatherImages({ data: attackedFit.adv, dims: attackedFit.dims }, hit);
const queryClean = rows(8000, 8200);
const queryAttack = await fgsm.run(model, queryClean, { labels: test.labels.slice(8000, 8200) });
const queries: ImageBatch = {
  data: Float32Array.from([...queryClean.data, ...queryAttack.adv]),
  dims: [400, 1, 28, 28],
};
save('fit_images', fitClean.dims, Float32Array.from(fitClean.data));
save('fit_labels', [2000], Int32Array.from(fitLabels));
save('fit_attacked', fitAttacked.dims, fitAttacked.data);
save('queries', queries.dims, queries.data);
const fit = { clean: { images: fitClean, labels: fitLabels }, attacked: { fgsm: fitAttacked } };

const mahalanobis = new MahalanobisDetector(model, { magnitudes: [0, 0.002], regressionImages: 300 });
await mahalanobis.fit(fit);
for (const eps of [0, 0.002]) {
  const s = await mahalanobis.layerScores(queries, eps);
  save(`ours_mahalanobis_${eps}`, [s.rows, s.cols], s.data);
}
// The regression on fixed rows: clean fit rows 0-299 and the attacked fit images, layer scores at eps 0.
const regressionRows = await mahalanobis.layerScores(
  { data: Float32Array.from([...rows(0, 300).data, ...fitAttacked.data]), dims: [300 + hit.length, 1, 28, 28] },
  0,
);
const y = Uint8Array.from({ length: regressionRows.rows }, (_, i) => (i < 300 ? 0 : 1));
const cv = fitLogisticCV(regressionRows, y);
save('regression_x', [regressionRows.rows, regressionRows.cols], regressionRows.data);
save('regression_y', [y.length], Int32Array.from(y));

const lid = new LidDetector(model.classifier, { regressionImages: 300 });
await lid.fit(fit);
const lids = await lid.lidsWithinBatches(queries);
save('ours_lid', [lids.rows, lids.cols], lids.data);

const squeeze = new FeatureSqueezingDetector(model);
await squeeze.fit(fit);
save('ours_squeeze', [400], await squeeze.score(queries));

writeFileSync(
  join(dir, 'ours.json'),
  `${JSON.stringify(
    {
      taps: model.taps.map((t) => ({ tensor: t.tensor, shape: t.shape })),
      mahalanobis: mahalanobis.settings(),
      regression: { C: cv.C, Cs: cv.Cs, scores: cv.scores, weights: Array.from(cv.weights), bias: cv.bias },
      lid: lid.settings(),
    },
    null,
    2,
  )}\n`,
);
await model.release();
process.stderr.write(`wrote ${dir}: ${hit.length} attacked fit images, 400 queries\n`);
