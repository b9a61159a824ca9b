// Adaptive attacks on the fingerprint detector: PGD against a static draw or the expectation over
// draws (AdaptivePGD with a DetectorTerm), and local rejection sampling with detector copies.
export { AdaptivePGD } from './adaptive-pgd.js';
export type { AdaptivePgdOptions, TappedAttackModel } from './adaptive-pgd.js';
export { DetectorTerm } from './detector-term.js';
export type { QuadraticTable, TermOptions, TermValue } from './detector-term.js';
export { drawnCopy, expectationCopy, rejectionSample } from './rejection.js';
export type { LocalCopy, RejectionResult } from './rejection.js';
export { tappedModel } from './tapped-model.js';
