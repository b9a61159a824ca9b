// Parsers for the CLI's option values: each throws commander's InvalidArgumentError, which the
// `nfp` program reports as bad usage (exit code 2).
import { InvalidArgumentError, Option } from 'commander';

import { attackNames } from '../attacks/index.js';
import type { AttackName } from '../attacks/index.js';
import { baselineNames } from '../baselines/index.js';
import type { BaselineName } from '../baselines/index.js';
import { ablationParameters } from '../eval/ablation-spec.js';
import { imageFormats } from '../data/index.js';
import type { ImageFormat } from '../data/index.js';
import type { AblationParameter, AblationSpec } from '../eval/ablation-spec.js';
import type { TapSpec } from '../model/index.js';
import { ExperimentError, parseAdaptiveSettings } from '../experiment/index.js';
import type { AdaptiveSettings } from '../experiment/index.js';

export function parsePositive(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a positive number');
  return n;
}

export function parseNonNegative(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n >= 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a number >= 0');
  return n;
}

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function parseInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError('expected an integer');
  return n;
}

export function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('expected a finite number');
  return n;
}

/** A share in [0, 1). */
export function parseShare(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n < 1)) throw new InvalidArgumentError('expected a number in [0, 1)');
  return n;
}

export function parseTaps(value: string): TapSpec {
  if (value === 'auto' || value === 'wide' || value === 'default') return value;
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (names.length === 0)
    throw new InvalidArgumentError("expected 'default', 'wide', 'auto' or comma-separated layer names");
  return names;
}

/** Class numbers and ranges: '0-4,7'. */
export function parseClasses(value: string): number[] {
  const out = new Set<number>();
  for (const part of value.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw new InvalidArgumentError(`expected class numbers or ranges such as 0-4,7 but received '${part}'`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a || b - a > 1_000_000) throw new InvalidArgumentError(`bad range '${part}'`);
    for (let c = a; c <= b; c++) out.add(c);
  }
  return [...out].sort((x, y) => x - y);
}

export function parseShape(value: string): number[] {
  const dims = value.split(',').map(Number);
  if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new InvalidArgumentError('expected three positive integers C,H,W such as 3,224,224');
  }
  return dims;
}

/** Image formats: 'jpeg,png,webp,svg'. */
export function parseImageFormats(value: string): ImageFormat[] {
  const names = value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '')
    .map((s) => (s === 'jpg' ? 'jpeg' : s === 'tif' ? 'tiff' : s === 'avif' ? 'heif' : s));
  for (const n of names)
    if (!(imageFormats as readonly string[]).includes(n))
      throw new InvalidArgumentError(`unknown image format '${n}' (known: ${imageFormats.join(', ')})`);
  if (names.length === 0) throw new InvalidArgumentError('expected image formats such as jpeg,png,webp');
  return [...new Set(names)] as ImageFormat[];
}

/** Distinct attack names: 'pgd,cw'. */
export function parseAttackList(value: string): AttackName[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const n of names)
    if (!(attackNames as readonly string[]).includes(n))
      throw new InvalidArgumentError(`unknown attack '${n}' (known: ${attackNames.join(', ')})`);
  if (names.length === 0 || new Set(names).size !== names.length)
    throw new InvalidArgumentError('expected distinct attack names');
  return names as AttackName[];
}

/** `--baselines mahalanobis,lid,squeeze`: distinct peer detector names. */
export function parseBaselineList(value: string): BaselineName[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const n of names)
    if (!(baselineNames as readonly string[]).includes(n))
      throw new InvalidArgumentError(`unknown baseline '${n}' (known: ${baselineNames.join(', ')})`);
  if (names.length === 0 || new Set(names).size !== names.length)
    throw new InvalidArgumentError('expected distinct baseline names');
  return names as BaselineName[];
}

/**
 * One `--ablate <parameter>=<values>`, added to the ones before it (the option repeats): numbers
 * separated by commas for draws, top, k and candidates ('draws=1,5,25,100'); tap sets separated
 * by semicolons for taps, each 'auto' or comma-separated layer names as --taps takes them
 * ('taps=auto;/features/pool3/MaxPool_output_0,logits').
 */
export function parseAblation(value: string, previous: AblationSpec[] = []): AblationSpec[] {
  const known = ablationParameters.join(', ');
  const m = /^\s*([A-Za-z]+)\s*=(.*)$/s.exec(value);
  if (!m)
    throw new InvalidArgumentError(
      `expected <parameter>=<values> such as draws=1,5,25 or top=25,50,100 (parameters: ${known})`,
    );
  const parameter = m[1]!;
  if (!(ablationParameters as readonly string[]).includes(parameter))
    throw new InvalidArgumentError(`unknown parameter '${parameter}' (known: ${known})`);
  if (previous.some((s) => s.parameter === parameter))
    throw new InvalidArgumentError(
      `${parameter} is ablated twice: give all its values in one --ablate ${parameter}=...`,
    );
  const separator = parameter === 'taps' ? ';' : ',';
  const parts = m[2]!.split(separator).map((s) => s.trim());
  if (parts.every((s) => s === '')) throw new InvalidArgumentError(`expected at least one value after '${parameter}='`);
  const empty = parts.indexOf('');
  if (empty >= 0)
    throw new InvalidArgumentError(
      `empty value ${empty + 1} in '${parameter}=${m[2]}' (values are separated by '${separator}')`,
    );
  const repeated = parts.find((s, i) => parts.indexOf(s) !== i);
  if (repeated !== undefined)
    throw new InvalidArgumentError(`expected distinct values for ${parameter} but '${repeated}' repeats`);
  if (parameter === 'taps') {
    const sets = parts.map((part) => {
      try {
        return parseTaps(part);
      } catch {
        throw new InvalidArgumentError(
          "expected 'default', 'wide', 'auto' or comma-separated layer names for each tap set of taps " +
            `but received '${part}'`,
        );
      }
    });
    return [...previous, { parameter: 'taps', values: sets }];
  }
  const values = parts.map((part) => {
    const n = Number(part);
    if (parameter === 'correlation') {
      if (!/^(0?\.\d+|1(\.0*)?)$/.test(part) || !(n > 0 && n <= 1))
        throw new InvalidArgumentError(`expected numbers in (0, 1] for correlation but received '${part}'`);
      return n;
    }
    if (!/^\d+$/.test(part) || !Number.isSafeInteger(n) || n <= 0)
      throw new InvalidArgumentError(`expected positive integers for ${parameter} but received '${part}'`);
    return n;
  });
  return [...previous, { parameter: parameter as Exclude<AblationParameter, 'taps'>, values }];
}

/** `--layout`: the model input's layout where its declared shape does not tell. */
export function layoutOption(): Option {
  return new Option(
    '--layout <layout>',
    "the model input's layout, nchw or nhwc (default: from its declared shape; data are converted to it)",
  ).choices(['nchw', 'nhwc']);
}

/** --adaptive 'eps=0.1;weights=1;steps=100;...' (the settings' parser lives with the experiment). */
export function parseAdaptive(value: string): AdaptiveSettings {
  try {
    return parseAdaptiveSettings(value);
  } catch (error) {
    if (error instanceof ExperimentError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}
