// The cross-attack matrix of several banks evaluated on the same attacked images: one row per bank
// (with its attack families), one column per attack; AUC and TPR at the calibrated threshold.
// matrix.md for people, matrix.json (schema nfp-matrix/1) for programs.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { markdownRow } from './markdown.js';
import type { Evaluation } from './types.js';

export const matrixSchema = 'nfp-matrix/1';

/** Writes matrix.md and matrix.json into `dir`; returns the path of matrix.md. */
export function writeMatrix(dir: string, labels: string[], evaluations: Evaluation[]): string {
  mkdirSync(dir, { recursive: true });
  const attacks = evaluations[0]!.attacks.map((a) => a.attack);
  const lines = [
    '# Cross-attack matrix',
    '',
    'AUC (TPR at the calibrated threshold) of each bank against each attack, on the same held-out attacked images.',
    '',
    markdownRow(['bank (families)', 'clean FPR', ...attacks]),
    `|---|---|${attacks.map(() => '---').join('|')}|`,
    ...evaluations.map((e, i) => {
      const cells = e.attacks.map((a) => `${a.auc.toFixed(4)} (${a.tprAtThreshold.toFixed(3)})`);
      return markdownRow([
        `${labels[i]!} (${e.bank.families.join(', ')})`,
        e.clean.fprAtThreshold.toFixed(3),
        ...cells,
      ]);
    }),
  ];
  const path = join(dir, 'matrix.md');
  writeFileSync(path, `${lines.join('\n')}\n`);
  const json = {
    schema: matrixSchema,
    attacks,
    banks: evaluations.map((e, i) => ({
      bank: labels[i]!,
      families: e.bank.families,
      cleanFpr: e.clean.fprAtThreshold,
      auc: e.attacks.map((a) => a.auc),
      tprAtThreshold: e.attacks.map((a) => a.tprAtThreshold),
    })),
  };
  writeFileSync(join(dir, 'matrix.json'), `${JSON.stringify(json, null, 1)}\n`);
  return path;
}
