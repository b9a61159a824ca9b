// The tapped layers as the baselines see them: each tap's block of the activation matrix, and the
// reduction of a tap to its channel means (the Mahalanobis detector's per-layer features). A
// convolutional tap [C, H, W] averages over H x W (the authors' code: view(N, C, -1).mean(2)); a
// token tap [T, D] (a transformer's residual stream) over its T tokens, which leaves the D
// embedding features; a flat tap [D] is its own features. A sampled tap (a 'wide' neuron budget)
// averages the neurons of each channel that it holds.
import type { TapLayout } from '../model/index.js';

export interface ChannelLayer {
  tap: string;
  /** Where the tap's neurons sit in the activation vector, and how many there are. */
  offset: number;
  size: number;
  /** Channels (features) of the layer. */
  channels: number;
  /** Channel of each of the tap's neurons, and 1 / (neurons of that channel) for each channel. */
  channelOf: Int32Array;
  inverseCount: Float64Array;
}

/** The channel of a neuron at flat position `index` of a layer output of `shape` (per image). */
function channelIndex(shape: number[], index: number): number {
  if (shape.length === 2) return index % shape[1]!;
  if (shape.length <= 1) return index;
  return Math.floor(index / shape.slice(1).reduce((a, v) => a * v, 1));
}

function channelCount(shape: number[]): number {
  if (shape.length === 0) return 1;
  if (shape.length === 2) return shape[1]!;
  return shape[0]!;
}

/** Per tap, how its neurons reduce to channel means. Channels with no neuron in a sampled tap are dropped. */
export function channelLayers(taps: readonly TapLayout[]): ChannelLayer[] {
  return taps.map((tap) => {
    const full = channelCount(tap.shape);
    const raw = Int32Array.from({ length: tap.size }, (_, i) =>
      channelIndex(tap.shape, tap.indices === undefined ? i : tap.indices[i]!),
    );
    const counts = new Float64Array(full);
    for (const c of raw) counts[c]!++;
    // Renumber the channels that hold neurons densely.
    const dense = new Int32Array(full).fill(-1);
    let channels = 0;
    for (let c = 0; c < full; c++) if (counts[c]! > 0) dense[c] = channels++;
    const inverseCount = new Float64Array(channels);
    for (let c = 0; c < full; c++) if (dense[c]! >= 0) inverseCount[dense[c]!] = 1 / counts[c]!;
    return {
      tap: tap.tensor,
      offset: tap.offset,
      size: tap.size,
      channels,
      channelOf: raw.map((c) => dense[c]!),
      inverseCount,
    };
  });
}

/** Channel means of one layer for every row of an activation matrix [rows x neurons]: [rows x channels]. */
export function channelMeans(
  layer: ChannelLayer,
  activations: Float32Array,
  rows: number,
  neurons: number,
): Float64Array {
  const out = new Float64Array(rows * layer.channels);
  for (let r = 0; r < rows; r++) {
    const base = r * neurons + layer.offset;
    const row = out.subarray(r * layer.channels, (r + 1) * layer.channels);
    for (let i = 0; i < layer.size; i++) row[layer.channelOf[i]!] += activations[base + i]!;
    for (let c = 0; c < layer.channels; c++) row[c]! *= layer.inverseCount[c]!;
  }
  return out;
}

/**
 * Spreads a gradient with respect to one row's channel means onto the tap's neurons (each neuron
 * gets its channel's gradient / the channel's neuron count), writing into `seed` at row r of a
 * [rows x neurons] tap seed.
 */
export function spreadChannelGradient(
  layer: ChannelLayer,
  gradient: Float64Array,
  seed: Float32Array,
  r: number,
  neurons: number,
): void {
  const base = r * neurons + layer.offset;
  for (let i = 0; i < layer.size; i++) {
    const c = layer.channelOf[i]!;
    seed[base + i] = gradient[c]! * layer.inverseCount[c]!;
  }
}

/** The layers named in `names` (tap tensor names), in that order; all of them without names. */
export function pickLayers<T extends { tap: string }>(layers: T[], names: readonly string[] | undefined): T[] {
  if (names === undefined) return layers;
  return names.map((name) => {
    const layer = layers.find((l) => l.tap === name);
    if (layer === undefined)
      throw new RangeError(
        `Expected one of the model's taps (${layers.map((l) => l.tap).join(', ')}) for layers but received ${name}`,
      );
    return layer;
  });
}
