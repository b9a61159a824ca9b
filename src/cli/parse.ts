// Parsers for the CLI's option values: each throws commander's InvalidArgumentError, which the
// `nfp` program reports as bad usage (exit code 2).
import { InvalidArgumentError } from 'commander';

import { attackNames } from '../attacks/index.js';
import type { AttackName } from '../attacks/index.js';
import type { TapSpec } from '../model/index.js';

export function parsePositive(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a positive number');
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
  if (value === 'auto') return 'auto';
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new InvalidArgumentError("expected 'auto' or comma-separated layer names");
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

/** Distinct attack names: 'pgd,cw'. */
export function parseAttackList(value: string): AttackName[] {
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const n of names) if (!(attackNames as readonly string[]).includes(n)) throw new InvalidArgumentError(`unknown attack '${n}' (known: ${attackNames.join(', ')})`);
  if (names.length === 0 || new Set(names).size !== names.length) throw new InvalidArgumentError('expected distinct attack names');
  return names as AttackName[];
}
