// `nfp check <model>`: one screen saying whether a model works for predict, attack, fit and detect:
// its input (name, layout, batch), classes and output kind, opset, every node whose gradient cannot
// be built (all of them), the recommended taps with their neuron counts, and the memory a fit would
// need. `nfp attack`, `fit` and `evaluate` run the same check first (requireModel) and stop before
// loading any data when the model cannot do what they ask.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import type { Command } from 'commander';

import { classifierGradientProblems } from '../autodiff/index.js';
import { Classifier, decodeModel, readImageInput, sha256 } from '../model/index.js';
import type { Layout, LayerInfo, OutputKind } from '../model/index.js';
import { defaultOpset } from '../autodiff/builder.js';
import { layoutOption, parseShape } from './parse.js';
import { formatTable } from './table.js';

export type Purpose = 'predict' | 'attack' | 'fit' | 'detect';
const purposes: readonly Purpose[] = ['predict', 'attack', 'fit', 'detect'];

export interface CheckOptions {
  layout?: Layout;
  inputShape?: number[];
  /** The fit the memory estimate is for (default: `nfp fit`'s defaults). */
  fit?: FitSize;
}

/** What a fit holds in memory at once, as `nfp fit` runs it (its defaults unless given). */
export interface FitSize {
  families: number;
  cleanPerClass: number;
  attackedPerClass: number;
  /** Images attacked together (`nfp fit` loads the gradient model at batch 128). */
  attackBatch: number;
}

export const fitDefaults: FitSize = { families: 2, cleanPerClass: 400, attackedPerClass: 400, attackBatch: 128 };

export interface FitMemory {
  /** Activations held at once: every family's attacked images of all classes, and one class's clean and attacked. */
  activations: number;
  /** The images attacked at once (copies in, out and in flight), four times the untargeted pool. */
  images: number;
  /** The gradient model's forward and backward tensors for one attack batch (twice its forward's, a bound). */
  gradient: number;
  /** The attack batch the gradient part is for (the model's own when it fixes one). */
  batch: number;
  total: number;
}

export interface ModelCheck {
  source: string;
  sha256: string;
  megabytes: number;
  opset: number;
  producer?: string;
  input?: { name: string; layout: Layout; shape: number[]; batch: number | undefined };
  output?: { tensor: string; kind: OutputKind; logits: string; classes: number };
  /** Every reason the gradient cannot be built; empty when it can. */
  gradientProblems: Array<{ op: string; node: string; message: string }>;
  taps?: Array<{ tensor: string; neurons: number }>;
  tapError?: string;
  fitMemory?: FitMemory;
  /** Why the model does not load at all (then nothing works). */
  loadError?: string;
  works: Record<Purpose, boolean>;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Bytes a fit needs at its peak, part by part (an estimate; the data set itself comes on top). */
export function fitMemory(
  perImage: number,
  classes: number,
  neurons: number,
  layers: LayerInfo[],
  fit: FitSize,
): FitMemory {
  const float = 4;
  const activations =
    (fit.families * fit.attackedPerClass * classes + fit.cleanPerClass + fit.families * fit.attackedPerClass) *
    neurons *
    float;
  const images = 4 * fit.attackedPerClass * classes * perImage * float;
  const forward = layers.reduce((sum, l) => sum + (l.dtype === 'float32' ? (l.neurons ?? 0) : 0), perImage);
  const gradient = 2 * fit.attackBatch * forward * float;
  return { activations, images, gradient, batch: fit.attackBatch, total: activations + images + gradient };
}

/** Runs every check; never throws for a model that is merely unsupported (the findings say why). */
export async function checkModel(model: string, options: CheckOptions = {}): Promise<ModelCheck> {
  const source = basename(model);
  const bytes = new Uint8Array(await readFile(model));
  const decoded = decodeModel(bytes, source);
  const check: ModelCheck = {
    source,
    sha256: sha256(bytes),
    megabytes: statSync(model).size / 2 ** 20,
    opset: defaultOpset(decoded.opsetImport),
    ...(decoded.producerName ? { producer: `${decoded.producerName} ${decoded.producerVersion ?? ''}`.trim() } : {}),
    gradientProblems: [],
    works: { predict: false, attack: false, fit: false, detect: false },
  };
  const loadOptions = {
    ...(options.layout ? { layout: options.layout } : {}),
    ...(options.inputShape ? { inputShape: options.inputShape } : {}),
  };
  let classifier: Classifier;
  try {
    await readImageInput(bytes, options.layout); // the input's own errors first, named
    classifier = await Classifier.load(model, { ...loadOptions, taps: [] });
  } catch (error) {
    check.loadError = message(error);
    return check;
  }
  try {
    check.input = {
      name: classifier.inputName,
      layout: classifier.layout,
      shape: classifier.inputShape,
      batch: classifier.fixedBatch,
    };
    check.output = {
      tensor: decoded.graph.output![0]!.name,
      kind: classifier.outputKind,
      logits: classifier.logitsName,
      classes: classifier.classes,
    };
    check.works.predict = true;
    const found = await classifierGradientProblems(
      bytes,
      source,
      {
        name: classifier.inputName,
        shape: classifier.inputShape,
        ...(classifier.fixedBatch !== undefined ? { batch: classifier.fixedBatch } : {}),
      },
      { logits: classifier.logitsName, classes: classifier.classes, taps: [] },
    );
    check.gradientProblems = found.map((p) => ({
      op: p.node?.opType ?? '',
      node: p.node?.name ?? '',
      message: p.message,
    }));
    check.works.attack = found.length === 0;
    let layers: LayerInfo[] = [];
    try {
      const tapped = await Classifier.load(model, { ...loadOptions, taps: 'auto' });
      try {
        check.taps = tapped.taps.map((t) => ({ tensor: t.tensor, neurons: t.size }));
        layers = await tapped.layers();
      } finally {
        await tapped.release();
      }
    } catch (error) {
      check.tapError = message(error);
    }
    const neurons = (check.taps ?? []).reduce((n, t) => n + t.neurons, 0);
    check.works.detect = neurons > 0 && classifier.classes >= 2;
    check.works.fit = check.works.attack && check.works.detect;
    if (neurons > 0) {
      const perImage = classifier.inputShape.reduce((a, v) => a * v, 1);
      const fit = options.fit ?? fitDefaults;
      const batch = classifier.fixedBatch ?? fit.attackBatch;
      check.fitMemory = fitMemory(perImage, classifier.classes, neurons, layers, { ...fit, attackBatch: batch });
    }
  } finally {
    await classifier.release();
  }
  return check;
}

const size = (bytes: number) =>
  bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GB` : `${Math.max(bytes / 2 ** 20, 0.1).toFixed(1)} MB`;

/** The problems grouped by message (the node named in each, up to three per group). */
function groupedProblems(check: ModelCheck): string[] {
  const groups = new Map<string, string[]>();
  for (const p of check.gradientProblems) {
    const label = `${p.op} node '${p.node}'`;
    const key = !p.node
      ? p.message
      : p.message.startsWith('no gradient rule')
        ? `${p.op}: no gradient rule`
        : `${p.op}: ${p.message.replace(`${label}: `, '')}`;
    groups.set(key, [...(groups.get(key) ?? []), p.node]);
  }
  return [...groups].map(([key, nodes]) => {
    const named = nodes.filter((n) => n !== '');
    const shown = named.slice(0, 3).map((n) => `'${n}'`);
    const more = named.length > 3 ? ` and ${named.length - 3} more` : '';
    return named.length > 0
      ? `${key} (${named.length} node${named.length > 1 ? 's' : ''}: ${shown.join(', ')}${more})`
      : key;
  });
}

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
      rows.push(['taps', `recommended (auto): ${total.toLocaleString('en-US')} neurons`]);
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

/**
 * The check that long commands run before loading data: throws, with the check's findings, when
 * the model cannot do `purpose`.
 */
export async function requireModel(model: string, purpose: Purpose, options: CheckOptions = {}): Promise<ModelCheck> {
  const check = await checkModel(model, options);
  if (!check.works[purpose]) {
    const why =
      check.loadError ??
      (check.gradientProblems.length > 0 && purpose !== 'detect'
        ? `its input gradient cannot be built:\n${groupedProblems(check)
            .map((p) => `  - ${p}`)
            .join('\n')}`
        : `it has no taps to fingerprint (${check.tapError ?? 'no neurons'})`);
    throw new Error(`${check.source} cannot be used for ${purpose}: ${why}\n(nfp check ${model} shows everything)`);
  }
  return check;
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
