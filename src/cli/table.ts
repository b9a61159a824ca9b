// Plain-text tables for CLI output: left-aligned text, right-aligned numbers.
export function formatTable(header: string[], rows: string[][]): string {
  // A loop, not Math.max(...rows): a bank of a million classes would overflow the stack.
  const widths = header.map((h, i) => rows.reduce((w, r) => Math.max(w, (r[i] ?? '').length), h.length));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((r) => /^-?[\d.,%x]*$/.test(r[i] ?? '')));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return `${[line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')}\n`;
}

export { significant } from '../experiment/index.js';
