// What reading a few neurons of one layer costs the model run, on this machine: detect() fetches its
// bank's neurons from a session whose graph gathers them (the readout), and on a small CNN that run,
// not the scoring after it, is most of detect()'s price. The cost depends on the layer: ONNX Runtime
// keeps a CNN's convolution outputs (with the activations fused into them) and pools in a blocked
// layout, and a layer read from must leave that layout in full, so the large early layers cost most
// while late pools and dense layers read almost for free (docs/results.md, *Taps and speed*).
// Measured, not modelled: it depends on the model, the ONNX Runtime build and the CPU. `nfp layers
// --cost` prints it, to choose taps.
import { readFile } from 'node:fs/promises';

import { Classifier } from './classifier.js';
import type { ClassifierOptions } from './classifier.js';
import type { Layout } from '../data/layout.js';

/** Input values a probe batch may hold (2^28 float32: 1 GiB). */
const maxProbeValues = 2 ** 28;

export interface ReadoutCostOptions {
  /** Layers (output tensor names) to measure, one readout of each. */
  layers: readonly string[];
  /** Neurons read from each layer, spread evenly over it (default 100; a smaller layer is read whole). */
  neurons?: number;
  /** Images per run (default 32; a model that fixes its batch runs at its own). */
  batch?: number;
  /** Alternations of the plain model and the readout per layer; the medians are compared (default 3). */
  rounds?: number;
  /** About how long each block of calls runs, in seconds (default 0.25; at least 3 calls). */
  blockSeconds?: number;
  /**
   * Also measure one readout from all the layers together (default true; nothing more for one layer):
   * what a bank with fingerprints in every one of them costs.
   */
  together?: boolean;
  inputShape?: number[];
  layout?: Layout;
}

export interface ReadoutCost {
  /** The layers read from: one, or all of them together. */
  layers: string[];
  /** Their neurons per image. */
  layerNeurons: number;
  /** Neurons read (`neurons` of each layer, at most its own) and images per run. */
  neurons: number;
  batch: number;
  /** Values per image the readout run fetches besides the logits (the whole layer when the readout was not taken). */
  fetched: number;
  /** Median time of one run of the plain model (logits only) and of the readout, in ms. */
  plainMs: number;
  readoutMs: number;
  /** readoutMs / plainMs - 1. */
  cost: number;
}

export interface ReadoutCosts {
  /** One readout per layer, in the order asked. */
  layers: ReadoutCost[];
  /** One readout from every layer at once, when asked for and there are several. */
  together?: ReadoutCost;
}

/**
 * For each layer, the time of a run that reads `neurons` of its neurons against a run of the plain
 * model (logits only, no tapped layer in the graph), both timed in alternating blocks (a pause before
 * each block lets the other session's threads go idle). Throws a ClassifierError naming a layer the
 * model does not have, and a RangeError for bad settings.
 */
export async function measureReadoutCost(
  model: string | Uint8Array,
  options: ReadoutCostOptions,
): Promise<ReadoutCosts> {
  const neurons = options.neurons ?? 100;
  const batch = options.batch ?? 32;
  const rounds = options.rounds ?? 3;
  const blockSeconds = options.blockSeconds ?? 0.25;
  checkPositiveInteger('neurons', neurons);
  checkPositiveInteger('batch', batch);
  checkPositiveInteger('rounds', rounds);
  if (!(blockSeconds > 0 && blockSeconds <= 60))
    throw new RangeError(`Expected blockSeconds in (0, 60] but received ${blockSeconds}`);
  if (options.layers.length === 0) throw new RangeError('Expected at least one layer to measure');
  if (new Set(options.layers).size !== options.layers.length)
    throw new RangeError(`Expected distinct layers but received ${options.layers.join(', ')}`);
  const bytes = typeof model === 'string' ? new Uint8Array(await readFile(model)) : model;
  const load = {
    batchSize: batch,
    ...(options.inputShape ? { inputShape: options.inputShape } : {}),
    ...(options.layout ? { layout: options.layout } : {}),
  };
  const plain = await Classifier.load(bytes, { ...load, taps: [] });
  try {
    const rows = plain.fixedBatch ?? batch;
    const perImage = plain.inputShape.reduce((a, v) => a * v, 1);
    // The probe batch is held in memory and run whole: refuse one that cannot be, before allocating it.
    if (rows * perImage > maxProbeValues)
      throw new RangeError(
        `Expected a batch of at most ${Math.floor(maxProbeValues / perImage)} images of ${perImage} values ` +
          `(1 GiB of input) but received ${rows}`,
      );
    const images = probeImages(rows, plain.inputShape);
    const runPlain = () => plain.run(images, { activations: false });
    const sizes = new Map((await plain.layers()).map((l) => [l.output, l.neurons]));
    const layerSizes: number[] = [];
    for (const layer of options.layers) layerSizes.push(sizes.get(layer) ?? (await tappedNeurons(bytes, load, layer)));
    // One readout: `layers` tapped in this order, `neurons` of each (indices into their concatenation).
    const measure = async (layers: readonly string[], sizesOf: readonly number[]): Promise<ReadoutCost> => {
      const ids: number[] = [];
      let offset = 0;
      for (const size of sizesOf) {
        for (const n of evenlySpaced(size, neurons)) ids.push(offset + n);
        offset += size;
      }
      const tapped = await Classifier.load(bytes, { ...load, taps: [...layers], readout: Uint32Array.from(ids) });
      try {
        const runReadout = async () => {
          for await (const _ of tapped.runTaps(images));
        };
        const plainTimes: number[] = [];
        const readoutTimes: number[] = [];
        for (let r = 0; r < rounds; r++) {
          plainTimes.push(await timeBlock(runPlain, blockSeconds));
          readoutTimes.push(await timeBlock(runReadout, blockSeconds));
        }
        const plainMs = median(plainTimes);
        const readoutMs = median(readoutTimes);
        return {
          layers: [...layers],
          layerNeurons: offset,
          neurons: ids.length,
          batch: images.dims[0]!,
          fetched: tapped.fetchedPerImage,
          plainMs,
          readoutMs,
          cost: readoutMs / plainMs - 1,
        };
      } finally {
        await tapped.release();
      }
    };
    const each: ReadoutCost[] = [];
    for (let i = 0; i < options.layers.length; i++) each.push(await measure([options.layers[i]!], [layerSizes[i]!]));
    if (options.together === false || options.layers.length === 1) return { layers: each };
    return { layers: each, together: await measure(options.layers, layerSizes) };
  } finally {
    await plain.release();
  }
}

/** The neurons of a layer `layers()` gave no size for (loading it names a layer the model lacks). */
async function tappedNeurons(bytes: Uint8Array, load: ClassifierOptions, layer: string): Promise<number> {
  const whole = await Classifier.load(bytes, { ...load, taps: [layer] });
  await whole.release();
  return whole.neurons;
}

function checkPositiveInteger(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`Expected a positive integer for ${name} but received ${value}`);
}

/** `count` neuron indices spread evenly over `size` (all of them when count >= size). */
export function evenlySpaced(size: number, count: number): Uint32Array {
  if (count >= size) return Uint32Array.from({ length: size }, (_, i) => i);
  return Uint32Array.from({ length: count }, (_, i) => Math.floor((i * size) / count));
}

/** Fixed pseudo-random pixels in [0, 1]: the cost of a run does not depend on what the images show. */
function probeImages(rows: number, shape: readonly number[]): { data: Float32Array; dims: number[] } {
  const data = new Float32Array(rows * shape.reduce((a, v) => a * v, 1));
  let state = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    data[i] = state / 2 ** 32;
  }
  return { data, dims: [rows, ...shape] };
}

/** The median time in ms of calls over about `seconds` (at least 3), after a pause and one warm-up call. */
async function timeBlock(call: () => Promise<unknown>, seconds: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 20));
  await call();
  const times: number[] = [];
  const end = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  while (times.length < 3 || process.hrtime.bigint() < end) {
    const start = process.hrtime.bigint();
    await call();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return median(times);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
