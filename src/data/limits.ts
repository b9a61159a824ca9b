// What a hostile file may cost before it is refused: every input is untrusted, so each bound is read
// from a header (image dimensions, IDX dims, .npy shape) and checked before the bytes behind it are
// decoded or decompressed. One owner for these defaults; options override them per call.

/** The defaults, with the reason for each. */
export const defaultLimits = {
  /**
   * Pixels of one decoded image (width x height): 40 MP holds an 8K frame (33 MP) and phone photos;
   * decoded, it is 120 MB of RGB. sharp's own default (268 MP, 0.8 GB) is far above what a detector
   * in front of a classifier should accept from one request.
   */
  imagePixels: 40_000_000,
  /**
   * Longer side over shorter side: past 20 the shorter-side resize and centre crop keep under 5% of
   * the image (a 1,000,000 x 1 strip is a decompression trick, not a photo), and without a crop the
   * resized image grows with the ratio.
   */
  imageAspectRatio: 20,
  /** Bytes of one encoded image file or buffer: a 40 MP PNG is rarely past 100 MB. */
  imageFileBytes: 128 * 2 ** 20,
  /**
   * Bytes a gzip stream may inflate to (IDX, .npy): 1 GiB holds EMNIST's largest split (547 MB); gzip
   * inflates up to ~1,000x, so a 4 MB file can claim 4 GB. Uncompressed files have no such cap: they
   * are read in row ranges, and their size on disk is their real size.
   */
  gunzipBytes: 2 ** 30,
} as const;

/** Raster formats read by default; each other format must be asked for (ImageOptions.formats). */
export const defaultImageFormats: readonly ImageFormat[] = ['jpeg', 'png', 'webp'];

/**
 * Formats an image may be read as. The defaults are still raster images; 'gif' and 'tiff' (often
 * animated or multi-page), 'svg' (a vector format whose renderer fetches resources) and 'heif'
 * (AVIF/HEIC) are read only when asked for.
 */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'svg' | 'heif';
export const imageFormats: readonly ImageFormat[] = ['jpeg', 'png', 'webp', 'gif', 'tiff', 'svg', 'heif'];

/** A byte count for people: "1 GiB", "128 MiB", "2.5 MB" style, exact where it can be. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= size) {
      const v = bytes / size;
      return `${Number.isInteger(v) ? v : v.toFixed(1)} ${unit}`;
    }
  }
  return `${bytes} bytes`;
}
