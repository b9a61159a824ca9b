// Evaluation's front door: metrics (AUC, TPR at FPR).
export { auc, rateAbove, tprAtFpr } from './metrics.js';
