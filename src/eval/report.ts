// Writing an evaluation: metrics.json (the versioned, machine-readable result), report.md and
// report.html (tables and figures), and the figures themselves as SVG and PNG. Figures are
// vega-lite specifications rendered by vega to SVG, and to PNG by sharp.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import sharp from 'sharp';
import type { TopLevelSpec } from 'vega-lite';

import { ablationFigures, ablationMarkdown } from './ablation-report.js';
import type { Evaluation } from './types.js';
import { markdownRow } from './markdown.js';

export interface ReportContext {
  /** The command line that produced the evaluation. */
  command: string;
  /** Machine and settings, one line. */
  machine: string;
  /** How the data was split (fit / calibration / evaluation). */
  split: string;
  /** How the ablations recalibrated, one phrase (default: the bank's FPR). */
  calibration?: string;
}

const f = (v: number | null | undefined, digits = 3) =>
  v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(digits);

/** Thins a list to at most n evenly spaced items (histograms need no more). */
function thin<T>(values: T[], n: number): T[] {
  if (values.length <= n) return values;
  const step = values.length / n;
  return Array.from({ length: n }, (_, i) => values[Math.floor(i * step)]!);
}

function figures(e: Evaluation): Record<string, TopLevelSpec> {
  const roc = e.attacks.flatMap((a) =>
    a.roc.fpr.map((x, i) => ({ attack: `${a.attack} (AUC ${f(a.auc)})`, fpr: x, tpr: a.roc.tpr[i]! })),
  );
  // Log-likelihood ratios have heavy tails: a signed log keeps both the bulk and the tails visible.
  const symlog = (v: number) => Math.sign(v) * Math.log10(1 + Math.abs(v));
  const scores = e.attacks.flatMap((a) => [
    ...thin(a.scores.clean, 3000).map((v) => ({ attack: a.attack, set: 'clean', score: symlog(v) })),
    ...thin(a.scores.attacked, 3000).map((v) => ({ attack: a.attack, set: 'attacked', score: symlog(v) })),
  ]);
  const aucs = e.attacks.flatMap((a) => a.consistency.aucs.map((v) => ({ attack: a.attack, auc: v })));
  const schema = 'https://vega.github.io/schema/vega-lite/v6.json';
  return {
    roc: {
      $schema: schema,
      title: 'ROC: clean vs attacked (held-out images)',
      width: 360,
      height: 360,
      data: { values: roc },
      mark: { type: 'line', interpolate: 'step-after' },
      encoding: {
        x: { field: 'fpr', type: 'quantitative', title: 'false-positive rate', scale: { domain: [0, 1] } },
        y: { field: 'tpr', type: 'quantitative', title: 'true-positive rate', scale: { domain: [0, 1] } },
        color: { field: 'attack', type: 'nominal', legend: { labelLimit: 400 } },
      },
    },
    scores: {
      $schema: schema,
      title: 'Score minus the calibrated threshold: clean vs attacked',
      data: { values: scores },
      facet: { row: { field: 'attack', type: 'nominal' } },
      spec: {
        width: 420,
        height: 90,
        // Share of each set per bin, so a few hundred attacked images show beside thousands of clean ones.
        transform: [
          { bin: { maxbins: 60 }, field: 'score', as: 'bin' },
          { aggregate: [{ op: 'count', as: 'n' }], groupby: ['set', 'bin', 'bin_end'] },
          { joinaggregate: [{ op: 'sum', field: 'n', as: 'total' }], groupby: ['set'] },
          { calculate: 'datum.n / datum.total', as: 'share' },
        ],
        mark: { type: 'bar', opacity: 0.6 },
        encoding: {
          x: {
            field: 'bin',
            type: 'quantitative',
            bin: { binned: true },
            title: 'sign(s) log10(1 + |s|), s = score - threshold',
          },
          x2: { field: 'bin_end' },
          y: { field: 'share', type: 'quantitative', stack: null, title: 'share of images' },
          color: {
            field: 'set',
            type: 'nominal',
            scale: { domain: ['clean', 'attacked'], range: ['#4c78a8', '#e45756'] },
          },
        },
      },
      resolve: { scale: { y: 'independent' } },
    },
    consistency: {
      $schema: schema,
      title: `AUC of ${e.attacks[0]?.consistency.detectors ?? 0} independent random detectors`,
      width: 360,
      height: 30 * Math.max(1, e.attacks.length),
      data: { values: aucs },
      mark: { type: 'tick', thickness: 1 },
      encoding: {
        x: { field: 'auc', type: 'quantitative', title: 'AUC', scale: { zero: false } },
        y: { field: 'attack', type: 'nominal' },
      },
    },
  };
}

async function render(spec: TopLevelSpec): Promise<string> {
  // Loaded on first use: vega is large, and its canvas probe awaits at the top level, which would keep
  // require() (CommonJS) from loading the package at all.
  const [vega, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

/** The family of detectors per class: what the random draw picks from (bank/family.ts). */
function familyMarkdown(e: Evaluation): string[] {
  const family = e.bank.family;
  if (family === undefined) return [];
  return [
    '## The family of detectors',
    '',
    'Per class: fingerprints, distinct ones, distinct neurons, log10 of the number of distinct draws of ' +
      `${e.bank.draws}, ` +
      "and redundancy (mean |correlation| of the fingerprints' values on the class's clean fit images).",
    '',
    `| class | ${family.map((c) => c.class).join(' | ')} |`,
    `|---|${family.map(() => '---').join('|')}|`,
    markdownRow(['fingerprints', ...family.map((c) => c.fingerprints)]),
    markdownRow(['distinct', ...family.map((c) => c.distinct)]),
    markdownRow(['neurons', ...family.map((c) => c.neurons)]),
    markdownRow(['log10 draws', ...family.map((c) => (c.distinct > 0 ? c.log10Draws.toFixed(1) : '-'))]),
    markdownRow(['redundancy', ...family.map((c) => (c.redundancy === null ? '-' : c.redundancy.toFixed(3)))]),
    '',
  ];
}

/** Peer detectors next to the fingerprint detector on the same images (nfp evaluate --baselines). */
function baselineMarkdown(e: Evaluation): string[] {
  const peers = e.baselines;
  if (peers === undefined) return [];
  const ms = (s: number) => (s * 1000).toFixed(s * 1000 < 10 ? 2 : 1);
  const lines = [
    '## Peer detectors',
    '',
    `Mahalanobis (Lee et al. 2018), LID (Ma et al. 2018) and feature squeezing (Xu et al. 2018) on the same ` +
      `${peers.clean} clean and adversarial images, fitted on the bank's fit rows (its attack families run ` +
      `untargeted on them), one global threshold each for FPR ${peers.fpr} on the ${peers.calibration} ` +
      'calibration rows. Cost: fit seconds per fit image used, scoring seconds per held-out image.',
    '',
    markdownRow([
      'detector',
      'attack',
      'adversarial',
      'AUC',
      'TPR@1%',
      'TPR@5%',
      'TPR at threshold',
      'measured FPR',
      'fit ms/image',
      'score ms/image',
    ]),
    '|---|---|---|---|---|---|---|---|---|---|',
    ...e.attacks.map((a) =>
      markdownRow([
        'fingerprints',
        a.attack,
        a.adversarial,
        f(a.auc, 4),
        f(a.tprAt1),
        f(a.tprAt5),
        f(a.tprAtThreshold),
        f(e.clean.fprAtThreshold),
        '-',
        '-',
      ]),
    ),
  ];
  for (const b of peers.baselines)
    for (const a of b.attacks)
      lines.push(
        markdownRow([
          b.name,
          a.attack,
          a.adversarial,
          f(a.auc, 4),
          f(a.tprAt1),
          f(a.tprAt5),
          f(a.tprAtThreshold),
          f(b.fprAtThreshold),
          ms(b.cost.fitSecondsPerImage),
          ms(b.cost.scoreSecondsPerImage),
        ]),
      );
  return [...lines, ''];
}

function markdown(e: Evaluation, context: ReportContext, pictures: string[]): string {
  const lines: string[] = [];
  lines.push(`# Detection report: ${e.bank.model}`, '');
  lines.push(`Command: \`${context.command}\``, '', `Machine: ${context.machine}`, '', `Data: ${context.split}`, '');
  lines.push(
    `Bank: ${e.bank.fingerprints} fingerprints, k=${e.bank.k}, ${e.bank.neurons} tapped neurons, ` +
      `families ${e.bank.families.join(', ')}; ${e.bank.draws} draws per input, ` +
      `combine ${e.bank.combine}; calibrated for FPR ${f(e.bank.fpr, 2)}.`,
    '',
  );
  lines.push(
    `Clean held-out images: ${e.clean.images} (${e.clean.correct} classified correctly, ` +
      `accuracy ${f(e.clean.accuracy)}); measured false-positive rate at the calibrated thresholds: ` +
      `**${f(e.clean.fprAtThreshold)}**.`,
    '',
  );
  lines.push(
    'Attacked images: the correctly classified held-out images, attacked untargeted; only successful attacks count. ' +
      'Scores are the detector score minus the calibrated threshold of the predicted class.',
    '',
  );
  lines.push(
    '| attack | success | adversarial | AUC | TPR@1% | TPR@5% | TPR at threshold | AUC over random detectors: mean ' +
      '(std), worst | fixed fingerprints AUC | max-softmax AUC |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const a of e.attacks) {
    const spread = a.consistency.auc;
    lines.push(
      markdownRow([
        a.attack,
        f(a.successRate),
        a.adversarial,
        f(a.auc, 4),
        f(a.tprAt1),
        f(a.tprAt5),
        f(a.tprAtThreshold),
        `${f(spread.mean, 4)} (${f(spread.std, 4)}), ${f(spread.min, 4)}`,
        f(a.baselines.fixedFingerprints.auc, 4),
        f(a.baselines.maxSoftmax.auc, 4),
      ]),
    );
  }
  lines.push('', '## Per class', '');
  lines.push(`| attack | ${e.clean.perClassFpr.map((_, c) => `class ${c}`).join(' | ')} |`);
  lines.push(`|---|${e.clean.perClassFpr.map(() => '---').join('|')}|`);
  lines.push(`| clean FPR | ${e.clean.perClassFpr.map((v) => f(v)).join(' | ')} |`);
  for (const a of e.attacks)
    lines.push(
      `| ${a.attack} AUC (n) ` +
        `| ${a.perClass.map((p) => (p.auc === null ? '-' : `${f(p.auc)} (${p.adversarial})`)).join(' | ')} |`,
    );
  lines.push('');
  lines.push(...baselineMarkdown(e));
  lines.push(...familyMarkdown(e));
  lines.push(...ablationMarkdown(e.ablations ?? [], context.calibration ?? `FPR ${f(e.bank.fpr, 2)}`));
  lines.push('## Figures', '');
  for (const p of pictures) lines.push(`![${p}](figures/${p}.png)`, '');
  return `${lines.join('\n')}\n`;
}

function html(md: string, svgs: Record<string, string>): string {
  const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const body: string[] = [];
  let table: string[] | undefined;
  const flush = () => {
    if (table) body.push(`<table>${table.join('')}</table>`);
    table = undefined;
  };
  for (const line of md.split('\n')) {
    if (line.startsWith('|')) {
      const cells = line
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim());
      if (cells.every((c) => /^-+$/.test(c))) continue;
      const tag = table === undefined ? 'th' : 'td';
      table ??= [];
      const html = cells.map((c) => `<${tag}>${escapeHtml(c).replace(/\*\*(.+?)\*\*/g, '<b>$1</b>')}</${tag}>`);
      table.push(`<tr>${html.join('')}</tr>`);
      continue;
    }
    flush();
    const picture = /^!\[(.+)\]\(figures\/(.+)\.png\)$/.exec(line);
    if (picture) body.push(`<figure>${svgs[picture[2]!] ?? ''}</figure>`);
    else if (line.startsWith('### ')) body.push(`<h3>${escapeHtml(line.slice(4))}</h3>`);
    else if (line.startsWith('## ')) body.push(`<h2>${escapeHtml(line.slice(3))}</h2>`);
    else if (line.startsWith('# ')) body.push(`<h1>${escapeHtml(line.slice(2))}</h1>`);
    else if (line.trim() !== '')
      body.push(
        `<p>${escapeHtml(line)
          .replace(/`(.+?)`/g, '<code>$1</code>')
          .replace(/\*\*(.+?)\*\*/g, '<b>$1</b>')}</p>`,
      );
  }
  flush();
  return (
    `<!doctype html><html><head><meta charset="utf-8"><title>Detection ` +
    `report</title><style>body{font-family:sans-serif;max-width:1100px;margin:2em ` +
    `auto}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px ` +
    `6px;text-align:right}th{background:#f4f4f4}</style></head><body>${body.join('\n')}</body></html>\n`
  );
}

/** Writes metrics.json, report.md, report.html and figures/*.svg|png into `dir`; returns the paths. */
export async function writeReport(
  dir: string,
  evaluation: Evaluation,
  context: ReportContext,
): Promise<{ metrics: string; markdown: string; html: string }> {
  mkdirSync(join(dir, 'figures'), { recursive: true });
  const metrics = join(dir, 'metrics.json');
  writeFileSync(metrics, `${JSON.stringify({ ...evaluation, context }, null, 1)}\n`);
  const svgs: Record<string, string> = {};
  const main = figures(evaluation);
  for (const [name, spec] of Object.entries({ ...main, ...ablationFigures(evaluation.ablations ?? []) })) {
    const svg = await render(spec);
    svgs[name] = svg;
    writeFileSync(join(dir, 'figures', `${name}.svg`), svg);
    await sharp(Buffer.from(svg), { density: 144 })
      .flatten({ background: '#ffffff' })
      .png()
      .toFile(join(dir, 'figures', `${name}.png`));
  }
  // The ablation figures sit in their own section, beside their tables.
  const md = markdown(evaluation, context, Object.keys(main));
  const mdPath = join(dir, 'report.md');
  writeFileSync(mdPath, md);
  const htmlPath = join(dir, 'report.html');
  writeFileSync(htmlPath, html(md, svgs));
  return { metrics, markdown: mdPath, html: htmlPath };
}
