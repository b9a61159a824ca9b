// Vector-Jacobian rules for pooling. MaxPool routes each output's gradient to the input element
// that won its window: a duplicate MaxPool node supplies the winners' flat indices and
// ScatterElements(reduction='add') accumulates, which, unlike MaxUnpool, also adds where
// overlapping windows (3x3 stride 2) share a winner.
import type { Rule } from './context.js';
import { GradientError, gradOf, intAttr, nodeLabel } from './context.js';

export const maxPool: Rule = (ctx) => {
  const { b, node } = ctx;
  if (b.opset < 16) {
    throw new GradientError(`${nodeLabel(node)}: the MaxPool gradient needs ScatterElements with reduction='add' (opset >= 16), but the model imports opset ${b.opset}; re-export it with opset 16 or later`);
  }
  if (intAttr(node, 'storage_order', 0) !== 0) throw new GradientError(`${nodeLabel(node)}: storage_order=1 (column-major indices) is not supported`);
  const x = node.input![0]!;
  // Indices index x flattened whole (batch and channel offsets included), so one flat scatter suffices.
  const [, indices] = b.duplicate(node, 2) as [string, string];
  const flat = b.int64([-1]);
  const size = b.op('Reshape', [b.op('Size', [x]), b.int64([1])]);
  const zeros = b.op('ConstantOfShape', [size]); // float32 zeros by default
  const scattered = b.op('ScatterElements', [zeros, b.op('Reshape', [indices, flat]), b.op('Reshape', [gradOf(ctx), flat])], { axis: 0, reduction: 'add' });
  return [b.op('Reshape', [scattered, b.op('Shape', [x])])];
};

// y = mean over the spatial axes: every input element gets g / (number of spatial positions).
export const globalAveragePool: Rule = (ctx) => {
  const x = ctx.node.input![0]!;
  const area = ctx.shape(x).slice(2).reduce((p, v) => p * v, 1);
  const spread = ctx.b.op('Expand', [gradOf(ctx), ctx.b.op('Shape', [x])]);
  return [ctx.b.op('Mul', [spread, ctx.b.float([1 / area], [])])];
};
