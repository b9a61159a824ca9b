// Taps: which intermediate tensors make up the activation vector a(x), resolved from user names
// (node names or tensor names), or by rule: 'auto' is the authors' code's choice (the penultimate
// feature vector, i.e. the input of the final linear layer, and the logits); 'wide' is every
// activation and pooling output plus the penultimate features and the logits, the choice that
// measured best (docs/results.md). `TapRequest`s name a tensor with a recorded neuron sample, as a
// bank stores them (see tap-sample.ts).
import type { Attribute, Graph, Node } from './onnx-schema.js';
import type { TapSample } from './tap-sample.js';

/** A tapped tensor, optionally only some of its neurons (as a bank records them). */
export interface TapRequest {
  tensor: string;
  sample?: TapSample;
}

/**
 * 'auto': penultimate features + logits. 'wide': every activation and pooling output + the
 * penultimate features + logits (see wideTapTensors). 'default': the model card's detector taps
 * when the model file has a card beside it, else 'wide'. Or names of nodes or tensors.
 */
export type TapSpec = 'auto' | 'wide' | 'default' | Array<string | TapRequest>;

export class TapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TapError';
  }
}

// Ops that pass a tensor through unchanged in meaning, skipped when walking back from the logits.
const PASS_THROUGH = new Set(['Identity', 'Flatten', 'Reshape', 'Squeeze', 'Dropout', 'Cast']);

function producers(graph: Graph): Map<string, Node> {
  const map = new Map<string, Node>();
  for (const node of graph.node ?? []) for (const out of node.output ?? []) map.set(out, node);
  return map;
}

/**
 * The input tensor of the final linear layer that produces `logits`: walks back through bias
 * adds and pass-through ops to a Gemm or MatMul, and returns its non-constant input.
 */
export function penultimateTensor(graph: Graph, logits: string): string | undefined {
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const constants = new Set((graph.node ?? []).filter((n) => n.opType === 'Constant').flatMap((n) => n.output ?? []));
  const isData = (name: string) => !initializers.has(name) && !constants.has(name);
  const byOutput = producers(graph);
  let tensor = logits;
  for (let steps = 0; steps < 8; steps++) {
    const node = byOutput.get(tensor);
    if (node === undefined) return undefined;
    const dataInputs = (node.input ?? []).filter((i) => i !== '' && isData(i));
    if (node.opType === 'Gemm' || node.opType === 'MatMul') return dataInputs[0];
    if ((node.opType === 'Add' || PASS_THROUGH.has(node.opType)) && dataInputs.length === 1) {
      tensor = dataInputs[0]!;
      continue;
    }
    return undefined;
  }
  return undefined;
}

/** Resolves a tap spec ('default' already replaced by the caller) to tensor names, in order, without duplicates. */
export function resolveTaps(graph: Graph, spec: Exclude<TapSpec, 'default'>, logits: string): string[] {
  if (spec === 'wide') return wideTapTensors(graph, logits);
  if (spec === 'auto') {
    const penultimate = penultimateTensor(graph, logits);
    if (penultimate === undefined) {
      throw new TapError(
        `cannot find the final linear layer before ` +
          `'${logits}' for automatic taps; name the layers to tap (see \`nfp layers\`)`,
      );
    }
    return [penultimate, logits];
  }
  // An empty list taps nothing: plain classification, with an empty activation matrix.
  const tensors = new Set<string>([logits]);
  for (const node of graph.node ?? []) for (const o of node.output ?? []) tensors.add(o);
  const nodeOutput = new Map<string, string>();
  for (const node of graph.node ?? []) if (node.name && node.output?.[0]) nodeOutput.set(node.name, node.output[0]);
  const out: string[] = [];
  for (const item of spec) {
    const name = typeof item === 'string' ? item : item.tensor;
    const tensor = tensors.has(name) ? name : nodeOutput.get(name);
    if (tensor === undefined) {
      const near = closest(name, [...nodeOutput.keys()]);
      throw new TapError(
        `unknown tap '${name}': no node or tensor of that ` +
          `name${near.length ? ` (did you mean ${near.map((n) => `'${n}'`).join(', ')}?)` : ''}; \`nfp layers ` +
          `<model>\` lists them`,
      );
    }
    if (!out.includes(tensor)) out.push(tensor);
  }
  return out;
}

/** Up to three names sharing the longest prefix with `name` (at least half of it), for hints. */
function closest(name: string, names: string[]): string[] {
  const common = (a: string, b: string) => {
    let i = 0;
    while (i < a.length && i < b.length && a[i] === b[i]) i++;
    return i;
  };
  return names
    .map((n) => ({ n, score: common(name, n) }))
    .filter((c) => c.score >= Math.ceil(name.length / 2))
    .sort((a, b) => b.score - a.score)
    .slice(0, 3)
    .map((c) => c.n);
}

// Activation ops whose output is tapped by 'wide'. Sigmoid and HardSigmoid count only as the gate of
// x * sigmoid(x) (SiLU) and x * hardsigmoid(x) (hard-swish as exporters write it): alone they are
// usually gates (squeeze-and-excitation), not activations.
const ACTIVATIONS = new Set(['Relu', 'Clip', 'LeakyRelu', 'PRelu', 'Elu', 'Selu', 'Celu', 'HardSwish', 'Gelu', 'Mish']);
const GATES = new Set(['Sigmoid', 'HardSigmoid']);
const POOLS = new Set(['MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'LpPool', 'GlobalLpPool']);

function attribute(node: Node, name: string): Attribute | undefined {
  return node.attribute?.find((a) => a.name === name);
}

/**
 * The 'wide' taps, in graph order: the output of every activation (Relu, Clip as ReLU6, LeakyRelu,
 * PRelu, Elu, Selu, Celu, HardSwish, Gelu, Mish, SiLU as x * Sigmoid(x), hard-swish as x *
 * HardSigmoid(x), GELU written with Erf or Tanh), every pooling output (MaxPool, AveragePool, LpPool
 * and their global forms, and ReduceMean over the two spatial axes), the penultimate features,
 * the first linear layer's output where no activation follows it (uncoveredStem) and the logits.
 */
export function wideTapTensors(graph: Graph, logits: string): string[] {
  const nodes = graph.node ?? [];
  const byOutput = producers(graph);
  const readers = new Map<string, Node[]>();
  for (const node of nodes) for (const i of node.input ?? []) readers.set(i, [...(readers.get(i) ?? []), node]);
  const tapped = new Set<string>();
  for (const node of nodes) {
    const out = node.output?.[0];
    if (out === undefined || out === '') continue;
    if (ACTIVATIONS.has(node.opType) || POOLS.has(node.opType)) tapped.add(out);
    else if (node.opType === 'ReduceMean' && spatialMean(node)) tapped.add(out);
    else if (node.opType === 'Mul' && isGatedActivation(node, byOutput)) tapped.add(out);
    else if ((node.opType === 'Erf' || node.opType === 'Tanh') && isGeluCore(node, readers)) {
      const end = geluOutput(node, readers);
      if (end !== undefined) tapped.add(end);
    }
  }
  const penultimate = penultimateTensor(graph, logits);
  if (penultimate !== undefined) tapped.add(penultimate);
  const stem = uncoveredStem(nodes, readers, tapped);
  if (stem !== undefined && stem !== logits) tapped.add(stem);
  // Graph order (producers before readers), the logits last.
  const order = nodes.flatMap((n) => n.output ?? []).filter((o) => tapped.has(o) && o !== logits);
  return [...new Set(order), logits];
}

// Ops a stem's output may pass through, one reader each, on its way to the activation that covers it:
// normalization, a bias or scale, and reshaping.
const STEM_PASS = new Set([
  'BatchNormalization',
  'InstanceNormalization',
  'LayerNormalization',
  'GroupNormalization',
  'Add',
  'Sub',
  'Mul',
  'Div',
  'Reshape',
  'Transpose',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Identity',
  'Cast',
]);

/**
 * The output of the model's first linear layer (Conv, MatMul or Gemm in graph order) when no tapped
 * activation follows it: a ViT's patch embedding, whose first nonlinearity sits inside its first
 * block. A CNN's first convolution feeds a ReLU (through a BatchNorm or a bias at most), which the
 * wide taps hold already. On the committed ViT the patch embedding raised held-out AUC on the
 * gradient attacks by 0.002-0.009 (docs/results.md, *The ViT's patch embedding*); on the CNN the
 * first layer holds most of the strongest fingerprints.
 */
function uncoveredStem(nodes: readonly Node[], readers: Map<string, Node[]>, tapped: Set<string>): string | undefined {
  const first = nodes.find((n) => n.opType === 'Conv' || n.opType === 'MatMul' || n.opType === 'Gemm');
  const stem = first?.output?.[0];
  if (stem === undefined || stem === '' || tapped.has(stem)) return undefined;
  let tensor = stem;
  for (let steps = 0; steps < 8; steps++) {
    const next = readers.get(tensor) ?? [];
    if (next.some((n) => tapped.has(n.output?.[0] ?? ''))) return undefined;
    if (next.length !== 1 || !STEM_PASS.has(next[0]!.opType)) break;
    tensor = next[0]!.output?.[0] ?? '';
    if (tensor === '') break;
  }
  return stem;
}

/** ReduceMean over axes {2, 3} (or {-2, -1}) of an NCHW tensor: global average pooling written as a mean. */
function spatialMean(node: Node): boolean {
  const axes = attribute(node, 'axes')?.ints?.map(Number);
  if (axes === undefined || axes.length !== 2) return false;
  const sorted = [...axes].sort((a, b) => a - b);
  return (sorted[0] === 2 && sorted[1] === 3) || (sorted[0] === -2 && sorted[1] === -1);
}

/** x * Sigmoid(x) or x * HardSigmoid(x): one input is a gate computed from the other. */
function isGatedActivation(node: Node, byOutput: Map<string, Node>): boolean {
  const [a, b] = node.input ?? [];
  if (a === undefined || b === undefined) return false;
  const gateOf = (gate: string, x: string) => {
    const g = byOutput.get(gate);
    return g !== undefined && GATES.has(g.opType) && g.input?.[0] === x;
  };
  return gateOf(b, a) || gateOf(a, b);
}

/** Erf or Tanh followed by Add(1): the core of GELU, 0.5 x (1 + erf(x / sqrt 2)) or its tanh form. */
function isGeluCore(node: Node, readers: Map<string, Node[]>): boolean {
  const next = readers.get(node.output![0]!) ?? [];
  return next.length === 1 && next[0]!.opType === 'Add';
}

/** The last of the Add/Mul chain after a GELU's Erf or Tanh: the GELU's output. */
function geluOutput(node: Node, readers: Map<string, Node[]>): string | undefined {
  let tensor = node.output![0]!;
  for (let steps = 0; steps < 3; steps++) {
    const next = readers.get(tensor) ?? [];
    if (next.length !== 1 || (next[0]!.opType !== 'Add' && next[0]!.opType !== 'Mul')) break;
    tensor = next[0]!.output![0]!;
  }
  return tensor === node.output![0] ? undefined : tensor;
}
