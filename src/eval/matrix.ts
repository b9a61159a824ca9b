// The cross-attack matrix of several banks evaluated on the same attacked images: one row per bank
// (with its attack families), one column per attack; AUC and TPR at the calibrated threshold. With
// peer detectors (nfp evaluate --baselines), one more row per detector on the same images.
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
  const peers = evaluations[0]!.baselines?.baselines ?? [];
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
    ...peers.map((b) =>
      markdownRow([
        `${b.name} (peer detector)`,
        b.fprAtThreshold.toFixed(3),
        ...attacks.map((name) => {
          const a = b.attacks.find((r) => r.attack === name);
          return a === undefined ? '-' : `${a.auc.toFixed(4)} (${a.tprAtThreshold.toFixed(3)})`;
        }),
      ]),
    ),
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
    // Absent without --baselines. Per peer detector: measured FPR, and per attack (in `attacks` order) AUC,
    // TPR at 1% and 5% FPR and at its threshold, and the cost per image.
    ...(peers.length > 0
      ? {
          baselines: peers.map((b) => {
            const row = attacks.map((name) => b.attacks.find((r) => r.attack === name));
            return {
              detector: b.name,
              cleanFpr: b.fprAtThreshold,
              auc: row.map((a) => a?.auc ?? null),
              tprAt1: row.map((a) => a?.tprAt1 ?? null),
              tprAt5: row.map((a) => a?.tprAt5 ?? null),
              tprAtThreshold: row.map((a) => a?.tprAtThreshold ?? null),
              fitSecondsPerImage: b.cost.fitSecondsPerImage,
              scoreSecondsPerImage: b.cost.scoreSecondsPerImage,
            };
          }),
        }
      : {}),
  };
  writeFileSync(join(dir, 'matrix.json'), `${JSON.stringify(json, null, 1)}\n`);
  return path;
}
