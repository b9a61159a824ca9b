// A FingerprintBank of random fingerprints over a classifier's taps (two families, 'pgd' and 'cw'): what the
// detect() tests and the detect benchmark score. Scores do not depend on what the fingerprints are, so a
// random bank exercises the real paths and costs.
import { FingerprintBank } from '../../src/bank/index.js';
import type { FittedClass } from '../../src/bank/index.js';
import type { Classifier } from '../../src/model/index.js';
import type { TestRandom } from './random.js';

/** `perClass(c)` random k-subsets for each class c (0: the class has none), means and spreads at random. */
export function randomFingerprintBank(
  rnd: TestRandom,
  classifier: Classifier,
  options: { k: number; perClass: (c: number) => number },
): FingerprintBank {
  const { k } = options;
  const classes = new Map<number, FittedClass>();
  let most = 0;
  for (let c = 0; c < classifier.classes; c++) {
    const n = options.perClass(c);
    most = Math.max(most, n);
    if (n === 0) continue;
    const sd = (len: number) => Float32Array.from({ length: len }, () => rnd.uniform(0.1, 1));
    classes.set(c, {
      fingerprints: {
        indices: rnd.subsets(n, k, classifier.neurons),
        mu0: rnd.floats(n),
        sd0: sd(n),
        mu1: rnd.floats(2 * n),
        sd1: sd(2 * n),
        effect: new Float32Array(n).fill(2),
        passed: n,
      },
      clean: 0,
      attacked: [0, 0],
    });
  }
  return FingerprintBank.fromClasses(
    {
      model: {
        sha256: classifier.sha256,
        source: classifier.source,
        inputShape: classifier.inputShape,
        classes: classifier.classes,
      },
      taps: classifier.taps.map((t) => ({ tensor: t.tensor, size: t.size, ...(t.sample ? { sample: t.sample } : {}) })),
      neurons: classifier.neurons,
      k,
      families: ['pgd', 'cw'],
      fit: {
        candidates: 0,
        k,
        pMax: 1e-3,
        dMin: 1.5,
        topK: most,
        minFingerprints: 0,
        maxCorrelation: 1,
        attacks: {},
      },
      created: new Date().toISOString(),
    },
    classes,
  );
}
