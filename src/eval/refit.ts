// Refitting a bank as it was fitted, with one setting changed (k, candidates, the taps): the fit
// rows, attack families, images per class, classes and seed all come from the bank's own record,
// so buildBank regenerates the same attacked training images and (at the bank's own setting) the
// same fingerprints.
import { attackNames, attackSettings, createAttack } from '../attacks/index.js';
import type { AttackName, AttackSettings } from '../attacks/index.js';
import { GradientModel } from '../autodiff/index.js';
import { buildBank } from '../bank/index.js';
import type {
  AttackFamily,
  AttackMode,
  BuildProgress,
  DataRecord,
  FingerprintBank,
  ScreenSettings,
} from '../bank/index.js';
import type { ImageBatch, TapSpec } from '../model/index.js';

export interface RefitOptions {
  /** The ONNX model the bank was fitted on. */
  model: string | Uint8Array;
  bank: FingerprintBank;
  /** The whole data set the bank records its fit rows in, and its labels. */
  data: ImageBatch;
  labels: Int32Array;
  /** Screen settings to change; the rest are the bank's. */
  screen?: Partial<ScreenSettings>;
  /** Taps to use instead of the bank's. */
  taps?: TapSpec;
  /**
   * Where attacked images came from. Banks do not record it (nfp fit's default is 'mixed', nfp
   * demo fits 'untargeted'), so the caller says; default 'mixed'.
   */
  attackMode?: AttackMode;
  onProgress?: (progress: BuildProgress) => void;
}

const settingKeys: ReadonlyArray<keyof AttackSettings> = [
  'eps',
  'norm',
  'steps',
  'stepSize',
  'restarts',
  'earlyStop',
  'queries',
  'binarySteps',
];

/** An attack family's recorded settings as typed AttackSettings (the header keeps them as plain JSON). */
function recordedSettings(name: string, value: unknown): AttackSettings {
  if (typeof value !== 'object' || value === null)
    throw new RangeError(`The bank records no settings object for attack family '${name}'`);
  const out: Record<string, unknown> = {};
  for (const key of settingKeys) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
  }
  return out as AttackSettings;
}

/** The attack families the bank was fitted with, rebuilt from its record. */
export function recordedFamilies(bank: FingerprintBank): AttackFamily[] {
  const { families, fit } = bank.header;
  return families.map((name) => {
    if (!(attackNames as readonly string[]).includes(name))
      throw new RangeError(
        `Cannot rebuild attack family '${name}' for a refit: it is not one of ${attackNames.join(', ')}`,
      );
    const settings = attackSettings(name as AttackName, recordedSettings(name, fit.attacks[name]));
    return { name, attack: createAttack(name as AttackName, settings), settings: { ...settings } };
  });
}

/** The bank's data record, checked against the data set given: the fit rows must be there. */
export function recordedData(bank: FingerprintBank, digest: string): DataRecord {
  const record = bank.header.fit.data;
  if (record === undefined)
    throw new RangeError(
      'The bank records no fit data (it was fitted by a program that kept no record of its rows): its fit rows ' +
        'cannot be found',
    );
  if (record.sha256 !== digest)
    throw new RangeError(
      `The data is not what the bank was fitted on ` +
        `(${record.source}, ${record.images} images, sha256 ${record.sha256.slice(0, 12)}…)`,
    );
  return record;
}

export async function refitBank(options: RefitOptions): Promise<FingerprintBank> {
  const { bank } = options;
  const h = bank.header;
  const record = h.fit.data;
  if (record === undefined) throw new RangeError('The bank records no fit data: its fit rows cannot be found');
  const [from, to] = record.fit;
  const per = options.data.data.length / options.data.dims[0]!;
  const images: ImageBatch = {
    data: options.data.data.subarray(from * per, to * per),
    dims: [to - from, ...options.data.dims.slice(1)],
  };
  const screen: ScreenSettings = {
    candidates: h.fit.candidates,
    k: h.fit.k,
    pMax: h.fit.pMax,
    dMin: h.fit.dMin,
    topK: h.fit.topK,
    minFingerprints: h.fit.minFingerprints,
    maxCorrelation: h.fit.maxCorrelation,
    ...options.screen,
  };
  const model = await GradientModel.load(options.model, {
    taps: options.taps ?? bank.tapRequests,
    inputShape: h.model.inputShape,
    batchSize: 128,
  });
  try {
    return await buildBank({
      model,
      images,
      labels: options.labels.slice(from, to),
      families: recordedFamilies(bank),
      classes: h.classes.flatMap((c, i) => (c.fitted ? [i] : [])),
      ...(h.fit.cleanPerClass !== undefined ? { cleanPerClass: h.fit.cleanPerClass } : {}),
      ...(h.fit.attackedPerClass !== undefined ? { attackedPerClass: h.fit.attackedPerClass } : {}),
      attackMode: options.attackMode ?? 'mixed',
      screen,
      ...(h.fit.seed !== undefined ? { seed: h.fit.seed } : {}),
      data: record,
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    });
  } finally {
    await model.release();
  }
}

/** Whether two banks hold the same fingerprints (same neurons, same statistics), e.g. a refit and its original. */
export function sameFingerprints(a: FingerprintBank, b: FingerprintBank): boolean {
  const equal = (x: ArrayLike<number>, y: ArrayLike<number>) => {
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
  };
  return (
    a.header.k === b.header.k &&
    a.header.neurons === b.header.neurons &&
    equal(a.arrays.indices, b.arrays.indices) &&
    equal(a.arrays.mu0, b.arrays.mu0) &&
    equal(a.arrays.mu1, b.arrays.mu1)
  );
}
