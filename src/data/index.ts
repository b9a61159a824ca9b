// The data module's front door: datasets and tensor files in, float32 NCHW batches out.
export { DataFormatError } from './errors.js';
export { isGzip } from './gzip.js';
export type { ImageBatch, Nchw, NchwBatch } from './image-batch.js';
export { encodeIdx, parseIdx, readIdx, readIdxImages, readIdxLabels, writeIdx } from './idx.js';
export type { IdxArray, IdxDtype } from './idx.js';
export { encodeNpy, isNpy, NpyWriter, parseNpy, readNpy, writeNpy } from './npy.js';
export type { NpyArray, NpyData, NpyDtype } from './npy.js';
export { toInt32Labels } from './labels.js';
export type { IntegerArray } from './labels.js';
export { decodeImage, imageExtensions, listImageFolder, loadImageFolder } from './images.js';
export type { ImageFolder, ImageFolderOptions, ImageOptions } from './images.js';
export {
  debianFashionMnistDir,
  fashionMnistClasses,
  loadFashionMnist,
  locateFashionMnist,
  shippedFashionMnistDir,
} from './fashion-mnist.js';
export type { FashionMnist, FashionMnistSplit } from './fashion-mnist.js';
export { loadLabelFile, loadTensorFile, tensorDigest } from './tensor-file.js';
export { openTensorFile } from './tensor-reader.js';
export type { TensorBatch, TensorReader, TensorReadOptions } from './tensor-reader.js';
export { defaultImageFormats, defaultLimits, imageFormats } from './limits.js';
export type { ImageFormat } from './limits.js';
export { gatherImages, gatherRows, sliceImages } from './rows.js';
export type { TensorFile } from './tensor-file.js';
