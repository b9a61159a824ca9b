// Checks for attack settings, in the library's one error shape: "Expected <what> for <name> but received <value>".
import type { Norm } from './geometry.js';

export function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value))
    throw new RangeError(`Expected a positive number for ${name} but received ${String(value)}`);
  return value;
}

export function nonNegative(name: string, value: number): number {
  if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value))
    throw new RangeError(`Expected a non-negative number for ${name} but received ${String(value)}`);
  return value;
}

export function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`Expected a positive integer for ${name} but received ${String(value)}`);
  return value;
}

export function norm(name: string, value: Norm, allowed: readonly Norm[] = ['linf', 'l2']): Norm {
  if (!allowed.includes(value))
    throw new RangeError(
      `Expected ${allowed.map((a) => `'${a}'`).join(' or ')} for ${name} but received ${String(value)}`,
    );
  return value;
}

export function oneOf<T extends string>(name: string, value: T, allowed: readonly T[]): T {
  if (!allowed.includes(value))
    throw new RangeError(
      `Expected ${allowed.map((a) => `'${a}'`).join(' or ')} for ${name} but received ${String(value)}`,
    );
  return value;
}
