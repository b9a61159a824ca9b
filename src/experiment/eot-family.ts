// The adaptive attack family of a refit (`nfp fit --eot-against bank.nfp`, docs/security.md, *Adaptive
// refitting*): AdaptivePGD against the expectation over the draws of an earlier calibrated bank of the
// same model, the attack that evades the random draw. A bank fitted with this family screens for the
// neurons that attack moves, so the attacker's next round has to move other neurons or fewer of them.
import { createHash } from 'node:crypto';
import { basename } from 'node:path';

import { AdaptivePGD, DetectorTerm } from '../attacks/adaptive/index.js';
import type { GradientModel } from '../autodiff/index.js';
import { encodeBank, readBank } from '../bank/index.js';
import type { AttackFamily, FingerprintBank } from '../bank/index.js';
import { bankThresholds, termOptions } from './adaptive.js';
import { ExperimentError } from './errors.js';

export interface EotFamilyOptions {
  /**
   * The banks attacked, one family each: paths or banks in memory, calibrated, of the same model and
   * taps. Refitting round after round against each earlier round's bank keeps what every round learnt.
   */
  banks: Array<string | FingerprintBank>;
  /** Weight of the bank's expected score against the margin (default 0.1, the attacker's best in docs/security.md). */
  weight?: number;
  /** Gradient steps (default 100). */
  steps?: number;
}

/** The name of the family against the i-th bank (from 0): 'eot', then 'eot2', 'eot3', ... */
export function eotFamilyName(i: number): string {
  return i === 0 ? 'eot' : `eot${i + 1}`;
}

export const defaultEotFamily = { weight: 0.1, steps: 100 } as const;

/** The 'eot' families against `options.banks` at L-inf `eps`, for a fit of `model` (its taps must be theirs). */
export function eotFamilies(options: EotFamilyOptions, model: GradientModel, eps: number): AttackFamily[] {
  return options.banks.map((bank, i) => eotFamily(bank, eotFamilyName(i), options, model, eps));
}

function eotFamily(
  bank: string | FingerprintBank,
  name: string,
  options: EotFamilyOptions,
  model: GradientModel,
  eps: number,
): AttackFamily {
  const prior = typeof bank === 'string' ? readPrior(bank) : bank;
  checkPrior(prior, model);
  const calibration = prior.header.calibration!;
  const weight = options.weight ?? defaultEotFamily.weight;
  const steps = options.steps ?? defaultEotFamily.steps;
  const term = DetectorTerm.expectation(
    prior,
    termOptions(prior, calibration.draws, calibration.combine ?? 'max', bankThresholds(prior)),
  );
  // The fused step (one gradient run per step, 3-5x faster) where the term allows it: k = 1, 'max'.
  const fused = prior.header.k === 1 && (calibration.combine ?? 'max') === 'max';
  const attack = new AdaptivePGD(term, { eps, steps, weight, fused });
  return {
    name,
    attack,
    settings: {
      eps,
      steps,
      weight,
      fused,
      against: {
        ...(typeof bank === 'string' ? { file: basename(bank) } : {}),
        sha256: createHash('sha256').update(encodeBank(prior)).digest('hex'),
        families: prior.header.families,
      },
    },
  };
}

function readPrior(path: string): FingerprintBank {
  try {
    return readBank(path);
  } catch (error) {
    throw new ExperimentError(`Cannot read --eot-against ${path}: ${(error as Error).message}`, '--eot-against');
  }
}

/** The bank must score this model's tapped activations as they are, at thresholds it was calibrated for. */
function checkPrior(prior: FingerprintBank, model: GradientModel): void {
  const h = prior.header;
  const fail = (why: string) => {
    throw new ExperimentError(`Expected --eot-against to be ${why}`, '--eot-against');
  };
  if (h.calibration === undefined) fail('a calibrated bank (nfp bank calibrate) but it has no thresholds');
  if (h.model.sha256 !== model.classifier.sha256) fail('a bank of this model but it was fitted on another');
  const taps = model.taps;
  const same =
    h.neurons === model.neurons &&
    h.taps.length === taps.length &&
    h.taps.every(
      (t, i) =>
        t.tensor === taps[i]!.tensor && t.size === taps[i]!.size && t.sample?.digest === taps[i]!.sample?.digest,
    );
  if (!same)
    fail(
      `a bank over the fit's taps (${model.taps.length} layers, ${model.neurons} neurons) but it taps ` +
        `${h.taps.length} layers, ${h.neurons} neurons (fit with the same --taps and --seed)`,
    );
}
