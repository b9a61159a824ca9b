// `nfp check <model>`: one screen saying whether a model works for predict, attack, fit and detect:
// its input (name, layout, batch), classes and output kind, opset, every node whose gradient cannot
// be built (all of them), the recommended taps with their neuron counts, and the memory a fit would
// need (src/experiment/check.ts finds it; `nfp attack`, `fit` and `evaluate` run the same check
// first and stop before loading any data when the model cannot do what they ask).
import type { Command } from 'commander';

import { checkModel, groupedProblems, purposes } from '../experiment/index.js';
import type { ModelCheck } from '../experiment/index.js';
import type { Layout } from '../model/index.js';
import { layoutOption, parseShape } from './parse.js';
import { formatTable } from './table.js';

const size = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : `${Math.max(bytes / 2 ** 20, 0.1).toFixed(1)} MB`;

/** The one-screen report. */
export function formatCheck(check: ModelCheck): string {
  const lines: string[] = [];
  const producer = check.producer ? `, from ${check.producer}` : '';
  const megabytes = `${check.megabytes.toFixed(1)} MB`;
  lines.push(`${check.source}  sha256 ${check.sha256.slice(0, 16)}…  ${megabytes}  opset ${check.opset}${producer}`);
  lines.push('');
  const rows: string[][] = [];
  if (check.loadError !== undefined) rows.push(['model', `does not load: ${check.loadError}`]);
  if (check.input) {
    const batch =
      check.input.batch === undefined ? 'free' : `fixed at ${check.input.batch} (runs ${check.input.batch} at a time)`;
    const shape = `[${check.input.batch ?? 'N'}, ${check.input.shape.join(', ')}]`;
    rows.push(['input', `'${check.input.name}' ${shape} ${check.input.layout.toUpperCase()} float32, batch ${batch}`]);
  }
  if (check.output) {
    const head = check.output.kind === 'probabilities' ? 'Softmax' : 'LogSoftmax';
    const logits =
      check.output.kind === 'logits'
        ? 'logits'
        : `${check.output.kind}; the logits are the input of its final ${head}, '${check.output.logits}'`;
    const batch = check.input?.batch ?? 'N';
    rows.push(['output', `'${check.output.tensor}' [${batch}, ${check.output.classes}]: ${logits}`]);
    rows.push(['classes', String(check.output.classes)]);
  }
  if (check.works.predict) {
    rows.push([
      'gradient',
      check.gradientProblems.length === 0
        ? 'every op on the way from the input to the logits has a rule'
        : `cannot be built (${check.gradientProblems.length} problem${check.gradientProblems.length > 1 ? 's' : ''}):`,
    ]);
    for (const p of groupedProblems(check)) rows.push(['', `- ${p}`]);
    if (check.taps) {
      const total = check.taps.reduce((n, t) => n + t.neurons, 0);
      rows.push(['taps', `nfp fit's (${check.tapRule ?? 'default'}): ${total.toLocaleString('en-US')} neurons`]);
      for (const t of check.taps) rows.push(['', `${t.tensor} (${t.neurons.toLocaleString('en-US')})`]);
    } else rows.push(['taps', `none found: ${check.tapError ?? ''}`]);
    if (check.fitMemory) {
      const m = check.fitMemory;
      rows.push(['fit memory', `~${size(m.total)} with nfp fit's defaults, the data set on top:`]);
      rows.push([
        '',
        `activations ${size(m.activations)}, attacked images ${size(m.images)}, gradient at batch ${m.batch} ` +
          size(m.gradient),
      ]);
    }
  }
  rows.push(['works for', purposes.map((p) => `${p} ${check.works[p] ? 'yes' : 'no'}`).join(', ')]);
  lines.push(formatTable(['', ''], rows).split('\n').slice(2).join('\n'));
  return `${lines.join('\n').replace(/\n+$/, '')}\n`;
}

export function registerCheckCommand(program: Command): Command {
  return program
    .command('check')
    .argument('<model>', 'an ONNX image classifier')
    .description('say whether a model works for predict, attack, fit and detect, and what stands in the way')
    .option('--json', 'print one JSON object instead of the screen')
    .option(
      '--input-shape <c,h,w>',
      "per-image shape where the model leaves it symbolic (in the model's layout)",
      parseShape,
    )
    .addOption(layoutOption())
    .addHelpText(
      'after',
      '\nExit code 1 when the model does not work for all four.\n\nExample:\n  $ nfp check model.onnx\n',
    )
    .action(async (model: string, options: { json?: boolean; inputShape?: number[]; layout?: Layout }) => {
      const check = await checkModel(model, {
        ...(options.layout ? { layout: options.layout } : {}),
        ...(options.inputShape ? { inputShape: options.inputShape } : {}),
      });
      process.stdout.write(options.json === true ? `${JSON.stringify(check)}\n` : formatCheck(check));
      if (!purposes.every((p) => check.works[p])) process.exitCode = 1;
    });
}
