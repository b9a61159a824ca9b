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

/** Resize(size) on the whole image (the reference for the cropped path below). */
export function resizeShorterSide(image: Pixels, size: number): Pixels {
  const [width, height] = shorterSideSize(image.width, image.height, size);
  if (width === image.width && height === image.height) return image;
  return resizeBilinear(image, width, height);
}

/** Width and height of Resize(resize) then CenterCrop(crop) (either null: left out). */
export function outputSize(
  width: number,
  height: number,
  resize: number | null,
  crop: number | null,
): [width: number, height: number] {
  if (crop !== null) return [crop, crop];
  return resize === null ? [width, height] : shorterSideSize(width, height, resize);
}

/**
 * Resize(resize) + CenterCrop(crop) + ToTensor() (either null: left out), computing only the resized
 * pixels the crop keeps: the same values as resizing the whole image and cropping it, at the cost of
 * the crop. Planar float32 in [0, 1], written into `out` at `offset` when given.
 */
export function resizeCropToTensor(
  image: Pixels,
  resize: number | null,
  crop: number | null,
  out?: Float32Array,
  offset = 0,
): { data: Float32Array; width: number; height: number } {
  const [width, height] =
    resize === null ? [image.width, image.height] : shorterSideSize(image.width, image.height, resize);
  const same = width === image.width && height === image.height;
  if (crop === null)
    return windowToTensor(same ? image : resizeBilinear(image, width, height), 0, 0, width, height, out, offset);
  // The crop window in the resized image, cut to the image: outside it CenterCrop pads with zeros.
  const left = cropOffset(width, crop),
    top = cropOffset(height, crop);
  if (same) return windowToTensor(image, left, top, crop, crop, out, offset);
  const x0 = Math.max(left, 0),
    y0 = Math.max(top, 0);
  const region = {
    left: x0,
    top: y0,
    width: Math.min(left + crop, width) - x0,
    height: Math.min(top + crop, height) - y0,
  };
  // The region starts at (x0, y0) of the resized image.
  return windowToTensor(resizeBilinear(image, width, height, region), left - x0, top - y0, crop, crop, out, offset);
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
  if (crop === null) return windowToTensor(image, 0, 0, image.width, image.height, out, offset);
  return windowToTensor(image, cropOffset(image.width, crop), cropOffset(image.height, crop), crop, crop, out, offset);
}

/** A width x height window whose top left is (left, top) of the image (zeros outside it), as planar float32. */
function windowToTensor(
  image: Pixels,
  left: number,
  top: number,
  width: number,
  height: number,
  out?: Float32Array,
  offset = 0,
): { data: Float32Array; width: number; height: number } {
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
