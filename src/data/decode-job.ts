// One image from encoded bytes to a tensor: probe (format and limits), decode (sharp), then the part
// that runs in JavaScript: colour conversion, torchvision's Resize + CenterCrop in Pillow's arithmetic,
// and ToTensor. The same function runs on the main thread for small images and on a decode worker
// thread (decode-pool.ts) for large ones, so the tensor never depends on where it was made.
import { cmykToRgb, luma } from './colour.js';
import type { ImageHeader } from './sharp-decode.js';
import { decodePixels, ImageRefused, probeImage } from './sharp-decode.js';
import type { DecodeLimits } from './sharp-decode.js';
import { outputSize, resizeCropToTensor } from './torchvision-transforms.js';

export interface DecodeSettings extends DecodeLimits {
  channels: 1 | 3;
  resize: number | null;
  crop: number | null;
}

export interface PixelTensor {
  /** Planar (CHW) float32 in [0, 1]. */
  data: Float32Array;
  width: number;
  height: number;
}

export interface DecodePlan extends ImageHeader {
  outWidth: number;
  outHeight: number;
}

/** The header checks, and the size of the result checked against the same pixel limit. */
export async function planDecode(bytes: Uint8Array, settings: DecodeSettings): Promise<DecodePlan> {
  const header = await probeImage(bytes, settings);
  const [outWidth, outHeight] = outputSize(header.width, header.height, settings.resize, settings.crop);
  if (outWidth * outHeight > settings.maxPixels) {
    throw new ImageRefused(
      `it would be ${outWidth}x${outHeight} after resizing, over the ` +
        `${settings.maxPixels.toLocaleString('en-US')}-pixel limit (maxPixels)`,
    );
  }
  return { ...header, outWidth, outHeight };
}

/** Encoded bytes to a tensor (planned here unless given); throws saying what is wrong with the image. */
export async function runDecodeJob(
  bytes: Uint8Array,
  settings: DecodeSettings,
  plan?: DecodePlan,
): Promise<PixelTensor> {
  const header = plan ?? (await planDecode(bytes, settings));
  const { pixels, cmyk } = await decodePixels(bytes, header, settings);
  const rgb = cmyk ? cmykToRgb(pixels) : pixels;
  if (rgb.channels !== 3) throw new ImageRefused(`decoded to ${rgb.channels} channels, expected RGB`);
  return resizeCropToTensor(settings.channels === 3 ? rgb : luma(rgb), settings.resize, settings.crop);
}
