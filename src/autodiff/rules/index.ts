// The vector-Jacobian rules by op type (default ONNX domain). An op missing here cannot be on
// the path from the input to a seeded tensor.
import { clip, erf, exp, logSoftmax, neg, pow, sigmoid, softmax, sqrt, tanh } from './activation.js';
import type { Rule } from './context.js';
import { conv } from './conv.js';
import { add, div, identity, mul, relu, sub, sum } from './elementwise.js';
import { gemm, matmul } from './linear.js';
import { batchNormalization, layerNormalization } from './normalization.js';
import { averagePool, globalAveragePool, maxPool } from './pool.js';
import { reduceMean, reduceSum } from './reduce.js';
import { cast, concat, expand, gather, pad, slice, split, where } from './select.js';
import { flatten, reshapeBack, transpose } from './shape.js';

export const rules: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  ['Add', add],
  ['Sub', sub],
  ['Mul', mul],
  ['Div', div],
  ['Sum', sum],
  ['Relu', relu],
  ['Identity', identity],
  ['Dropout', identity],
  ['Erf', erf],
  ['Sqrt', sqrt],
  ['Sigmoid', sigmoid],
  ['Tanh', tanh],
  ['Exp', exp],
  ['Neg', neg],
  ['Pow', pow],
  ['Clip', clip],
  ['Softmax', softmax],
  ['LogSoftmax', logSoftmax],
  ['Conv', conv],
  ['MaxPool', maxPool],
  ['GlobalAveragePool', globalAveragePool],
  ['AveragePool', averagePool],
  ['Gemm', gemm],
  ['MatMul', matmul],
  ['LayerNormalization', layerNormalization],
  ['BatchNormalization', batchNormalization],
  ['ReduceMean', reduceMean],
  ['ReduceSum', reduceSum],
  ['Concat', concat],
  ['Split', split],
  ['Slice', slice],
  ['Gather', gather],
  ['Pad', pad],
  ['Expand', expand],
  ['Where', where],
  ['Cast', cast],
  ['Flatten', flatten],
  ['Reshape', reshapeBack],
  ['Squeeze', reshapeBack],
  ['Unsqueeze', reshapeBack],
  ['Transpose', transpose],
]);

export { GradientError } from './context.js';
export type { Rule, RuleContext } from './context.js';
