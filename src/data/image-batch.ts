// The shape every image loader returns: float32 NCHW in [0, 1], as torchvision's ToTensor produces.
export type Nchw = [n: number, channels: number, height: number, width: number];

export interface ImageBatch {
  data: Float32Array;
  dims: Nchw;
}

/** byte / 255 for every byte: one table lookup per pixel instead of a division. */
export const unitFromByte: Float32Array = Float32Array.from({ length: 256 }, (_, v) => v / 255);
