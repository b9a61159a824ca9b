// The losses a gradient model can differentiate, as new graph inputs turned into seeded
// gradients at the logits and the taps: a logit seed, a tap seed laid out like the Classifier's
// activation matrix, cross-entropy against (soft) one-hot labels, and the Carlini-Wagner margin,
// all computed in-graph so that one run gives the loss and its gradient.
import { ElemType } from '../model/onnx-schema.js';
import type { GraphBuilder } from './builder.js';

export const SeedInputs = {
  logits: 'nfp_logit_seed',
  taps: 'nfp_tap_seed',
  onehot: 'nfp_ce_onehot',
  marginOnehot: 'nfp_cw_onehot',
} as const;

export const GradientOutputs = { grad: 'nfp_input_grad', ceLoss: 'nfp_ce_loss', margin: 'nfp_cw_margin' } as const;

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
export function addClassifierSeeds(b: GraphBuilder, layout: SeedLayout, tapSeeds = true): Map<string, string[]> {
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
  if (tapSeeds && neurons > 0) {
    b.addInput(SeedInputs.taps, ElemType.FLOAT, ['batch', neurons]);
    for (const tap of layout.taps) {
      const slice = b.slice(SeedInputs.taps, [tap.offset], [tap.offset + tap.size], [1]);
      addSeed(seeds, tap.tensor, b.op('Reshape', [slice, b.int64([-1, ...tap.shape])]));
    }
  }
  return seeds;
}
