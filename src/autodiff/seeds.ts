// The losses a gradient model can differentiate, as new graph inputs turned into seeded
// gradients at the logits and the taps: a logit seed, a tap seed laid out like the Classifier's
// activation matrix, cross-entropy against (soft) one-hot labels, and the Carlini-Wagner margin,
// all computed in-graph so that one run gives the loss and its gradient.
import { ElemType } from '../model/onnx-schema.js';
import type { GraphBuilder } from './builder.js';
import { GradientError } from './rules/index.js';

export const SeedInputs = {
  logits: 'nfp_logit_seed',
  taps: 'nfp_tap_seed',
  tapIndex: 'nfp_tap_index',
  tapGroup: 'nfp_tap_group',
  tapQuad: 'nfp_tap_quad',
  tapCenter: 'nfp_tap_center',
  tapLin: 'nfp_tap_lin',
  tapConst: 'nfp_tap_const',
  tapRows: 'nfp_tap_rows',
  onehot: 'nfp_ce_onehot',
  marginOnehot: 'nfp_cw_onehot',
} as const;

export const GradientOutputs = {
  grad: 'nfp_input_grad',
  ceLoss: 'nfp_ce_loss',
  margin: 'nfp_cw_margin',
  tapValue: 'nfp_tap_value',
} as const;

/**
 * How the taps are seeded: not at all, by a given seed (`nfp_tap_seed`), or by a quadratic computed in
 * the graph from the activations a themselves. The quadratic form: a table of rows (quad, lin, const)
 * over the neurons, and per image F table rows (`nfp_tap_rows`, [batch x F] int64); each row p gives
 * v_p = sum(0.5 quad_p a^2 + lin_p a) + const_p, the image's value is max_p v_p (output
 * `nfp_tap_value`) and its seed is that row's gradient, quad_p a + lin_p; both are computed around a
 * center per table row (`nfp_tap_center`: a - center in place of a), which keeps float32 from cancelling
 * large terms (neurons with small clean spreads have coefficients of 1e4-1e6). At k = 1 the detector's
 * expected log-likelihood ratio of each family is such a form, so one gradient run does an adaptive step.
 */
export type TapSeeding = boolean | 'quadratic';

export interface SeedLayout {
  logits: string;
  classes: number;
  /** Tapped tensors with their offset and per-image size/shape in the activation vector. */
  taps: Array<{ tensor: string; offset: number; size: number; shape: number[] }>;
}

function addSeed(seeds: Map<string, string[]>, tensor: string, g: string): void {
  const list = seeds.get(tensor);
  if (list === undefined) seeds.set(tensor, [g]);
  else list.push(g);
}

/**
 * Declares the seed inputs and the loss output; returns the seeded gradients per tensor. Without
 * `tapSeeds` the taps get no seed input, so the backward pass does no work for them.
 */
export function addClassifierSeeds(
  b: GraphBuilder,
  layout: SeedLayout,
  tapSeeds: TapSeeding = true,
): Map<string, string[]> {
  const seeds = new Map<string, string[]>();
  const { logits, classes } = layout;
  b.addInput(SeedInputs.logits, ElemType.FLOAT, ['batch', classes]);
  addSeed(seeds, logits, SeedInputs.logits);

  // Cross-entropy -sum_c t_c log softmax(z)_c has gradient softmax(z) * sum_c t_c - t w.r.t. z:
  // softmax - onehot for one-hot rows, and zero for all-zero rows (no CE term for that image).
  b.addInput(SeedInputs.onehot, ElemType.FLOAT, ['batch', classes]);
  const weight = b.reduceSum(SeedInputs.onehot, [1], true);
  const softmax = b.op('Softmax', [logits], { axis: 1 });
  addSeed(seeds, logits, b.op('Sub', [b.op('Mul', [softmax, weight]), SeedInputs.onehot]));
  const logSoftmax = b.op('LogSoftmax', [logits], { axis: 1 });
  b.node('Neg', [b.reduceSum(b.op('Mul', [SeedInputs.onehot, logSoftmax]), [1], false)], {}, [GradientOutputs.ceLoss]);
  b.addOutput(GradientOutputs.ceLoss);

  // Carlini-Wagner margin z_y - max_{j != y} z_j for one-hot y: its logit gradient is
  // onehot(y) - onehot(runner-up), scaled by the row's weight so all-zero rows contribute nothing.
  b.addInput(SeedInputs.marginOnehot, ElemType.FLOAT, ['batch', classes]);
  const cwWeight = b.reduceSum(SeedInputs.marginOnehot, [1], true);
  const isLabel = b.op('Greater', [SeedInputs.marginOnehot, b.float([0], [])]);
  const others = b.where(isLabel, b.float([-3.4e38], []), logits);
  // One-hot by comparing with 0..classes-1 (OneHot arrived in opset 9).
  const runnerUp = b.op('ArgMax', [others], { axis: 1, keepdims: 1 });
  const classIndex = b.int64(
    Array.from({ length: classes }, (_, c) => c),
    [1, classes],
  );
  const runnerUpHot = b.op('Cast', [b.op('Equal', [runnerUp, classIndex])], { to: ElemType.FLOAT });
  addSeed(seeds, logits, b.op('Sub', [SeedInputs.marginOnehot, b.op('Mul', [runnerUpHot, cwWeight])]));
  const labelLogit = b.reduceSum(b.op('Mul', [SeedInputs.marginOnehot, logits]), [1], false);
  const best = b.reduce('ReduceMax', others, [1], false);
  b.node('Sub', [labelLogit, b.op('Mul', [best, b.reduceSum(SeedInputs.marginOnehot, [1], false)])], {}, [
    GradientOutputs.margin,
  ]);
  b.addOutput(GradientOutputs.margin);

  const neurons = layout.taps.reduce((n, t) => n + t.size, 0);
  if (tapSeeds === 'quadratic' && neurons > 0) {
    addQuadraticTapSeeds(b, layout, neurons, seeds);
  } else if (tapSeeds && neurons > 0) {
    b.addInput(SeedInputs.taps, ElemType.FLOAT, ['batch', neurons]);
    for (const tap of layout.taps) {
      const slice = b.slice(SeedInputs.taps, [tap.offset], [tap.offset + tap.size], [1]);
      addSeed(seeds, tap.tensor, b.op('Reshape', [slice, b.int64([-1, ...tap.shape])]));
    }
  }
  return seeds;
}

/**
 * The quadratic tap seeds of TapSeeding 'quadratic' and the output `nfp_tap_value`, on the columns a
 * group of table rows uses (`nfp_tap_index`: [groups x width] neurons of the whole-layer layout, padded
 * with `neurons`, a zero column): gathered from the activations, scored, and the seed scattered back, so
 * the work is per used neuron, not per tapped neuron. GatherElements and ScatterElements: opset 11.
 */
function addQuadraticTapSeeds(
  b: GraphBuilder,
  layout: SeedLayout,
  neurons: number,
  seeds: Map<string, string[]>,
): void {
  if (b.opset < 11)
    throw new GradientError(`Expected opset 11 or later for a quadratic tap seed but the model has opset ${b.opset}`);
  b.addInput(SeedInputs.tapIndex, ElemType.INT64, ['groups', 'width']);
  b.addInput(SeedInputs.tapGroup, ElemType.INT64, ['batch']);
  b.addInput(SeedInputs.tapQuad, ElemType.FLOAT, ['table', 'width']);
  b.addInput(SeedInputs.tapLin, ElemType.FLOAT, ['table', 'width']);
  b.addInput(SeedInputs.tapCenter, ElemType.FLOAT, ['table', 'width']);
  b.addInput(SeedInputs.tapConst, ElemType.FLOAT, ['table']);
  b.addInput(SeedInputs.tapRows, ElemType.INT64, ['batch', 'parts']);
  // The activations [batch, neurons + 1] in the layout's order, the last column zero (for padding).
  const flat = layout.taps.map((t) => b.op('Reshape', [t.tensor, b.int64([-1, t.size])]));
  const rowsOne = b.op('Concat', [b.slice(b.op('Shape', [flat[0]!]), [0], [1], [0]), b.int64([1])], { axis: 0 });
  const zero = b.op('ConstantOfShape', [rowsOne]);
  const acts = b.op('Concat', [...flat, zero], { axis: 1 });
  const index = b.op('Gather', [SeedInputs.tapIndex, SeedInputs.tapGroup], { axis: 0 });
  const used = b.op('GatherElements', [acts, index], { axis: 1 });
  // [batch, parts, width] coefficients around their centers; the used activations as [batch, 1, width].
  const quad = b.op('Gather', [SeedInputs.tapQuad, SeedInputs.tapRows], { axis: 0 });
  const lin = b.op('Gather', [SeedInputs.tapLin, SeedInputs.tapRows], { axis: 0 });
  const center = b.op('Gather', [SeedInputs.tapCenter, SeedInputs.tapRows], { axis: 0 });
  const a = b.op('Sub', [b.unsqueeze(used, [1]), center]);
  const slope = b.op('Add', [b.op('Mul', [quad, a]), lin]);
  // v_p = sum((0.5 quad a + lin) a) + const_p = sum((slope + lin) a) / 2 + const_p.
  const half = b.op('Mul', [b.op('Add', [slope, lin]), b.float([0.5], [])]);
  const values = b.op('Add', [
    b.reduceSum(b.op('Mul', [half, a]), [2], false),
    b.op('Gather', [SeedInputs.tapConst, SeedInputs.tapRows], { axis: 0 }),
  ]);
  // The largest part's slope (ties share it).
  const largest = b.reduce('ReduceMax', values, [1], true);
  const chosen = b.op('Cast', [b.op('Not', [b.op('Less', [values, largest])])], { to: ElemType.FLOAT });
  const share = b.op('Div', [chosen, b.reduceSum(chosen, [1], true)]);
  const seedUsed = b.reduceSum(b.op('Mul', [slope, b.op('Reshape', [share, b.int64([0, -1, 1])])]), [1], false);
  const seed = b.op('ScatterElements', [b.op('ConstantOfShape', [b.op('Shape', [acts])]), index, seedUsed], {
    axis: 1,
  });
  b.node('Reshape', [largest, b.int64([-1])], {}, [GradientOutputs.tapValue]);
  b.addOutput(GradientOutputs.tapValue);
  for (const tap of layout.taps) {
    const slice = b.slice(seed, [tap.offset], [tap.offset + tap.size], [1]);
    addSeed(seeds, tap.tensor, b.op('Reshape', [slice, b.int64([-1, ...tap.shape])]));
  }
}
