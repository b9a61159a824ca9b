// Model cards: a JSON file beside an ONNX model (`m.onnx` -> `m.json`) that may name the layers a
// detector should tap (`detectorTaps.tensors`), chosen by measurement for that model. The committed
// models have one; a user's model usually has none, and then the detector taps the 'wide' set.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

export class ModelCardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelCardError';
  }
}

/** The card's path for a model file. */
export function cardPath(modelPath: string): string {
  return join(dirname(modelPath), `${basename(modelPath, extname(modelPath))}.json`);
}

/** The detector taps the model's card names, or undefined when the model has no card or the card names none. */
export function cardTaps(modelPath: string): string[] | undefined {
  const path = cardPath(modelPath);
  if (!existsSync(path)) return undefined;
  let card: unknown;
  try {
    card = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ModelCardError(`${path}: the model card is not valid JSON (${(error as Error).message})`);
  }
  const taps = (card as { detectorTaps?: { tensors?: unknown } } | null)?.detectorTaps?.tensors;
  if (taps === undefined) return undefined;
  if (!Array.isArray(taps) || taps.length === 0 || taps.some((t) => typeof t !== 'string' || t === '')) {
    throw new ModelCardError(`${path}: detectorTaps.tensors must be a non-empty list of tensor names`);
  }
  return taps as string[];
}
