// `nfp layers <model.onnx>`: every node output with its per-image shape and neuron count, so a
// user can choose taps by name; with --cost, what reading from each tapped layer costs a run.
import type { Command } from 'commander';

import { Classifier, measureReadoutCost } from '../model/index.js';
import type { Layout, ReadoutCost, TapSpec } from '../model/index.js';
import { layoutOption, parsePositiveInt, parseShape, parseTaps } from './parse.js';
import { formatTable } from './table.js';

export function registerLayersCommand(program: Command): void {
  program
    .command('layers')
    .argument('<model>', 'an ONNX image classifier')
    .description('list the layers of a model with their output shapes and neuron counts, to choose taps')
    .option('--json', 'one JSON object per layer')
    .option('--input-shape <c,h,w>', 'input shape when the model leaves it symbolic', parseShape)
    .addOption(layoutOption())
    .option(
      '--cost',
      'also measure what reading from each tapped layer costs a run over the plain model, on this machine ' +
        '(a few seconds per layer)',
    )
    .option(
      '--taps <layers>',
      'with --cost: the layers measured, as nfp fit --taps (default: what nfp fit taps)',
      parseTaps,
    )
    .option('--batch <n>', 'with --cost: images per run', parsePositiveInt, 32)
    .option('--neurons <n>', 'with --cost: neurons read from each layer', parsePositiveInt, 100)
    .addHelpText(
      'after',
      [
        '\nExamples:',
        '  $ nfp layers models/fmnist-cnn.onnx',
        '  $ nfp layers models/fmnist-cnn.onnx --cost   # what reading from each tapped layer costs a run\n',
      ].join('\n'),
    )
    .action(async (model: string, options: LayersOptions, command: Command) => {
      if (options.cost !== true && options.taps !== undefined)
        command.error('error: --taps goes with --cost (nfp layers lists every layer anyway)', {
          exitCode: 2,
          code: 'nfp.usage',
        });
      await layersCommand(model, options);
    });
}

export interface LayersOptions {
  json?: boolean;
  inputShape?: number[];
  layout?: Layout;
  /** Measure the readout cost of the tapped layers (`taps`, default: what nfp fit taps). */
  cost?: boolean;
  taps?: TapSpec;
  batch?: number;
  neurons?: number;
}

export async function layersCommand(model: string, options: LayersOptions): Promise<void> {
  const load = {
    ...(options.inputShape ? { inputShape: options.inputShape } : {}),
    ...(options.layout ? { layout: options.layout } : {}),
  };
  const classifier = await Classifier.load(model, load);
  let costs = new Map<string, ReadoutCost>();
  let together: ReadoutCost | undefined;
  try {
    const layers = await classifier.layers();
    if (options.cost === true) {
      const measured =
        options.taps === undefined ? classifier.taps.map((t) => t.tensor) : await tapNames(model, load, options.taps);
      process.stderr.write(`measuring the readout cost of ${measured.length} layers ...\n`);
      const readout = await measureReadoutCost(model, {
        ...load,
        layers: measured,
        ...(options.batch !== undefined ? { batch: options.batch } : {}),
        ...(options.neurons !== undefined ? { neurons: options.neurons } : {}),
      });
      costs = new Map(readout.layers.map((r) => [r.layers[0]!, r]));
      together = readout.together;
    }
    if (options.json === true) {
      for (const l of layers) {
        const c = costs.get(l.output);
        process.stdout.write(`${JSON.stringify(c === undefined ? l : { ...l, readoutCost: costOf(c) })}\n`);
      }
      // The readout of every measured layer at once: a line of its own, told apart by its key.
      if (together !== undefined)
        process.stdout.write(
          `${JSON.stringify({ readoutCostTogether: { layers: together.layers, ...costOf(together) } })}\n`,
        );
      return;
    }
    const auto = new Set(classifier.taps.map((t) => t.tensor));
    const batch = classifier.fixedBatch ?? 'N';
    const shape = classifier.inputShape.join(', ');
    const input = `${classifier.inputName} [${batch}, ${shape}] ${classifier.layout.toUpperCase()}`;
    process.stdout.write(
      `${classifier.source}  sha256 ${classifier.sha256.slice(0, 16)}…  input ${input}  ` +
        `${classifier.classes} classes\n\n`,
    );
    const header = ['name', 'op', 'output', 'shape', 'neurons', 'auto tap'];
    if (costs.size > 0) header.push('readout cost');
    process.stdout.write(
      formatTable(
        header,
        layers.map((l) => {
          const row = [
            l.name,
            l.opType,
            l.output,
            l.shape ? `[${l.shape.join(', ')}]` : `(${l.dtype ?? '?'})`,
            l.neurons?.toString() ?? '',
            auto.has(l.output) ? 'yes' : '',
          ];
          if (costs.size > 0) row.push(formatCost(costs.get(l.output)));
          return row;
        }),
      ),
    );
    const first = costs.values().next().value;
    if (together !== undefined)
      process.stdout.write(
        `\nall ${together.layers.length} layers together (${together.neurons} neurons): ${formatCost(together)}\n`,
      );
    if (first !== undefined)
      process.stdout.write(
        `\nreadout cost: a run of ${first.batch} images that also reads ${options.neurons ?? 100} neurons of ` +
          `the layer (gathered in the graph, as detect() reads its bank's), over a run of the plain model ` +
          `(${first.plainMs.toFixed(2)} ms): medians of alternating blocks on this machine, now. A bank whose ` +
          'fingerprints sit in cheap layers makes detect() cheaper (docs/results.md, Taps and speed).\n',
      );
  } finally {
    await classifier.release();
  }
}

async function tapNames(
  model: string,
  load: { inputShape?: number[]; layout?: Layout },
  taps: TapSpec,
): Promise<string[]> {
  const tapped = await Classifier.load(model, { ...load, taps });
  await tapped.release();
  return tapped.taps.map((t) => t.tensor);
}

function costOf(c: ReadoutCost) {
  return {
    neurons: c.neurons,
    fetched: c.fetched,
    batch: c.batch,
    plainMs: c.plainMs,
    readoutMs: c.readoutMs,
    cost: c.cost,
  };
}

function formatCost(c: ReadoutCost | undefined): string {
  if (c === undefined) return '';
  const pct = `${c.cost >= 0 ? '+' : ''}${(100 * c.cost).toFixed(1)}%`;
  return c.fetched >= c.layerNeurons ? `${pct} (whole)` : pct;
}
