// Attacks by name, for the CLI and experiments: one settings object, each attack taking what it uses.
import type { Attack } from './attack.js';
import { APGD } from './apgd.js';
import { BIM } from './bim.js';
import { CarliniWagnerL2 } from './cw.js';
import { DeepFool } from './deepfool.js';
import { FGSM } from './fgsm.js';
import type { Norm } from './geometry.js';
import { MIFGSM } from './mifgsm.js';
import { PGD } from './pgd.js';
import { Square } from './square.js';

export interface AttackSettings {
  eps?: number;
  norm?: Norm;
  steps?: number;
  stepSize?: number;
  restarts?: number;
  earlyStop?: boolean;
  /** Square: query budget. */
  queries?: number;
  /** CW: binary-search steps. */
  binarySteps?: number;
  /** CW: confidence margin the adversarial logit must clear (an attack on confidence-based detection). */
  kappa?: number;
}

export const attackNames = ['fgsm', 'bim', 'pgd', 'mifgsm', 'apgd', 'cw', 'deepfool', 'square'] as const;
export type AttackName = (typeof attackNames)[number];

/** Attacks that need an eps (the others minimize the perturbation). */
export const boundedAttacks: readonly AttackName[] = ['fgsm', 'bim', 'pgd', 'mifgsm', 'apgd', 'square'];

/** The settings each attack takes; the rest of an AttackSettings is ignored for it. */
const settingsUsed: Record<AttackName, ReadonlyArray<keyof AttackSettings>> = {
  fgsm: ['eps', 'norm'],
  bim: ['eps', 'norm', 'steps', 'stepSize', 'earlyStop'],
  pgd: ['eps', 'norm', 'steps', 'stepSize', 'restarts', 'earlyStop'],
  mifgsm: ['eps', 'steps', 'stepSize', 'earlyStop'],
  apgd: ['eps', 'norm', 'steps'],
  cw: ['steps', 'binarySteps', 'kappa'],
  deepfool: ['norm', 'steps'],
  square: ['eps', 'queries'],
};

/** The defined settings that attack `name` takes, e.g. to record what an attack ran with. */
export function attackSettings(name: AttackName, settings: AttackSettings): AttackSettings {
  const used = settingsUsed[name];
  if (used === undefined)
    throw new RangeError(`Expected one of ${attackNames.join(', ')} for attack but received ${String(name)}`);
  return Object.fromEntries(
    used.filter((key) => settings[key] !== undefined).map((key) => [key, settings[key]]),
  ) as AttackSettings;
}

export function createAttack(name: AttackName, settings: AttackSettings = {}): Attack {
  const own = attackSettings(name, settings);
  if (boundedAttacks.includes(name) && own.eps === undefined)
    throw new RangeError(`Expected a positive number for eps but received undefined (${name} is bounded)`);
  const eps = own.eps!;
  switch (name) {
    case 'fgsm':
      return new FGSM({ ...own, eps });
    case 'bim':
      return new BIM({ ...own, eps });
    case 'pgd':
      return new PGD({ ...own, eps });
    case 'mifgsm':
      return new MIFGSM({ ...own, eps });
    case 'apgd':
      return new APGD({ ...own, eps });
    case 'cw':
      return new CarliniWagnerL2(own);
    case 'deepfool':
      return new DeepFool(own);
    case 'square':
      return new Square({ ...own, eps });
  }
}

/** Attacks by name with shared settings, each with the settings it takes (the CLI's --attacks). */
export function createAttacks(
  names: readonly AttackName[],
  settings: AttackSettings,
): Array<{ name: AttackName; attack: Attack; settings: AttackSettings }> {
  return names.map((name) => {
    const own = attackSettings(name, settings);
    return { name, attack: createAttack(name, own), settings: own };
  });
}
