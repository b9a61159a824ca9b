// torchvision's Resize(size: int), CenterCrop(size) and ToTensor() on decoded pixels, with the same
// integer geometry (truncation, Python's round-half-even, zero padding), so offsets never differ by one.
import { unitFromByte } from './image-batch.js';
import type { Pixels } from './pixels.js';
import { resizeBilinear } from './resample.js';

/** Resize(size)'s output size: shorter side to `size`, longer side scaled and truncated as int() does. */
export function shorterSideSize(width: number, height: number, size: number): [width: number, height: number] {
  if (width <= height) return [size, Math.trunc((size * height) / width)];
  return [Math.trunc((size * width) / height), size];
}

export function resizeShorterSide(image: Pixels, size: number): Pixels {
  const [width, height] = shorterSideSize(image.width, image.height, size);
  if (width === image.width && height === image.height) return image;
  return resizeBilinear(image, width, height);
}

/** Python's round(): halves go to the even neighbour (CenterCrop computes offsets with it). */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** CenterCrop's offset of the crop in one dimension; negative when the image is padded with zeros. */
function cropOffset(size: number, crop: number): number {
  if (crop > size) return -Math.floor((crop - size) / 2);
  return roundHalfEven((size - crop) / 2);
}

/**
 * CenterCrop(crop) then ToTensor(): planar (CHW) float32 in [0, 1]. `crop` null keeps the whole image.
 * Writes into `out` at `offset` when given, so a batch is filled without a copy per image.
 */
export function centreCropToTensor(
  image: Pixels,
  crop: number | null,
  out?: Float32Array,
  offset = 0,
): { data: Float32Array; width: number; height: number } {
  const width = crop ?? image.width,
    height = crop ?? image.height;
  const left = crop === null ? 0 : cropOffset(image.width, crop);
  const top = crop === null ? 0 : cropOffset(image.height, crop);
  const { channels, data: src } = image;
  const data = out ?? new Float32Array(channels * width * height);
  const plane = width * height;
  for (let y = 0; y < height; y++) {
    const sy = y + top;
    const rowInside = sy >= 0 && sy < image.height;
    for (let x = 0; x < width; x++) {
      const sx = x + left;
      const inside = rowInside && sx >= 0 && sx < image.width;
      const from = (sy * image.width + sx) * channels;
      for (let c = 0; c < channels; c++) {
        data[offset + c * plane + y * width + x] = inside ? unitFromByte[src[from + c]!]! : 0;
      }
    }
  }
  return { data, width, height };
}
