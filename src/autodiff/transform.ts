// The reverse-mode transform: from gradients seeded at some tensors, walks the graph's nodes in
// reverse topological order back to the input, applying each op's vector-Jacobian rule, and
// sums the gradients of tensors that feed several consumers.
import type { Graph, Node } from '../model/onnx-schema.js';
import type { GraphBuilder } from './builder.js';
import { constantLookup } from './constants.js';
import { GradientError, rules } from './rules/index.js';
import { nodeLabel } from './rules/context.js';

export interface TransformSpec {
  /** The tensor to differentiate with respect to (the image input). */
  input: string;
  /** Seeded gradients: tensor name -> gradient tensors (already in the builder) to add there. */
  seeds: Map<string, string[]>;
  /** Shapes with batch size 1 of the data tensors (probed) and of constants. */
  shapes: ReadonlyMap<string, number[]>;
  /** Probed values of batch-independent integer tensors, used as constants by the rules. */
  constants?: ReadonlyMap<string, number[]>;
  /** The float tensors (probed), which a node without a usable rule would pass gradients to. */
  floats?: ReadonlySet<string>;
  /** Per tensor, the axes whose size follows the batch size, where probed (shapes.ts). */
  batchAxes?: ReadonlyMap<string, number[]>;
  /** The model fixes its batch size: no axis has a size that varies. */
  fixedBatch?: boolean;
  /** Relu backward as sigmoid(x / T) of its input x (BackwardOptions.reluSurrogate); absent: exact. */
  reluTemperature?: number | undefined;
}

/** A node whose gradient cannot be built, and why. */
export interface GradientProblem {
  /** The node, or undefined when the problem is the graph's (no gradient reaches the input). */
  node?: Node;
  message: string;
}

// Ops whose outputs depend on their input's shape only, never on its values: no gradient flows through them.
const shapeOnly = new Set(['Shape', 'Size', 'ConstantOfShape', 'EyeLike', 'RandomNormalLike', 'RandomUniformLike']);

/** Tensors whose value depends on `input`'s values; ONNX requires graph nodes in topological order. */
export function dependents(graph: Graph, input: string): Set<string> {
  const live = new Set<string>([input]);
  for (const node of graph.node ?? []) {
    if (shapeOnly.has(node.opType) && (node.domain ?? '') === '') continue;
    if ((node.input ?? []).some((i) => live.has(i))) for (const o of node.output ?? []) if (o !== '') live.add(o);
  }
  return live;
}

function ruleFor(node: Node) {
  return node.domain === undefined || node.domain === '' || node.domain === 'ai.onnx'
    ? rules.get(node.opType)
    : undefined;
}

/**
 * Adds the backward nodes to `b`; returns the name of the tensor holding d(seeded loss)/d(input).
 * With `problems`, a node whose gradient cannot be built is recorded there instead of stopping the
 * walk, and stands in with a gradient for each of its float inputs: every problem is found in one
 * pass (`nfp check`), and the graph built is for nothing but that.
 */
export function addBackward(graph: Graph, b: GraphBuilder, spec: TransformSpec, problems?: GradientProblem[]): string {
  const live = dependents(graph, spec.input);
  const contributions = new Map<string, string[]>();
  for (const [tensor, grads] of spec.seeds) {
    if (!live.has(tensor))
      throw new GradientError(`seeded tensor '${tensor}' does not depend on the input '${spec.input}'`);
    contributions.set(tensor, [...grads]);
  }
  const shape = (tensor: string): number[] => {
    const s = spec.shapes.get(tensor);
    if (s === undefined)
      throw new GradientError(`no shape known for tensor '${tensor}' (the probe run did not produce it)`);
    return s;
  };
  const declared = constantLookup(graph);
  const constant = (tensor: string) => declared(tensor) ?? spec.constants?.get(tensor);
  const nodes = graph.node ?? [];
  const producers = new Map<string, Node>();
  const readerLists = new Map<string, Node[]>();
  for (const node of nodes) {
    for (const o of node.output ?? []) if (o !== '') producers.set(o, node);
    for (const i of new Set(node.input ?? [])) {
      if (!live.has(i)) continue;
      const list = readerLists.get(i);
      if (list === undefined) readerLists.set(i, [node]);
      else list.push(node);
    }
  }
  const producer = (tensor: string) => producers.get(tensor);
  const readers = (tensor: string): readonly Node[] => readerLists.get(tensor) ?? [];
  const seeded = (tensor: string) => spec.seeds.has(tensor);
  const batchAxes = (tensor: string) => (spec.fixedBatch ? [] : spec.batchAxes?.get(tensor));
  for (let n = nodes.length - 1; n >= 0; n--) {
    const node = nodes[n]!;
    const outputs = node.output ?? [];
    if (!outputs.some((o) => contributions.has(o))) continue;
    const gradOutputs = outputs.map((o) => {
      const terms = contributions.get(o);
      return terms === undefined ? undefined : b.sum(terms);
    });
    const inputs = node.input ?? [];
    // Shape arithmetic downstream of the input is live but has a known, batch-independent value: no gradient.
    const needs = inputs.map((i) => i !== '' && live.has(i) && spec.constants?.has(i) !== true);
    let grads: Array<string | undefined>;
    try {
      const rule = ruleFor(node);
      if (rule === undefined) {
        throw new GradientError(
          `no gradient rule for ` +
            `op ${node.opType}${node.domain ? ` (domain ${node.domain})` : ''}: ${nodeLabel(node)} lies between the ` +
            `input and a seeded output`,
        );
      }
      grads = rule({
        node,
        b,
        gradOutputs,
        needs,
        shape,
        constant,
        producer,
        readers,
        seeded,
        batchAxes,
        reluTemperature: spec.reluTemperature,
      });
    } catch (error) {
      if (problems === undefined || !(error instanceof GradientError)) throw error;
      problems.push({ node, message: error.message });
      grads = inputs.map((name, i) => (needs[i] && spec.floats?.has(name) ? b.fresh('stand_in') : undefined));
    }
    inputs.forEach((name, i) => {
      const g = grads[i];
      if (g === undefined || !needs[i]) return;
      const list = contributions.get(name);
      if (list === undefined) contributions.set(name, [g]);
      else list.push(g);
    });
  }
  const terms = contributions.get(spec.input);
  if (terms === undefined) {
    const message = `no gradient reaches the input '${spec.input}' from the seeded tensors`;
    if (problems === undefined) throw new GradientError(message);
    problems.push({ message });
    return b.fresh('stand_in');
  }
  return b.sum(terms);
}
