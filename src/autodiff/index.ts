// The autodiff front door: input gradients through ONNX Runtime by a reverse-mode graph transform.
export { GradientModel } from './gradient-model.js';
export type { GradientModelOptions, GradientRequest, GradientResult } from './gradient-model.js';
export { classifierGradientBytes, classifierGradientProblems, seededGradientBytes } from './gradient-graph.js';
export type { BackwardOptions } from './gradient-graph.js';
export type { GradientProblem } from './transform.js';
export { GradientError } from './rules/index.js';
export { GradientOutputs, SeedInputs } from './seeds.js';
