// The model runtime's front door: ONNX classifiers with activation taps.
export { Classifier, ClassifierError, argmaxRows } from './classifier.js';
export type { ClassifierOptions, ClassifierOutput, Preprocess, TapRun } from './classifier.js';
export type { ImageBatch } from '../data/index.js';
export { ModelCardError, cardPath, cardTaps } from './card.js';
export {
  TapActivations,
  TapLayoutError,
  activationChunkBytes,
  activationChunkRows,
  copyTapOutputs,
  expandTapSeed,
  fetchedValues,
  planReadout,
  readoutOutputName,
  tapRunBytes,
  sampleOutputName,
  tapRead,
  tapRunRows,
  wholeLayout,
} from './tap-layout.js';
export type { TapLayout, TapPlan, TapRead } from './tap-layout.js';
export {
  allocateBudget,
  defaultActivationBytes,
  defaultNeuronBudget,
  neuronBudget,
  replaySample,
  sampleIndices,
} from './tap-sample.js';
export type { TapSample } from './tap-sample.js';
export type { LayerInfo } from './layers.js';
export { ModelFormatError, decodeModel, sha256 } from './onnx.js';
export { evenlySpaced, measureReadoutCost } from './readout-cost.js';
export type { ReadoutCost, ReadoutCostOptions, ReadoutCosts } from './readout-cost.js';
export { shippedModel, shippedModels } from './shipped.js';
export { TapError, penultimateTensor, resolveTaps, wideTapTensors } from './taps.js';
export type { TapRequest, TapSpec } from './taps.js';
export type { SessionSettings } from './session.js';
export {
  SignatureError,
  detectLayout,
  elemTypeName,
  fromChannelsFirst,
  imageInput,
  logitsOutput,
  readImageInput,
  toChannelsFirst,
} from './signature.js';
export type { ImageInput, LogitsOutput, OutputKind } from './signature.js';
export type { Layout } from '../data/layout.js';
