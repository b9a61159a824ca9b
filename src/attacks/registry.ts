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
}

export const attackNames = ['fgsm', 'bim', 'pgd', 'mifgsm', 'apgd', 'cw', 'deepfool', 'square'] as const;
export type AttackName = (typeof attackNames)[number];

/** Attacks that need an eps (the others minimize the perturbation). */
export const boundedAttacks: readonly AttackName[] = ['fgsm', 'bim', 'pgd', 'mifgsm', 'apgd', 'square'];

export function createAttack(name: AttackName, settings: AttackSettings = {}): Attack {
  const { eps, norm, steps, stepSize, restarts, earlyStop, queries, binarySteps } = settings;
  const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  const needEps = (): number => {
    if (eps === undefined) throw new RangeError(`Expected a positive number for eps but received undefined (${name} is bounded)`);
    return eps;
  };
  switch (name) {
    case 'fgsm': return new FGSM(defined({ eps: needEps(), norm }));
    case 'bim': return new BIM(defined({ eps: needEps(), norm, steps, stepSize, earlyStop }));
    case 'pgd': return new PGD(defined({ eps: needEps(), norm, steps, stepSize, restarts, earlyStop }));
    case 'mifgsm': return new MIFGSM(defined({ eps: needEps(), steps, stepSize, earlyStop }));
    case 'apgd': return new APGD(defined({ eps: needEps(), norm, steps }));
    case 'cw': return new CarliniWagnerL2(defined({ steps, binarySteps }));
    case 'deepfool': return new DeepFool(defined({ norm, steps }));
    case 'square': return new Square(defined({ eps: needEps(), queries }));
    default: throw new RangeError(`Expected one of ${attackNames.join(', ')} for attack but received ${String(name)}`);
  }
}
