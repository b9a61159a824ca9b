// Whether a model works for predict, attack, fit and detect, found without running any of them: its
// input (name, layout, batch), classes and output kind, opset, every node whose gradient cannot be
// built (all of them), the recommended taps with their neuron counts, and the memory a fit would
// need. `nfp check` shows it; the long experiments (attack, fit, evaluate) run it first
// (requireModel) and stop before reading any data when the model cannot do what they ask.
import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

import { classifierGradientProblems } from '../autodiff/index.js';
import { defaultOpset } from '../autodiff/builder.js';
import { defaultImagesPerClass } from '../bank/index.js';
import { Classifier, decodeModel, neuronBudget, readImageInput, sha256 } from '../model/index.js';
import type { Layout, LayerInfo, OutputKind, TapSpec } from '../model/index.js';
import type { ImageBatch } from '../data/index.js';
import { isFolder, openData } from './data.js';
import { defaultFit, fitBatchSize } from './defaults.js';

export type Purpose = 'predict' | 'attack' | 'fit' | 'detect';
export const purposes: readonly Purpose[] = ['predict', 'attack', 'fit', 'detect'];

export interface CheckOptions {
  layout?: Layout;
  inputShape?: number[];
  /** The taps a fit would take (default 'default': the model card's, else 'wide' under the fit's neuron budget). */
  taps?: TapSpec;
  /** The fit the memory estimate is for (default: `nfp fit`'s defaults). */
  fit?: FitSize;
}

/** What a fit holds in memory at once, as `nfp fit` runs it (its defaults unless given). */
export interface FitSize {
  families: number;
  cleanPerClass: number;
  attackedPerClass: number;
  /** Images attacked together at most (`nfp fit` takes fewer for large inputs: fitBatchSize). */
  attackBatch: number;
}

export const fitDefaults: FitSize = {
  families: defaultFit.attacks.length,
  cleanPerClass: defaultImagesPerClass.clean,
  attackedPerClass: defaultImagesPerClass.attacked,
  attackBatch: defaultFit.batchSize,
};

export interface FitMemory {
  /** Activations held at once: one class's clean and attacked rows (the fit goes a class at a time). */
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
  /** The taps a fit takes, and the rule that chose them ('card', 'wide', 'auto', 'named'). */
  taps?: Array<{ tensor: string; neurons: number }>;
  tapRule?: string;
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
  const activations = (fit.cleanPerClass + fit.families * fit.attackedPerClass) * neurons * float;
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
    const fit = options.fit ?? fitDefaults;
    try {
      const screenRows = fit.cleanPerClass + fit.families * fit.attackedPerClass;
      const tapped = await Classifier.load(model, {
        ...loadOptions,
        taps: options.taps ?? 'default',
        neuronBudget: neuronBudget(screenRows),
      });
      try {
        check.taps = tapped.taps.map((t) => ({ tensor: t.tensor, neurons: t.size }));
        check.tapRule = tapped.tapPlan.rule;
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
      const batch = classifier.fixedBatch ?? Math.min(fit.attackBatch, fitBatchSize(classifier.inputShape));
      check.fitMemory = fitMemory(perImage, classifier.classes, neurons, layers, { ...fit, attackBatch: batch });
    }
  } finally {
    await classifier.release();
  }
  return check;
}

/** The problems grouped by message (the node named in each, up to three per group). */
export function groupedProblems(check: ModelCheck): string[] {
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

/** A model that cannot do what a command asks of it: the check's findings say why. */
export class ModelCheckError extends Error {
  constructor(
    message: string,
    readonly check: ModelCheck,
  ) {
    super(message);
    this.name = 'ModelCheckError';
  }
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
    throw new ModelCheckError(
      `${check.source} cannot be used for ${purpose}: ${why}\n(nfp check ${model} shows everything)`,
      check,
    );
  }
  return check;
}

/**
 * requireModel as an experiment runs it before reading its data: a model that leaves its input dims
 * symbolic is checked at the shape of the data (a tensor file's header, or images in memory).
 */
export async function requireModelFor(
  model: string,
  purpose: Purpose,
  data: string | ImageBatch,
  options: CheckOptions = {},
): Promise<ModelCheck> {
  let shape: number[] | undefined;
  if (options.inputShape === undefined) {
    const input = await readImageInput(model, options.layout).catch(() => undefined);
    if (input?.shape.some((d) => Number.isNaN(d))) {
      if (typeof data !== 'string') shape = data.dims.slice(1);
      else if (!(await isFolder(data))) shape = (await openData(data)).reader.dims.slice(1);
    }
  }
  return requireModel(model, purpose, { ...options, ...(shape ? { inputShape: shape } : {}) });
}
