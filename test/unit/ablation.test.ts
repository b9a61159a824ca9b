// Ablations: parsing `--ablate` (values, errors that name what is wrong), cutting a bank to its top
// K fingerprints (the same choice a fit with --top K makes from the same screen, with one attack
// family and with two sharing the budget), and the ablation section of a report.
import { expect } from 'chai';
import { InvalidArgumentError } from 'commander';

import { SeededRandom } from '../../src/random.js';
import { FingerprintBank, fitClass } from '../../src/bank/index.js';
import type { ActivationSet, ClassFingerprints, ScreenSettings } from '../../src/bank/index.js';
import { parseAblation } from '../../src/cli/parse.js';
import { ablationFigures, ablationMarkdown } from '../../src/eval/ablation-report.js';
import { AblationError, checkAblations, keepTopFingerprints } from '../../src/eval/index.js';
import type { Ablation } from '../../src/eval/index.js';
import { TestRandom } from '../reference/random.js';

function parseError(value: string, previous = parseAblation('draws=5')): string {
  try {
    parseAblation(value, previous);
  } catch (error) {
    expect(error).to.be.instanceOf(InvalidArgumentError);
    return (error as Error).message;
  }
  throw new Error(`expected '${value}' to be refused`);
}

describe('--ablate parsing', () => {
  it('reads numbers for draws, top, k and candidates and tap sets for taps, one parameter per --ablate', () => {
    let specs = parseAblation('draws=1,5,25,100');
    specs = parseAblation('top= 50, 200 ,2000', specs);
    specs = parseAblation('taps=auto;/features/pool3/MaxPool_output_0,logits', specs);
    specs = parseAblation('k=1,3,10', specs);
    specs = parseAblation('candidates=1000', specs);
    expect(specs).to.deep.equal([
      { parameter: 'draws', values: [1, 5, 25, 100] },
      { parameter: 'top', values: [50, 200, 2000] },
      { parameter: 'taps', values: ['auto', ['/features/pool3/MaxPool_output_0', 'logits']] },
      { parameter: 'k', values: [1, 3, 10] },
      { parameter: 'candidates', values: [1000] },
    ]);
  });

  it('refuses malformed values with a message that says what is wrong', () => {
    expect(parseError('draws')).to.match(
      /expected <parameter>=<values>.*parameters: draws, top, k, candidates, correlation, taps/,
    );
    expect(parseError('m=1,5')).to.match(
      /unknown parameter 'm' \(known: draws, top, k, candidates, correlation, taps\)/,
    );
    expect(parseError('draws=1,2')).to.match(/draws is ablated twice/);
    expect(parseError('top=')).to.match(/at least one value after 'top='/);
    expect(parseError('top=5,,7')).to.match(/empty value 2 in 'top=5,,7'/);
    expect(parseError('top=0,5')).to.match(/positive integers for top but received '0'/);
    expect(parseError('k=2.5')).to.match(/positive integers for k but received '2.5'/);
    expect(parseError('candidates=1e4')).to.match(/positive integers for candidates but received '1e4'/);
    expect(parseError('top=50,50')).to.match(/distinct values for top but '50' repeats/);
    expect(parseError('taps=auto;;logits')).to.match(/empty value 2/);
    expect(parseError('taps= , ')).to.match(/'auto' or comma-separated layer names/);
  });
});

const screen = (topK: number): ScreenSettings => ({
  candidates: 3000,
  k: 2,
  pMax: 1e-3,
  dMin: 1.5,
  topK,
  minFingerprints: 5,
  maxCorrelation: 1,
});

/** Clean activations and attacked ones per family; family f shifts its own ten neurons. */
function classData(seed: number, shifts: number[]): { clean: ActivationSet; families: ActivationSet[] } {
  const rnd = new TestRandom(seed);
  const neurons = 60,
    rows = 120;
  const make = (shift: (j: number) => number) => ({
    acts: Float32Array.from({ length: rows * neurons }, (_, i) => rnd.normal() + shift(i % neurons)),
    rows,
  });
  return {
    clean: make(() => 0),
    families: shifts.map((s, f) => make((j) => (j >= 10 * f && j < 10 * (f + 1) ? s : 0))),
  };
}

function bankOf(
  fingerprints: ClassFingerprints[],
  families: string[],
  topK: number,
  attacked: number[],
): FingerprintBank {
  const fitted = new Map(fingerprints.map((fp, c) => [c, { fingerprints: fp, clean: 120, attacked }]));
  return FingerprintBank.fromClasses(
    {
      model: {
        sha256: 'ab'.repeat(32),
        source: 'synthetic.onnx',
        inputShape: [1, 28, 28],
        classes: fingerprints.length,
      },
      taps: [{ tensor: 'features', size: 60 }],
      neurons: 60,
      k: 2,
      families,
      fit: { ...screen(topK), attacks: Object.fromEntries(families.map((f) => [f, { eps: 0.1, steps: 5 }])), seed: 1 },
      created: '2026-01-01T00:00:00.000Z',
    },
    fitted,
  );
}

describe('top K of a bank', () => {
  for (const shifts of [[2.5], [6, 2]]) {
    it(
      `keeps what a fit with --top K keeps ` +
        `(${shifts.length} attack ${shifts.length === 1 ? 'family' : 'families sharing the budget'})`,
      async () => {
        const families = shifts.map((_, f) => `f${f}`);
        const data = [classData(3, shifts), classData(4, shifts)];
        const fitTop = (topK: number) =>
          Promise.all(data.map((d, c) => fitClass(d.clean, d.families, 60, screen(topK), new SeededRandom(10 + c))));
        const big = bankOf(
          await fitTop(200),
          families,
          200,
          shifts.map(() => 120),
        );
        expect(big.header.classes.map((c) => c.count).every((n) => n === 200)).to.equal(true);
        for (const top of [10, 50]) {
          const small = bankOf(
            await fitTop(top),
            families,
            top,
            shifts.map(() => 120),
          );
          const cut = keepTopFingerprints(big, top);
          expect(cut.header.fit.topK).to.equal(top);
          expect(cut.header.calibration).to.equal(undefined);
          for (const key of ['indices', 'mu0', 'sd0', 'mu1', 'sd1', 'effect'] as const)
            expect([...cut.arrays[key]], `${key}, top ${top}`).to.deep.equal([...small.arrays[key]]);
        }
        expect(keepTopFingerprints(big, 200).fingerprints).to.equal(400);
        expect(() => keepTopFingerprints(big, 201)).to.throw(
          RangeError,
          /at most the 200 fingerprints per class.*refit/,
        );
      },
    );
  }

  it('checks a request against the bank before anything runs', () => {
    const bank = bankOf([], ['pgd'], 200, [120]);
    expect(() => checkAblations(bank, [{ parameter: 'draws', values: [5] }], '00'.repeat(32))).to.throw(
      AblationError,
      /not calibrated/,
    );
    const calibrated = bank.withCalibration({
      fpr: 0.05,
      draws: 25,
      combine: 'max',
      global: 1,
      perClass: [],
      images: 10,
      drawsPerImage: 10,
    });
    expect(() => checkAblations(calibrated, [{ parameter: 'top', values: [5] }], '00'.repeat(32))).to.throw(
      AblationError,
      /records no fit data/,
    );
    const recorded = new FingerprintBank(
      {
        ...calibrated.header,
        fit: { ...calibrated.header.fit, data: { source: 'x', sha256: '11'.repeat(32), images: 100, fit: [0, 80] } },
      },
      calibrated.arrays,
    );
    expect(() => checkAblations(recorded, [{ parameter: 'top', values: [5] }], '00'.repeat(32))).to.throw(
      AblationError,
      /not what the bank was fitted on \(x, 100 images/,
    );
    expect(() => checkAblations(recorded, [{ parameter: 'top', values: [5] }], '11'.repeat(32))).to.throw(
      AblationError,
      /no calibration rows/,
    );
    const full = new FingerprintBank(
      {
        ...recorded.header,
        fit: { ...recorded.header.fit, data: { ...recorded.header.fit.data!, calibration: [80, 100] } },
      },
      recorded.arrays,
    );
    expect(() => checkAblations(full, [{ parameter: 'top', values: [50, 500] }], '11'.repeat(32)))
      .to.throw(AblationError, /at most 200 fingerprints per class/)
      .with.property('setting', 'top=500');
    expect(() => checkAblations(full, [{ parameter: 'k', values: [61] }], '11'.repeat(32)))
      .to.throw(AblationError, /60 tapped neurons/)
      .with.property('setting', 'k=61');
    expect(() =>
      checkAblations(
        full,
        [
          { parameter: 'draws', values: [1, 100] },
          { parameter: 'top', values: [50] },
          { parameter: 'k', values: [1, 3] },
        ],
        '11'.repeat(32),
      ),
    ).not.to.throw();
    const odd = new FingerprintBank(
      { ...full.header, families: ['jsma'], fit: { ...full.header.fit, attacks: { jsma: {} } } },
      full.arrays,
    );
    expect(() => checkAblations(odd, [{ parameter: 'candidates', values: [100] }], '11'.repeat(32))).to.throw(
      AblationError,
      /Cannot rebuild attack family 'jsma'/,
    );
  });
});

describe('ablations in a report', () => {
  const row = (value: number, own: boolean, auc: number, smallestClass = 100) => ({
    value,
    label: String(value),
    own,
    fingerprints: 100,
    neurons: 60,
    draws: 25,
    smallestClass,
    fprAtThreshold: 0.05,
    seconds: 1,
    attacks: [
      { attack: 'pgd', adversarial: 10, auc, tprAt5: 0.5, tprAtThreshold: 0.4, aucMean: auc - 0.01, aucStd: 0.002 },
    ],
  });
  const ablations: Ablation[] = [
    { parameter: 'draws', refit: false, detectors: 3, rows: [row(1, false, 0.8), row(25, true, 0.95)] },
    {
      parameter: 'k',
      refit: true,
      detectors: 3,
      rows: [row(1, false, 0.9), { ...row(3, true, 0.95), reproducesBank: true }],
    },
    { parameter: 'top', refit: false, detectors: 3, rows: [row(10, false, 0.9, 10), row(100, true, 0.95)] },
  ];

  it('writes a table and a line figure per parameter', () => {
    const md = ablationMarkdown(ablations, 'FPR 0.05').join('\n');
    expect(md).to.match(/## Ablations/);
    expect(md).to.match(/### draws: fingerprints drawn per input \(m\), no refit/);
    expect(md).to.match(/\| 25 \* \| 100 \| 60 \| - \| 0\.050 \| 0\.9500 \| 0\.500 \| 1 \|/);
    expect(md).to.match(/\| 1 \| 0\.7900 \(0\.0020\) \|/);
    expect(md).to.match(/refit at the bank's own setting reproduces the bank exactly/);
    expect(md).to.match(/!\[ablation-k\]\(figures\/ablation-k\.png\)/);
    expect(md).to.match(/Some class keeps fewer fingerprints than the draws per input at top=10 \(10 < 25 draws\)/);
    expect(md.match(/Some class keeps fewer/g)).to.have.length(1);
    expect(ablationMarkdown([], 'x')).to.deep.equal([]);
    const figures = ablationFigures(ablations);
    expect(Object.keys(figures)).to.deep.equal(['ablation-draws', 'ablation-k', 'ablation-top']);
    expect(JSON.stringify(figures['ablation-draws'])).to.match(/"type":"log"/);
  });
});
