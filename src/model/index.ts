// The model runtime's front door: ONNX classifiers with activation taps.
export { Classifier, ClassifierError, argmaxRows } from './classifier.js';
export type { ClassifierOptions, ClassifierOutput, ImageBatch, Preprocess, TapLayout } from './classifier.js';
export type { LayerInfo } from './layers.js';
export { ModelFormatError, decodeModel, sha256 } from './onnx.js';
export { TapError, penultimateTensor, resolveTaps } from './taps.js';
export type { TapSpec } from './taps.js';
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
