// The attacks' front door: one interface (Attack.run), one file per attack, shared geometry.
export { Attack, AttackBatch } from './attack.js';
export type { AttackModel, AttackOptions, AttackResult, Perturbation } from './attack.js';
export { Criterion, argmax, randomTargets } from './criterion.js';
export type { Norm } from './geometry.js';
export { perturbationNorms } from './geometry.js';

export { FGSM } from './fgsm.js';
export type { FgsmOptions } from './fgsm.js';
export { BIM } from './bim.js';
export { PGD } from './pgd.js';
export { MIFGSM } from './mifgsm.js';
export type { IterativeLoss, IterativeOptions } from './iterative.js';
export { APGD, apgdCheckpoints } from './apgd.js';
export type { ApgdOptions } from './apgd.js';
export { CarliniWagnerL2 } from './cw.js';
export type { CwOptions } from './cw.js';
export { DeepFool } from './deepfool.js';
export type { DeepFoolOptions } from './deepfool.js';
export { Square, squareShare } from './square.js';
export type { SquareOptions } from './square.js';
export { attackNames, attackSettings, boundedAttacks, createAttack, createAttacks } from './registry.js';
export type { AttackName, AttackSettings } from './registry.js';
