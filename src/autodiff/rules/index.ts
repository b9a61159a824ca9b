// The vector-Jacobian rules by op type (default ONNX domain). An op missing here cannot be on
// the path from the input to a seeded tensor.
import type { Rule } from './context.js';
import { conv } from './conv.js';
import { add, div, identity, mul, relu, sub } from './elementwise.js';
import { gemm, matmul } from './linear.js';
import { globalAveragePool, maxPool } from './pool.js';
import { reshapeBack, transpose } from './shape.js';

export const rules: ReadonlyMap<string, Rule> = new Map<string, Rule>([
  ['Add', add], ['Sub', sub], ['Mul', mul], ['Div', div], ['Relu', relu],
  ['Identity', identity], ['Dropout', identity],
  ['Conv', conv],
  ['MaxPool', maxPool], ['GlobalAveragePool', globalAveragePool],
  ['Gemm', gemm], ['MatMul', matmul],
  ['Flatten', reshapeBack], ['Reshape', reshapeBack], ['Squeeze', reshapeBack], ['Unsqueeze', reshapeBack], ['Transpose', transpose],
]);

export { GradientError } from './context.js';
export type { Rule, RuleContext } from './context.js';
