// The one-line JSON summaries the CLI prints for programs: the headline figures of an evaluation
// (measured FPR and, per attack, success rate, AUC, TPR at 5% FPR and at the threshold, AUC spread),
// to four significant digits.
import type { Evaluation } from '../eval/index.js';

export interface EvaluationSummary {
  cleanFpr: number;
  attacks: Array<{
    attack: string;
    successRate: number;
    auc: number;
    tprAt5: number;
    tprAtThreshold: number;
    aucStd: number;
  }>;
  ablations?: Array<{
    parameter: string;
    rows: Array<{ setting: string; own: boolean; cleanFpr: number; auc: Record<string, number> }>;
  }>;
}

/** v to `digits` significant digits (NaN and infinities as they are). */
export function significant(v: number, digits: number): number {
  return Number.isFinite(v) ? Number(v.toPrecision(digits)) : v;
}

export function evaluationSummary(e: Evaluation): EvaluationSummary {
  return {
    cleanFpr: significant(e.clean.fprAtThreshold, 4),
    attacks: e.attacks.map((a) => ({
      attack: a.attack,
      successRate: significant(a.successRate, 4),
      auc: significant(a.auc, 4),
      tprAt5: significant(a.tprAt5, 4),
      tprAtThreshold: significant(a.tprAtThreshold, 4),
      aucStd: significant(a.consistency.auc.std, 4),
    })),
    ...(e.ablations
      ? {
          ablations: e.ablations.map((a) => ({
            parameter: a.parameter,
            rows: a.rows.map((r) => ({
              setting: r.label,
              own: r.own,
              cleanFpr: significant(r.fprAtThreshold, 4),
              auc: Object.fromEntries(r.attacks.map((x) => [x.attack, significant(x.auc, 4)])),
            })),
          })),
        }
      : {}),
  };
}
