// Taps: which intermediate tensors make up the activation vector a(x), resolved from user names
// (node names or tensor names) or chosen automatically as the authors' code did: the
// penultimate feature vector (the input of the final linear layer) and the logits.
import type { Graph, Node } from './onnx-schema.js';

export type TapSpec = 'auto' | string[];

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

/** Resolves a tap spec to tensor names, in order, without duplicates. */
export function resolveTaps(graph: Graph, spec: TapSpec, logits: string): string[] {
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
  for (const name of spec) {
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
