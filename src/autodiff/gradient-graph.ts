// Builds the bytes of a gradient model: the original model with backward nodes, seed inputs
// and the input-gradient output appended (see builder.ts), for classifiers and for any graph.
import { decodeModel, realInputs } from '../model/onnx.js';
import type { Graph } from '../model/onnx-schema.js';
import { ElemType } from '../model/onnx-schema.js';
import type { SessionSettings } from '../model/session.js';
import { GraphBuilder, defaultOpset } from './builder.js';
import { GradientError } from './rules/index.js';
import { addClassifierSeeds, GradientOutputs } from './seeds.js';
import type { SeedLayout, TapSeeding } from './seeds.js';
import { probeShapes } from './shapes.js';
import type { Probed } from './shapes.js';
import { addBackward } from './transform.js';
import type { GradientProblem } from './transform.js';

/** How the backward pass differentiates; the default (no option) is the exact gradient. */
export interface BackwardOptions {
  /**
   * BPDA (Athalye et al. 2018) for ReLUs: the backward pass of every Relu multiplies by sigmoid(x / T)
   * of its input x, the derivative of T softplus(x / T), instead of the step 1[x > 0], so a gradient
   * reaches neurons a ReLU has switched off. The forward pass (logits, activations) stays exact; max
   * pools after a Relu pick their winners by the Relu's input. Smaller T: closer to the exact step.
   */
  reluSurrogate?: { temperature: number };
}

/** The Relu temperature of `options`, validated; undefined for the exact gradient. */
export function reluTemperature(options: BackwardOptions | undefined): number | undefined {
  const surrogate = options?.reluSurrogate;
  if (surrogate === undefined) return undefined;
  const t = (surrogate as { temperature?: unknown } | null)?.temperature;
  if (typeof t !== 'number' || !Number.isFinite(t) || t <= 0) {
    const received = surrogate === null ? 'null' : typeof t === 'string' ? `'${t}'` : String(t);
    throw new GradientError(`Expected a finite number > 0 for reluSurrogate.temperature but received ${received}`);
  }
  return t;
}

interface Parsed {
  graph: Graph;
  opset: number;
}

function parse(bytes: Uint8Array, source: string): Parsed {
  const model = decodeModel(bytes, source);
  const opset = defaultOpset(model.opsetImport);
  if (opset < 7)
    throw new GradientError(
      `${source}: gradients need a model with opset >= 7, as ONNX Runtime does (it imports opset ${opset})`,
    );
  return { graph: model.graph, opset };
}

/** Appends the backward pass and `nfp_input_grad`; `extraOutputs` become graph outputs too. */
function finish(
  bytes: Uint8Array,
  graph: Graph,
  b: GraphBuilder,
  input: string,
  seeds: Map<string, string[]>,
  probed: Probed,
  extraOutputs: string[],
  backward: BackwardOptions | undefined,
): Uint8Array {
  const T = reluTemperature(backward);
  const grad = addBackward(graph, b, { input, seeds, ...probed, ...(T !== undefined ? { reluTemperature: T } : {}) });
  b.node('Identity', [grad], {}, [GradientOutputs.grad]);
  b.addOutput(GradientOutputs.grad);
  const declared = new Set((graph.output ?? []).map((o) => o.name));
  for (const t of new Set(extraOutputs)) if (!declared.has(t)) b.addOutput(t);
  return b.appendTo(bytes);
}

/**
 * A classifier's gradient model: seeds at the logits and, with `tapSeeds` (default; or 'quadratic', see
 * TapSeeding), at the taps (seeds.ts); logits and taps as outputs either way. `backward`: BackwardOptions
 * (default exact).
 */
export async function classifierGradientBytes(
  bytes: Uint8Array,
  source: string,
  input: { name: string; shape: number[]; batch?: number },
  layout: SeedLayout,
  settings: SessionSettings = {},
  tapSeeds: TapSeeding = true,
  backward: BackwardOptions = {},
): Promise<Uint8Array> {
  reluTemperature(backward); // a bad option fails before the probe run
  const { graph, opset } = parse(bytes, source);
  const probed = await probeShapes(bytes, graph, input, settings);
  const b = new GraphBuilder(graph, opset);
  const seeds = addClassifierSeeds(b, layout, tapSeeds);
  const outputs = [layout.logits, ...layout.taps.map((t) => t.tensor)];
  return finish(bytes, graph, b, input.name, seeds, probed, outputs, backward);
}

/**
 * Every reason the classifier's gradient model cannot be built (ops without a rule, unsupported
 * attributes, weights that depend on the input...), all of them, from one probe and one walk of
 * the transform; empty when it can. The opset is checked first (nothing else is then tried).
 */
export async function classifierGradientProblems(
  bytes: Uint8Array,
  source: string,
  input: { name: string; shape: number[]; batch?: number },
  layout: SeedLayout,
  settings: SessionSettings = {},
): Promise<GradientProblem[]> {
  let parsed: Parsed;
  try {
    parsed = parse(bytes, source);
  } catch (error) {
    if (error instanceof GradientError) return [{ message: error.message }];
    throw error;
  }
  const probed = await probeShapes(bytes, parsed.graph, input, settings);
  const b = new GraphBuilder(parsed.graph, parsed.opset);
  const seeds = addClassifierSeeds(b, layout, true);
  const problems: GradientProblem[] = [];
  addBackward(parsed.graph, b, { input: input.name, seeds, ...probed }, problems);
  const order = new Map((parsed.graph.node ?? []).map((n, i) => [n, i]));
  return problems.sort((p, q) => (p.node ? order.get(p.node)! : -1) - (q.node ? order.get(q.node)! : -1));
}

/**
 * Any graph: for each tensor i a new input `nfp_seed_<i>` of its shape; the output
 * `nfp_input_grad` is d sum_i sum(seed_i * tensor_i) / d input. The tensors become outputs too.
 * `reluSurrogate`: as BackwardOptions.
 */
export async function seededGradientBytes(
  bytes: Uint8Array,
  options: { inputShape: number[]; tensors: string[]; input?: string; settings?: SessionSettings } & BackwardOptions,
): Promise<{ bytes: Uint8Array; seedInputs: string[] }> {
  reluTemperature(options);
  const { graph, opset } = parse(bytes, 'model');
  const input = options.input ?? realInputs(graph)[0]?.name;
  if (input === undefined) throw new GradientError('model has no input');
  const probed = await probeShapes(bytes, graph, { name: input, shape: options.inputShape }, options.settings);
  const shapes = probed.shapes;
  const b = new GraphBuilder(graph, opset);
  const seeds = new Map<string, string[]>();
  const seedInputs = options.tensors.map((tensor, i) => {
    const shape = shapes.get(tensor);
    if (shape === undefined) throw new GradientError(`unknown tensor '${tensor}' to seed`);
    const name = `nfp_seed_${i}`;
    b.addInput(name, ElemType.FLOAT, ['batch', ...shape.slice(1)]);
    seeds.set(tensor, [...(seeds.get(tensor) ?? []), name]);
    return name;
  });
  return { bytes: finish(bytes, graph, b, input, seeds, probed, options.tensors, options), seedInputs };
}
