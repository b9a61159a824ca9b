// Images as the library passes them around: float32 values with their dims, row-major, NCHW in the
// model's input range. The loaders always return 4-D NCHW in [0, 1], as torchvision's ToTensor does
// (`NchwBatch`); models and attacks take any ImageBatch and check its dims themselves.
export type Nchw = [n: number, channels: number, height: number, width: number];

export interface ImageBatch {
  data: Float32Array;
  dims: readonly number[];
}

/** What every image loader returns. */
export interface NchwBatch extends ImageBatch {
  dims: Nchw;
}

/** byte / 255 for every byte: one table lookup per pixel instead of a division. */
export const unitFromByte: Float32Array = Float32Array.from({ length: 256 }, (_, v) => v / 255);
