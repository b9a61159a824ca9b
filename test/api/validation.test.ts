// A corpus of malformed calls at the N-API boundary: each must throw (or reject with) a
// TypeError/RangeError that names the argument at fault, and the process must survive them all.
import { expect } from 'chai';

import { Bank, screen, screenSync, setBackend, setThreads, subsetMeans, subsetMeansSync } from '../../src/index.js';
import type { BankSpec } from '../../src/index.js';

type Options = Record<string, unknown>;
interface Case {
  name: string;
  call: () => unknown;
  argument: string;
}

const badTypedArrays: Array<[string, unknown]> = [
  ['undefined', undefined],
  ['null', null],
  ['a number', 3],
  ['a string', 'acts'],
  ['an Array', [1, 2, 3]],
  ['a Float64Array', new Float64Array(12)],
  ['an Int32Array', new Int32Array(12)],
  ['a Uint8Array', new Uint8Array(48)],
  ['an ArrayBuffer', new ArrayBuffer(48)],
  ['a plain object', { length: 12 }],
];
const badDims: Array<[string, unknown]> = [
  ['undefined', undefined],
  ['-1', -1],
  ['1.5', 1.5],
  ['NaN', NaN],
  ['Infinity', Infinity],
  ['a string', '3'],
  ['2^33', 2 ** 33],
  ['null', null],
  ['a bigint', 3n],
  ['an object', {}],
];

function validBank(): BankSpec {
  return {
    neurons: 4,
    k: 2,
    families: 2,
    indices: Uint32Array.from([0, 1, 2, 3, 1, 3]),
    mu0: Float32Array.from([0, 0, 0]),
    sd0: Float32Array.from([1, 1, 1]),
    mu1: Float32Array.from([1, 1, 1, 2, 2, 2]),
    sd1: Float32Array.from([1, 1, 1, 1, 1, 1]),
  };
}

function corpus(): Case[] {
  const cases: Case[] = [];
  const add = (name: string, argument: string, call: () => unknown) => cases.push({ name, argument, call });

  // subsetMeans / subsetMeansSync
  const sm = (): Options => ({
    acts: new Float32Array(12),
    rows: 3,
    neurons: 4,
    subsets: Uint32Array.from([0, 1, 2, 3]),
    k: 2,
  });
  for (const [fnName, fn] of [
    ['subsetMeans', subsetMeans],
    ['subsetMeansSync', subsetMeansSync],
  ] as const) {
    const call = (o: Options) => () => fn(o as never);
    for (const arg of ['acts', 'subsets'])
      for (const [what, v] of badTypedArrays) add(`${fnName} ${arg} = ${what}`, arg, call({ ...sm(), [arg]: v }));
    for (const arg of ['rows', 'neurons', 'k'])
      for (const [what, v] of badDims) add(`${fnName} ${arg} = ${what}`, arg, call({ ...sm(), [arg]: v }));
    add(`${fnName} neurons = 0`, 'neurons', call({ ...sm(), neurons: 0 }));
    add(`${fnName} k = 0`, 'k', call({ ...sm(), k: 0 }));
    add(`${fnName} acts too short`, 'acts', call({ ...sm(), acts: new Float32Array(11) }));
    add(`${fnName} acts too long`, 'acts', call({ ...sm(), acts: new Float32Array(13) }));
    add(`${fnName} rows x neurons overflows`, 'acts', call({ ...sm(), rows: 2 ** 32 - 1, neurons: 2 ** 32 - 1 }));
    add(`${fnName} subsets not a multiple of k`, 'subsets', call({ ...sm(), subsets: Uint32Array.from([0, 1, 2]) }));
    add(`${fnName} index = N`, 'subsets', call({ ...sm(), subsets: Uint32Array.from([0, 4]) }));
    add(`${fnName} index = 2^32-1`, 'subsets', call({ ...sm(), subsets: Uint32Array.from([0xffffffff, 0]) }));
    add(`${fnName} NaN activation`, 'acts', call({ ...sm(), acts: new Float32Array(12).fill(NaN) }));
    add(`${fnName} Inf activation`, 'acts', call({ ...sm(), acts: new Float32Array(12).fill(-Infinity) }));
    add(`${fnName} no options`, 'options', () => (fn as unknown as () => unknown)());
    add(`${fnName} options = array`, 'options', call([] as unknown as Options));
    add(`${fnName} options = string`, 'options', () => (fn as unknown as (x: string) => unknown)('acts'));
  }

  // screen / screenSync
  const sc = (): Options => ({
    clean: new Float32Array(12).map((_, i) => i),
    cleanRows: 3,
    attacked: new Float32Array(8).map((_, i) => -i),
    attackedRows: 2,
    neurons: 4,
    candidates: Uint32Array.from([0, 1, 2, 3]),
    k: 2,
  });
  for (const [fnName, fn] of [
    ['screen', screen],
    ['screenSync', screenSync],
  ] as const) {
    const call = (o: Options) => () => fn(o as never);
    for (const arg of ['clean', 'attacked', 'candidates'])
      for (const [what, v] of badTypedArrays.slice(0, 7))
        add(`${fnName} ${arg} = ${what}`, arg, call({ ...sc(), [arg]: v }));
    for (const arg of ['cleanRows', 'attackedRows', 'neurons', 'k'])
      for (const [what, v] of badDims.slice(0, 7)) add(`${fnName} ${arg} = ${what}`, arg, call({ ...sc(), [arg]: v }));
    add(`${fnName} one clean row`, 'cleanRows', call({ ...sc(), clean: new Float32Array(4), cleanRows: 1 }));
    add(
      `${fnName} one attacked row`,
      'attackedRows',
      call({ ...sc(), attacked: new Float32Array(4), attackedRows: 1 }),
    );
    add(`${fnName} clean length`, 'clean', call({ ...sc(), clean: new Float32Array(13) }));
    add(`${fnName} attacked length`, 'attacked', call({ ...sc(), attacked: new Float32Array(7) }));
    add(`${fnName} candidate index = N`, 'candidates', call({ ...sc(), candidates: Uint32Array.from([4, 0]) }));
    add(`${fnName} candidates not a multiple of k`, 'candidates', call({ ...sc(), candidates: Uint32Array.from([1]) }));
    add(`${fnName} test = 'z'`, 'test', call({ ...sc(), test: 'z' }));
    add(`${fnName} test = 1`, 'test', call({ ...sc(), test: 1 }));
    add(`${fnName} NaN in clean`, 'clean', call({ ...sc(), clean: new Float32Array(12).fill(NaN) }));
  }

  // Bank constructor
  const bank = (o: Options) => () => new Bank(o as unknown as BankSpec);
  for (const arg of ['indices', 'mu0', 'sd0', 'mu1', 'sd1'])
    for (const [what, v] of badTypedArrays.slice(0, 7))
      add(`Bank ${arg} = ${what}`, arg, bank({ ...validBank(), [arg]: v }));
  for (const arg of ['neurons', 'k', 'families'])
    for (const [what, v] of badDims.slice(0, 7)) add(`Bank ${arg} = ${what}`, arg, bank({ ...validBank(), [arg]: v }));
  add('Bank families = 0', 'families', bank({ ...validBank(), families: 0 }));
  add('Bank k = 0', 'k', bank({ ...validBank(), k: 0 }));
  add('Bank mu0 length', 'mu0', bank({ ...validBank(), mu0: new Float32Array(2) }));
  add('Bank sd0 length', 'sd0', bank({ ...validBank(), sd0: new Float32Array(4).fill(1) }));
  add('Bank mu1 length (families)', 'mu1', bank({ ...validBank(), mu1: new Float32Array(3) }));
  add('Bank sd1 length', 'sd1', bank({ ...validBank(), sd1: new Float32Array(9).fill(1) }));
  add('Bank index = N', 'indices', bank({ ...validBank(), indices: Uint32Array.from([0, 1, 2, 4, 1, 3]) }));
  add('Bank indices not a multiple of k', 'indices', bank({ ...validBank(), indices: Uint32Array.from([0, 1, 2]) }));
  for (const v of [0, -1, NaN, Infinity])
    add(`Bank sd0 = ${v}`, 'sd0', bank({ ...validBank(), sd0: Float32Array.from([1, v, 1]) }));
  for (const v of [0, -0.5, NaN, -Infinity])
    add(`Bank sd1 = ${v}`, 'sd1', bank({ ...validBank(), sd1: Float32Array.from([1, 1, 1, 1, 1, v]) }));
  for (const v of [NaN, Infinity]) {
    add(`Bank mu0 = ${v}`, 'mu0', bank({ ...validBank(), mu0: Float32Array.from([v, 0, 0]) }));
    add(`Bank mu1 = ${v}`, 'mu1', bank({ ...validBank(), mu1: Float32Array.from([1, 1, 1, 2, 2, v]) }));
  }
  add('Bank called without new', 'Bank', () => (Bank as unknown as (o: BankSpec) => unknown)(validBank()));

  // detectScores / scoreGradient on a valid bank
  const b = new Bank(validBank());
  const dr = (): Options => ({ acts: new Float32Array(8), rows: 2, draws: Uint32Array.from([0, 1, 2, 0]) });
  const methods = [
    ['detectScores', (o: Options) => b.detectScores(o as never)],
    ['detectScoresSync', (o: Options) => b.detectScoresSync(o as never)],
    ['scoreGradient', (o: Options) => b.scoreGradient(o as never)],
    ['scoreGradientSync', (o: Options) => b.scoreGradientSync(o as never)],
  ] as const;
  for (const [name, fn] of methods) {
    for (const arg of ['acts', 'draws'])
      for (const [what, v] of badTypedArrays.slice(0, 6))
        add(`${name} ${arg} = ${what}`, arg, () => fn({ ...dr(), [arg]: v }));
    for (const [what, v] of badDims.slice(0, 6)) add(`${name} rows = ${what}`, 'rows', () => fn({ ...dr(), rows: v }));
    add(`${name} acts rows mismatch`, 'acts', () => fn({ ...dr(), acts: new Float32Array(12) }));
    add(`${name} draws not a multiple of rows`, 'draws', () => fn({ ...dr(), draws: Uint32Array.from([0, 1, 2]) }));
    add(`${name} draw id = count`, 'draws', () => fn({ ...dr(), draws: Uint32Array.from([0, 1, 3, 0]) }));
    add(`${name} draws with zero rows`, 'draws', () => fn({ ...dr(), acts: new Float32Array(0), rows: 0 }));
    add(`${name} combine = 'sum'`, 'combine', () => fn({ ...dr(), combine: 'sum' }));
    add(`${name} NaN activation`, 'acts', () => fn({ ...dr(), acts: new Float32Array(8).fill(NaN) }));
  }
  add('detectScores means = 1', 'means', () => b.detectScoresSync({ ...dr(), means: 1 } as never));
  add('detectScores terms = "yes"', 'terms', () => b.detectScoresSync({ ...dr(), terms: 'yes' } as never));

  // runtime settings
  for (const [what, v] of [
    ['-1', -1],
    ['1.5', 1.5],
    ['a string', '2'],
    ['2000', 2000],
    ['NaN', NaN],
    ['undefined', undefined],
  ] as const) {
    add(`setThreads(${what})`, 'threads', () => setThreads(v as never));
  }
  for (const v of ['gpu', '', 'CPU', 3, undefined])
    add(`setBackend(${String(v)})`, 'backend', () => setBackend(v as never));
  return cases;
}

describe('N-API boundary validation', () => {
  const cases = corpus();

  it('has a corpus of at least 200 malformed calls', () => {
    expect(cases.length).to.be.at.least(200);
    console.log(`      (${cases.length} malformed calls)`);
  });

  it('rejects every malformed call with a TypeError or RangeError naming the argument', async () => {
    const failures: string[] = [];
    for (const c of cases) {
      let error: unknown;
      try {
        const r = c.call();
        if (r instanceof Promise) await r;
      } catch (e) {
        error = e;
      }
      if (!(error instanceof TypeError || error instanceof RangeError)) {
        failures.push(
          `${c.name}: expected TypeError/RangeError, got ${error === undefined ? 'no error' : String(error)}`,
        );
        continue;
      }
      const named = error.message.includes(c.argument) || (error as { argument?: string }).argument === c.argument;
      if (!named) failures.push(`${c.name}: message does not name '${c.argument}': ${error.message}`);
    }
    expect(failures, failures.join('\n')).to.deep.equal([]);
  });

  it('tags kernel errors with a code and the argument', () => {
    try {
      subsetMeansSync({ acts: new Float32Array(4), rows: 1, neurons: 4, subsets: Uint32Array.from([9]), k: 1 });
      expect.fail('should have thrown');
    } catch (e) {
      expect(e).to.be.instanceOf(RangeError);
      expect(e).to.include({ code: 'NFP_OUT_OF_RANGE', argument: 'subsets' });
      expect((e as Error).message).to.equal('Expected values < 4 for subsets but received 9 at subsets[0]');
    }
  });

  it('still computes correctly after the whole corpus', () => {
    expect(
      Array.from(
        subsetMeansSync({
          acts: Float32Array.from([1, 2, 3, 4]),
          rows: 1,
          neurons: 4,
          subsets: Uint32Array.from([1, 3]),
          k: 2,
        }),
      ),
    ).to.deep.equal([3]);
  });
});
