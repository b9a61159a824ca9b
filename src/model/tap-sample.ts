// Neuron samples of large tapped layers. Wide taps over a large model hold millions of neurons per
// image; a fit keeps rows x neurons activations in memory, so each layer keeps at most its share of
// a neuron budget, a seeded random sample of its neurons. The bank records the sample (layer size,
// seed and a digest of the indices) so that detection taps exactly the same neurons.
import { createHash } from 'node:crypto';

import { SeededRandom } from '../random.js';

/** A recorded sample: `count` of the layer's `of` neurons, drawn with `seed`; `digest` pins the indices. */
export interface TapSample {
  of: number;
  count: number;
  seed: number;
  /** First 16 hex digits of the SHA-256 of the sorted indices (uint32, little-endian). */
  digest: string;
}

/** Activation memory a fit may hold for one class when no budget is given: 512 MiB. */
export const defaultActivationBytes = 512 * 2 ** 20;

/**
 * The neuron budget that keeps `rows` activation rows within `bytes` (float32): what a fit of one
 * class holds at once (its clean images and every family's attacked images).
 */
export function neuronBudget(rows: number, bytes = defaultActivationBytes): number {
  if (!Number.isInteger(rows) || rows < 1)
    throw new RangeError(`Expected a positive integer for rows but received ${rows}`);
  if (!(bytes > 0)) throw new RangeError(`Expected a positive number of bytes but received ${bytes}`);
  return Math.max(1, Math.floor(bytes / (rows * 4)));
}

/** The default budget: the default fit (400 clean + 2 families x 400 attacked images) in the default memory. */
export const defaultNeuronBudget = neuronBudget(400 + 2 * 400);

/**
 * How many neurons each layer keeps within `budget` (water-filling: every layer gets an equal share,
 * layers smaller than it keep all their neurons and leave the rest to the others). `whole` marks
 * layers kept whole regardless (the logits).
 */
export function allocateBudget(sizes: number[], budget: number, whole: boolean[] = []): number[] {
  const keep = sizes.map((s, i) => (whole[i] ? s : 0));
  let left = budget - keep.reduce((a, b) => a + b, 0);
  let open = sizes.map((_, i) => i).filter((i) => !whole[i]);
  while (open.length > 0) {
    const share = Math.floor(Math.max(0, left) / open.length);
    const small = open.filter((i) => sizes[i]! <= share);
    if (small.length === 0) {
      // Every open layer is larger than the share: each takes the share, and the remainder goes
      // one neuron each to the first layers, so the budget is spent exactly.
      let extra = Math.max(0, left) - share * open.length;
      for (const i of open) keep[i] = Math.max(1, share + (extra-- > 0 ? 1 : 0));
      break;
    }
    for (const i of small) {
      keep[i] = sizes[i]!;
      left -= sizes[i]!;
    }
    open = open.filter((i) => sizes[i]! > share);
  }
  return keep;
}

/** `count` distinct indices of [0, of), ascending, drawn with `seed` (Floyd's algorithm). */
export function sampleIndices(of: number, count: number, seed: number): Uint32Array {
  if (!Number.isInteger(count) || count < 1 || count > of) {
    throw new RangeError(`Expected a sample size in [1, ${of}] but received ${count}`);
  }
  const rng = new SeededRandom(seed);
  const chosen = new Set<number>();
  for (let j = of - count; j < of; j++) {
    const t = rng.int(j + 1);
    chosen.add(chosen.has(t) ? j : t);
  }
  return Uint32Array.from(chosen).sort();
}

export function sampleDigest(indices: Uint32Array): string {
  const bytes = new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength);
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** Draws a layer's sample and records it. */
export function drawSample(of: number, count: number, seed: number): { sample: TapSample; indices: Uint32Array } {
  const indices = sampleIndices(of, count, seed);
  return { sample: { of, count, seed, digest: sampleDigest(indices) }, indices };
}

/** The indices of a recorded sample; throws when they miss its digest (another algorithm, or a tampered record). */
export function replaySample(sample: TapSample, tensor: string): Uint32Array {
  const indices = sampleIndices(sample.of, sample.count, sample.seed);
  if (sampleDigest(indices) !== sample.digest) {
    throw new RangeError(
      `The recorded neuron sample of tap '${tensor}' (${sample.count} of ${sample.of}, seed ${sample.seed}) ` +
        `does not reproduce its digest ${sample.digest}: the bank was written by an incompatible version or altered`,
    );
  }
  return indices;
}

/** A per-layer seed from the fit's seed and the layer's position, so layers of equal size draw differently. */
export function layerSeed(seed: number, position: number): number {
  return (Math.imul(seed >>> 0, 0x9e3779b1) + Math.imul(position + 1, 0x85ebca6b)) >>> 0;
}
