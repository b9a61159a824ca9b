// Markdown table rows for the reports: one helper, so that every table is written the same way.

/** `| a | b | c |` */
export function markdownRow(cells: ReadonlyArray<string | number>): string {
  return `| ${cells.join(' | ')} |`;
}
