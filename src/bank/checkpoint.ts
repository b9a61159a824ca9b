// Per-class checkpoints of a fit: each fitted class is written to a folder as a one-class bank file
// (the .nfp format: checked, checksummed, written atomically), so that a fit killed part-way (a
// preempted pod) resumes with the classes it has not fitted yet. A checkpoint is only taken up by a
// fit of the same model, taps and settings: the header, less its creation time and class table.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { FingerprintBank } from './bank.js';
import { readBank, writeBank } from './format.js';
import type { BankHeader, FittedClass } from './types.js';

/** Where a fit keeps and finds its classes (build.ts calls it; CheckpointFolder is the file-backed one). */
export interface ClassCheckpoints {
  /** Class c's fit if a checkpoint of the same fit holds it. */
  load(c: number, header: Omit<BankHeader, 'classes'>): FittedClass | undefined;
  save(c: number, header: Omit<BankHeader, 'classes'>, fitted: FittedClass): void;
}

export class CheckpointMismatchError extends Error {
  constructor(readonly file: string) {
    super(
      `${file} is a checkpoint of another fit (model, taps, data or settings differ): ` +
        'remove it or give another checkpoint folder',
    );
    this.name = 'CheckpointMismatchError';
  }
}

/**
 * Checkpoints as files `class-<c>.nfp` in a folder (made if missing). `resumed` lists the classes
 * that were loaded rather than fitted.
 *
 * @example
 * const checkpoints = new CheckpointFolder('/out/checkpoints/shard-3');
 * const bank = await buildBank({ ...options, seed: 1, checkpoints });  // killed? run it again
 */
export class CheckpointFolder implements ClassCheckpoints {
  readonly resumed: number[] = [];

  constructor(readonly folder: string) {
    if (existsSync(folder) && !statSync(folder).isDirectory())
      throw new RangeError(`Expected a folder for checkpoints but ${folder} is a file`);
    mkdirSync(folder, { recursive: true });
  }

  path(c: number): string {
    return join(this.folder, `class-${String(c).padStart(4, '0')}.nfp`);
  }

  load(c: number, header: Omit<BankHeader, 'classes'>): FittedClass | undefined {
    const file = this.path(c);
    if (!existsSync(file)) return undefined;
    const bank = readBank(file);
    if (fitIdentity(bank.header) !== fitIdentity(header)) throw new CheckpointMismatchError(file);
    const entry = bank.header.classes[c];
    if (entry?.fitted !== true) throw new CheckpointMismatchError(file);
    this.resumed.push(c);
    return { fingerprints: bank.classFingerprints(c), clean: entry.clean, attacked: [...entry.attacked] };
  }

  save(c: number, header: Omit<BankHeader, 'classes'>, fitted: FittedClass): void {
    writeBank(this.path(c), FingerprintBank.fromClasses(header, new Map([[c, fitted]])));
  }
}

/** What makes two fits the same fit: the header without its creation time, class table and calibration. */
function fitIdentity(header: Omit<BankHeader, 'classes'> & { classes?: unknown }): string {
  const { created: _created, classes: _classes, calibration: _calibration, ...rest } = header;
  return canonicalJson(rest);
}

/** JSON with object keys sorted, so that the order a header was built or parsed in does not matter. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
