// The ablations in a report: per ablated parameter, a table (setting -> AUC and TPR at 5% FPR per
// attack, measured FPR), the AUC spread over the random detectors, and a vega-lite line figure
// (AUC against the setting, one line per attack), rendered with the report's other figures.
import type { TopLevelSpec } from 'vega-lite';

import { ablationTitles } from './ablation-spec.js';
import type { Ablation } from './types.js';
import { markdownRow } from './markdown.js';

const f = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits);

export const ablationFigureName = (a: Ablation): string => `ablation-${a.parameter}`;

/** One line figure per ablation: AUC against the setting, one line per attack. */
export function ablationFigures(ablations: readonly Ablation[]): Record<string, TopLevelSpec> {
  const out: Record<string, TopLevelSpec> = {};
  for (const a of ablations) {
    const numeric = a.rows.every((r) => typeof r.value === 'number');
    // Tap sets are named by their layers, too long for an axis: long ones become "set i".
    const short = a.rows.map((r, i) => (r.label.length <= 24 ? r.label : `set ${i + 1} (${r.neurons} neurons)`));
    const values = a.rows.flatMap((r, order) =>
      r.attacks
        .filter((x) => Number.isFinite(x.auc))
        .map((x) => ({
          attack: x.attack,
          setting: short[order]!,
          value: typeof r.value === 'number' ? r.value : order,
          order,
          auc: x.auc,
        })),
    );
    const numbers = a.rows.map((r) => (typeof r.value === 'number' ? r.value : 0));
    // Settings such as draws or candidates span decades: a log axis spaces them evenly.
    const log = numeric && Math.min(...numbers) > 0 && Math.max(...numbers) / Math.min(...numbers) >= 10;
    out[ablationFigureName(a)] = {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: `AUC against ${ablationTitles[a.parameter]}${a.refit ? ' (refitted)' : ''}`,
      width: 360,
      height: 240,
      data: { values },
      mark: { type: 'line', point: true },
      encoding: {
        x: numeric
          ? {
              field: 'value',
              type: 'quantitative',
              title: a.parameter,
              scale: log ? { type: 'log', nice: false } : { zero: false, nice: false },
              axis: { values: numbers },
            }
          : {
              field: 'setting',
              type: 'ordinal',
              title: a.parameter,
              sort: short,
              axis: { labelLimit: 200, labelAngle: -20 },
            },
        y: { field: 'auc', type: 'quantitative', title: 'AUC', scale: { zero: false } },
        color: { field: 'attack', type: 'nominal' },
        order: { field: 'order', type: 'quantitative' },
      },
    };
  }
  return out;
}

/** The report's "Ablations" section (markdown lines), each table followed by its figure. */
export function ablationMarkdown(ablations: readonly Ablation[], calibration: string): string[] {
  if (ablations.length === 0) return [];
  const lines: string[] = ['## Ablations', ''];
  lines.push(
    `One setting changed at a time, the rest as the bank's. Every setting is recalibrated on the bank's calibration ` +
      `rows (${calibration}) and evaluated on the same held-out attacked images as above, with seeded draws. draws ` +
      `and top use the bank as it is (top keeps each class's strongest fingerprints); k, candidates and taps refit ` +
      `it on its fit rows with its recorded settings and seed. \`*\` marks the bank's own setting.`,
    '',
  );
  for (const a of ablations) {
    const attacks = a.rows[0]?.attacks.map((x) => x.attack) ?? [];
    const own = a.rows.find((r) => r.own && r.reproducesBank !== undefined);
    lines.push(`### ${a.parameter}: ${ablationTitles[a.parameter]}${a.refit ? ', refitted' : ', no refit'}`, '');
    const whole = a.rows
      .filter((r) => r.smallestClass < r.draws)
      .map((r) => `${a.parameter}=${r.label} (${r.smallestClass} < ${r.draws} draws)`);
    if (whole.length > 0)
      lines.push(
        `Some class keeps fewer fingerprints than the draws per input at ${whole.join(', ')}: its inputs draw all ` +
          `of them, the same ones for every random detector.`,
        '',
      );
    if (own !== undefined)
      lines.push(
        own.reproducesBank === true
          ? "The refit at the bank's own setting reproduces the bank exactly."
          : "The refit at the bank's own setting does not reproduce the bank exactly (an unrecorded fit setting, " +
              'such as the attack mode, differs, or the bank records no seed).',
        '',
      );
    lines.push(
      `| ${a.parameter} | fingerprints | neurons | redundancy | measured FPR ` +
        `| ${attacks.map((x) => `${x} AUC | ${x} TPR@5%`).join(' | ')} | seconds |`,
    );
    lines.push(`|---|---|---|---|---|${attacks.map(() => '---|---').join('|')}|---|`);
    for (const r of a.rows) {
      const perAttack = r.attacks.flatMap((x) => [f(x.auc, 4), f(x.tprAt5)]);
      const label = `${r.label}${r.own ? ' *' : ''}`;
      lines.push(
        markdownRow([
          label,
          r.fingerprints,
          r.neurons,
          r.redundancy === undefined ? '-' : f(r.redundancy),
          f(r.fprAtThreshold),
          ...perAttack,
          r.seconds.toFixed(0),
        ]),
      );
    }
    lines.push('', `AUC over ${a.detectors} independent random detectors, mean (std):`, '');
    lines.push(`| ${a.parameter} | ${attacks.join(' | ')} |`);
    lines.push(`|---|${attacks.map(() => '---').join('|')}|`);
    for (const r of a.rows) {
      const label = `${r.label}${r.own ? ' *' : ''}`;
      lines.push(markdownRow([label, ...r.attacks.map((x) => `${f(x.aucMean, 4)} (${f(x.aucStd, 4)})`)]));
    }
    lines.push('', `![${ablationFigureName(a)}](figures/${ablationFigureName(a)}.png)`, '');
  }
  return lines;
}
