// Images as tensors: single files or buffers, and folders laid out as ImageNet (root/<class>/<image>), the
// same samples in the same order with the same pixels as torchvision's ImageFolder + Resize + CenterCrop.
import { readdirSync, realpathSync, statSync } from 'node:fs';
import type { Dirent } from 'node:fs';
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';

import { DataFormatError } from './errors.js';
import type { NchwBatch, Nchw } from './image-batch.js';
import { defaultImageFormats, defaultLimits, imageFormats } from './limits.js';
import type { ImageFormat } from './limits.js';
import type { DecodeSettings, PixelTensor } from './decode-job.js';
import { decodeBytes } from './decode-pool.js';
import { readImageFile } from './sharp-decode.js';

export interface ImageOptions {
  /** Resize the shorter side to this many pixels (torchvision Resize(int), bilinear). null: keep the size. Default
   * 256. */
  resize?: number | null;
  /** Centre crop to a square of this side (torchvision CenterCrop). null: no crop. Default 224. */
  crop?: number | null;
  /** 3: RGB (PIL convert('RGB')), 1: grayscale (convert('L')). Default 3. */
  channels?: 1 | 3;
  /**
   * Formats accepted, recognised by content, never by file name (default jpeg, png, webp). 'gif', 'tiff',
   * 'svg' and 'heif' must be asked for; an SVG is rendered from its bytes alone, so it cannot fetch files.
   */
  formats?: readonly ImageFormat[];
  /** Read the first frame of an animated or multi-page image (default false: refuse it). */
  firstFrame?: boolean;
  /** Most pixels (width x height, from the header, before decoding) of an image and of its result (default 40 MP). */
  maxPixels?: number;
  /** Largest longer-to-shorter side ratio (default 20). */
  maxAspectRatio?: number;
  /** Largest encoded image in bytes (default 128 MiB). */
  maxFileBytes?: number;
}

export interface ImageFolderOptions extends ImageOptions {
  /** Images decoded at once; sharp runs each on the libuv thread pool. Default min(8, cores). */
  concurrency?: number;
}

export interface ImageFolder extends NchwBatch {
  /** Class index of each image: its folder's position in `classes`. */
  labels: Int32Array;
  /** Class folder names, sorted. */
  classes: string[];
  /** Path of each image, in batch order. */
  files: string[];
}

/** File types loaded from folders (case-insensitive), a subset of torchvision's IMG_EXTENSIONS. */
export const imageExtensions: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp'];

type Settings = DecodeSettings;

function settingsFrom(options: ImageOptions): Settings {
  const { resize = 256, crop = 224, channels = 3 } = options;
  for (const [name, value] of [
    ['resize', resize],
    ['crop', crop],
  ] as const) {
    if (value !== null && !(Number.isInteger(value) && value >= 1 && value <= 65_536)) {
      throw new RangeError(`Expected a positive integer or null for ${name} but received ${String(value)}`);
    }
  }
  if (channels !== 1 && channels !== 3)
    throw new RangeError(`Expected 1 or 3 for channels but received ${String(channels)}`);
  const formats = options.formats ?? defaultImageFormats;
  if (!Array.isArray(formats) || formats.length === 0 || formats.some((f) => !imageFormats.includes(f)))
    throw new RangeError(
      `Expected formats among ${imageFormats.join(', ')} for formats but received ${String(formats)}`,
    );
  const limit = (name: string, value: number | undefined, fallback: number, integer: boolean): number => {
    const v = value ?? fallback;
    if (!(v >= 1 && Number.isFinite(v) && (!integer || Number.isSafeInteger(v))))
      throw new RangeError(`Expected a ${integer ? 'positive integer' : 'number >= 1'} for ${name} but received ${v}`);
    return v;
  };
  return {
    resize,
    crop,
    channels,
    formats,
    firstFrame: options.firstFrame === true,
    maxPixels: limit('maxPixels', options.maxPixels, defaultLimits.imagePixels, true),
    maxAspectRatio: limit('maxAspectRatio', options.maxAspectRatio, defaultLimits.imageAspectRatio, false),
    maxFileBytes: limit('maxFileBytes', options.maxFileBytes, defaultLimits.imageFileBytes, true),
  };
}

/**
 * Decode, resize, crop: one image's planar float32 pixels (written into `out` at `offset` when given).
 * The file is read once, checked from its header, and decoded on libuv's threads (sharp); the resize
 * runs inline for small images and on a worker thread otherwise: the event loop is never held for long.
 */
async function loadOne(
  input: string | Uint8Array,
  source: string,
  settings: Settings,
  out?: Float32Array,
  offset?: number,
): Promise<PixelTensor> {
  let tensor: PixelTensor;
  try {
    const owned = typeof input === 'string';
    const bytes = owned ? await readImageFile(input, settings.maxFileBytes) : input;
    tensor = await decodeBytes(bytes, settings, owned);
  } catch (err) {
    throw new DataFormatError(source, `cannot decode image (${(err as Error).message})`);
  }
  if (out !== undefined) out.set(tensor.data, offset);
  return tensor;
}

/**
 * One image file or encoded buffer (JPEG, PNG, WebP by default; see `formats`) as a batch of one: dims
 * [1, c, h, w]. Hostile input fails with a DataFormatError before it costs more than the limits allow.
 */
export async function decodeImage(input: string | Uint8Array, options: ImageOptions = {}): Promise<NchwBatch> {
  const settings = settingsFrom(options);
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw new TypeError('Expected a file path or a Buffer for input');
  }
  const source = typeof input === 'string' ? input : `image buffer (${input.length} bytes)`;
  const { data, width, height } = await loadOne(input, source, settings);
  return { data, dims: [1, settings.channels, height, width] };
}

/**
 * Sorted as Python sorts str (by code point), which ImageFolder uses; JavaScript's default sort compares
 * UTF-16 units and differs past U+FFFF. UTF-8 bytes compare in code point order.
 */
function sortedByCodePoint(strings: readonly string[]): string[] {
  return strings
    .map((s) => ({ s, key: Buffer.from(s, 'utf8') }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map(({ s }) => s);
}

function isDirectory(path: string, entry: Dirent): boolean {
  if (entry.isDirectory()) return true;
  // ImageFolder follows symbolic links (os.scandir's is_dir and os.walk(followlinks=True)).
  if (entry.isSymbolicLink()) {
    try {
      return statSync(path).isDirectory();
    } catch {
      return false; // a dangling link
    }
  }
  return false;
}

/** Image files under a class folder, recursively, in os.walk order sorted as ImageFolder sorts them. */
function imagesUnder(classDir: string): string[] {
  const folders: { path: string; files: string[] }[] = [];
  const visited = new Set<string>(); // links can form cycles; os.walk would loop, we visit each folder once
  const walk = (dir: string): void => {
    const real = realpathSync(dir);
    if (visited.has(real)) return;
    visited.add(real);
    const files: string[] = [];
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (isDirectory(path, entry)) walk(path);
      else if (imageExtensions.includes(extname(entry.name).toLowerCase())) files.push(entry.name);
    }
    folders.push({ path: dir, files });
  };
  walk(classDir);
  const byPath = new Map(folders.map((f) => [f.path, f.files]));
  return sortedByCodePoint([...byPath.keys()]).flatMap((path) =>
    sortedByCodePoint(byPath.get(path)!).map((name) => join(path, name)),
  );
}

/** The samples of an image folder without decoding them: classes, and files with their labels. */
export function listImageFolder(root: string): { classes: string[]; files: string[]; labels: Int32Array } {
  let entries: Dirent[];
  try {
    entries = readdirSync(root, { withFileTypes: true });
  } catch (err) {
    throw new DataFormatError(root, `cannot read image folder (${(err as Error).message})`);
  }
  const classes = sortedByCodePoint(entries.filter((e) => isDirectory(join(root, e.name), e)).map((e) => e.name));
  if (classes.length === 0) throw new DataFormatError(root, 'no class folders (expected root/<class>/<image>)');
  const perClass = classes.map((name) => imagesUnder(join(root, name)));
  const empty = classes.filter((_, i) => perClass[i]!.length === 0);
  if (empty.length > 0) {
    throw new DataFormatError(root, `no images (${imageExtensions.join(' ')}) in class folder(s): ${empty.join(', ')}`);
  }
  const files = perClass.flat();
  const labels = new Int32Array(files.length);
  let i = 0;
  perClass.forEach((list, label) => {
    list.forEach(() => {
      labels[i++] = label;
    });
  });
  return { classes, files, labels };
}

/**
 * Every image in an ImageNet-style folder as one float32 NCHW batch. All images must end up one size
 * (set `crop`, or give images of one size); the first that does not is named in the error.
 */
export async function loadImageFolder(root: string, options: ImageFolderOptions = {}): Promise<ImageFolder> {
  settingsFrom(options);
  checkConcurrency(options.concurrency);
  const { classes, files, labels } = listImageFolder(root);
  const { data, dims } = await loadImageFiles(files, options);
  return { data, dims, labels, classes, files };
}

/** Channels, height and width every image of `files` will have: the crop's, else the first image's. */
export async function imageBatchShape(
  files: readonly string[],
  options: ImageOptions,
): Promise<[channels: number, height: number, width: number]> {
  const settings = settingsFrom(options);
  if (settings.crop !== null) return [settings.channels, settings.crop, settings.crop];
  const first = await loadOne(files[0]!, files[0]!, settings);
  return [settings.channels, first.height, first.width];
}

/**
 * Image files as one float32 NCHW batch, `concurrency` decoded at once. Without a crop, every image must
 * have the size of `shape` (when given) or of the first one decoded.
 */
export async function loadImageFiles(
  files: readonly string[],
  options: ImageFolderOptions,
  shape?: readonly [channels: number, height: number, width: number],
): Promise<NchwBatch> {
  const settings = settingsFrom(options);
  const concurrency = checkConcurrency(options.concurrency);
  const c = settings.channels;
  const crop = settings.crop;
  let size: [height: number, width: number] | undefined =
    crop !== null ? [crop, crop] : shape !== undefined ? [shape[1], shape[2]] : undefined;
  let data = size === undefined ? undefined : new Float32Array(files.length * c * size[0] * size[1]);

  let next = 0;
  let failed = false; // stops the other workers once one has thrown
  const worker = async (): Promise<void> => {
    while (next < files.length && !failed) {
      const i = next++;
      const file = files[i]!;
      if (crop !== null) {
        await loadOne(file, file, settings, data, i * c * crop * crop);
        continue;
      }
      // No crop: the first image decoded fixes the size every other image must have.
      const image = await loadOne(file, file, settings);
      size ??= [image.height, image.width];
      data ??= new Float32Array(files.length * c * size[0] * size[1]);
      if (image.height !== size[0] || image.width !== size[1]) {
        throw new DataFormatError(
          file,
          `is ${image.width}x${image.height} after resizing but other images are ${size[1]}x${size[0]}; set crop`,
        );
      }
      data.set(image.data, i * image.data.length);
    }
  };
  const guarded = (): Promise<void> =>
    worker().catch((err: unknown) => {
      failed = true;
      throw err;
    });
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, guarded));
  const dims: Nchw = [files.length, c, size?.[0] ?? 0, size?.[1] ?? 0];
  return { data: data ?? new Float32Array(0), dims };
}

function checkConcurrency(value: number | undefined): number {
  const concurrency = value ?? Math.min(8, availableParallelism());
  if (!(Number.isInteger(concurrency) && concurrency >= 1)) {
    throw new RangeError(`Expected a positive integer for concurrency but received ${String(concurrency)}`);
  }
  return concurrency;
}
