// The adaptive evaluation as markdown: one table of attacks (evasion of the randomized and the static
// detector at each false-positive rate), the attacker's best per threat and bound, and rejection sampling.
import type { AdaptiveResults, AdaptiveRow } from './adaptive.js';

const pct = (v: number) => `${(100 * v).toFixed(1)}%`;

const attackNames: Record<AdaptiveRow['attack'], string> = {
  pgd: 'plain PGD (margin loss)',
  static: 'PGD vs a static draw',
  eot: 'EOT PGD (expected score)',
};

/** The report section for results of adaptiveExperiment. */
export function adaptiveMarkdown(results: AdaptiveResults): string {
  const s = results.settings;
  const d = results.detector;
  const header = [
    'threat',
    'attack',
    'eps',
    'weight',
    'misclassified',
    'evasion randomized 5%',
    '1%',
    'evasion static 5%',
    '1%',
    'static detects (of misclassified, 5%)',
    'evasion two-sided 5%',
    '1%',
    'mean L-inf',
    'mean L2',
    'gradient steps',
    'seconds',
  ];
  const lines = [
    '## Adaptive attacks',
    '',
    (results.model !== undefined
      ? `Model ${results.model.source} (sha256 ${results.model.sha256.slice(0, 12)}…). `
      : '') +
      `${results.images} correctly classified images (data rows ${results.rows[0]}-${results.rows[1]}), L-inf, ` +
      `${s.steps} steps x ${s.restarts} restart(s), kappa ${s.kappa}, detector hinge ${s.slack ?? 'none'}` +
      (s.reluSurrogate !== undefined
        ? `, attack gradients through smoothed ReLUs (BPDA: sigmoid(x / ${s.reluSurrogate}) backward)`
        : '') +
      '; ' +
      'the deployed detector draws ' +
      `${d.draws} fingerprints per input ('${d.combine}'), results averaged over ${s.detectors} ` +
      `independent draws per image; thresholds: ${d.calibration}. Evasion: share of the images ` +
      'misclassified and not flagged. Static detector: every input of a class scored with its strongest ' +
      'fingerprints.',
    '',
    `Measured false-positive rates on the same images before the attack (target: randomized / static / ` +
      `two-sided): ${results.cleanFpr
        .map((c) => `${pct(c.fpr)}: ${pct(c.randomized)} / ${pct(c.static)} / ${pct(c.twoSided)}`)
        .join('; ')}. Two-sided: the same draw flags a high LLR or a high clean negative log-likelihood ` +
      '(an input pushed past the clean means), each at half the rate.',
    '',
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---|').join('')}`,
  ];
  for (const r of results.attacks) {
    const at = (fpr: number) => r.evasion.find((e) => Math.abs(e.fpr - fpr) < 1e-12)!;
    lines.push(
      `| ${r.threat} | ${attackNames[r.attack]} | ${r.eps} | ${r.weight} | ${pct(r.success)} | ` +
        `${pct(at(0.05).randomized)} | ${pct(at(0.01).randomized)} | ` +
        `${pct(at(0.05).static)} | ${pct(at(0.01).static)} | ` +
        `${r.success > 0 ? pct(1 - at(0.05).static / r.success) : '-'} | ` +
        `${pct(at(0.05).twoSided)} | ${pct(at(0.01).twoSided)} | ` +
        `${r.linf.toFixed(3)} | ${r.l2.toFixed(2)} | ${r.gradientSteps.toFixed(0)} | ${r.seconds.toFixed(0)} |`,
    );
  }
  lines.push(
    '',
    "The attacker's best (highest evasion of the randomized detector at 5% FPR over the weights swept):",
    '',
  );
  lines.push('| threat | attack | eps | best weight | evasion 5% | evasion 1% |', '|---|---|---|---|---|---|');
  const groups = new Map<string, AdaptiveRow[]>();
  for (const r of results.attacks) {
    const key = `${r.threat}|${r.attack}|${r.eps}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const rows of groups.values()) {
    const best = rows.reduce((a, b) => (b.evasion[0]!.randomized > a.evasion[0]!.randomized ? b : a));
    lines.push(
      `| ${best.threat} | ${attackNames[best.attack]} | ${best.eps} | ${best.weight} | ` +
        `${pct(best.evasion[0]!.randomized)} | ${pct(best.evasion[1]!.randomized)} |`,
    );
  }
  if (results.rejection.length > 0) {
    lines.push(
      '',
      `Local rejection sampling (T3): ${s.candidateRuns} PGD candidates per image; the attacker sends the ` +
        'first that fools the model and that none of its L local copies (independent draws of the deployed ' +
        'bank; "all": the copy using every fingerprint) flags.',
      '',
      '| eps | local copies L | passed locally | caught by the deployed detector (5%) | evasion |',
      '|---|---|---|---|---|',
    );
    for (const r of results.rejection)
      lines.push(`| ${r.eps} | ${r.copies} | ${pct(r.passedLocal)} | ${pct(r.caught)} | ${pct(r.evasion)} |`);
  }
  return `${lines.join('\n')}\n`;
}
