// The fuzz suite's table (issue 17): every hostile image and tensor file of test/reference/hostile-corpus.ts,
// one child process per category, with the outcomes, the slowest case, the longest event-loop block and
// the category's peak RSS. `npx tsx scripts/hostile-report.ts [--skip name,name] [--json out.json]`.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { fileCases, imageCases, runHostile } from '../test/reference/hostile-corpus.js';
import type { HostileCase } from '../test/reference/hostile-corpus.js';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const skip = new Set((arg('--skip') ?? '').split(',').filter((s) => s !== ''));
const dir = mkdtempSync(join(tmpdir(), 'nfp-hostile-report-'));
try {
  const cases = [...(await imageCases(dir)), ...fileCases(dir)].filter((c) => !skip.has(c.name));
  const categories = [...new Set(cases.map((c) => c.category))];
  const rows: string[] = [];
  const all: unknown[] = [];
  for (const category of categories) {
    const some = cases.filter((c) => c.category === category);
    const { results, maxRssMB } = runHostile(some, dir, category.replace(/\W+/g, '-'));
    const expected = (c: HostileCase, i: number) =>
      c.expect === 'ok' ? results[i]!.outcome === 'ok' : results[i]!.message.includes(c.expect);
    const errors = results.filter((r) => r.outcome === 'error').length;
    const slowest = results.reduce((a, b) => (b.ms > a.ms ? b : a));
    const blocked = results.reduce((a, b) => (b.blockMs > a.blockMs ? b : a));
    const unexpected = some.filter((c, i) => !expected(c, i)).map((c) => c.name);
    rows.push(
      `| ${category} | ${some.length} | ${errors} clear errors, ${some.length - errors} bounded results` +
        `${unexpected.length > 0 ? `; unexpected: ${unexpected.join(', ')}` : ''} | ${maxRssMB} MB | ` +
        `${slowest.ms} ms (${slowest.name}) | ${blocked.blockMs} ms (${blocked.name}) |`,
    );
    all.push({ category, maxRssMB, results });
  }
  process.stdout.write(
    '| category | inputs | outcome | peak RSS | slowest | longest event-loop block |\n|---|---|---|---|---|---|\n',
  );
  process.stdout.write(`${rows.join('\n')}\n`);
  const out = arg('--json');
  if (out !== undefined) writeFileSync(out, JSON.stringify(all, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
