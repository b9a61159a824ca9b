// The .nfp bank file. Bank files are untrusted input, so every field is checked before use.
// Little-endian layout (version 1):
//   magic "NFPBANK\0" | u32 version | u32 header length H | H bytes of JSON header | zero padding
//   to a multiple of 4 | u32 indices [F x k] | f32 mu0 [F] | f32 sd0 [F] | f32 mu1 [families x F] |
//   f32 sd1 [families x F] | f32 effect [F] | SHA-256 of every byte before it (32 bytes)
// where F is the sum of the header's per-class counts. Version 2 is a signed bank: the same, then
// an Ed25519 signature trailer of every byte before it (signature.ts). Writes go to a temporary
// file that is flushed to disk and then renamed, so a crash never leaves half a bank under the real
// name, and temporary files of writers that died are removed by the next write.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

import type { TapSample } from '../model/index.js';
import { BankFormatError, FingerprintBank } from './bank.js';
import { SignatureError, checkSignature, signatureTrailer, signatureTrailerBytes } from './signature.js';
import type { KeyInput } from './signature.js';
import type { BankArrays, BankClass, BankHeader, Calibration, ConfidenceCalibration, DataRecord } from './types.js';

export const bankMagic = 'NFPBANK\0';
export const bankVersion = 1;
/** The version of a signed bank: version 1's layout and a signature trailer. */
export const signedBankVersion = 2;
const MAX_HEADER_BYTES = 64 * 1024 * 1024;
const MAX_CLASSES = 1_000_000;
const MAX_FAMILIES = 64;
const MAX_K = 4096;
const MAX_NEURONS = 2 ** 31 - 1;
/** JSON nesting the header may have: its own is 5 deep; deeper is an attack on the parser's stack. */
const MAX_HEADER_DEPTH = 32;

/** The file's bytes: version 1, or version 2 with a signature when a private key is given. */
export function encodeBank(bank: FingerprintBank, options: { privateKey?: KeyInput } = {}): Uint8Array {
  const content = encodeContent(bank, options.privateKey === undefined ? bankVersion : signedBankVersion);
  if (options.privateKey === undefined) return content;
  const out = new Uint8Array(content.length + signatureTrailerBytes);
  out.set(content, 0);
  out.set(signatureTrailer(content, options.privateKey), content.length);
  return out;
}

function encodeContent(bank: FingerprintBank, version: number): Uint8Array {
  const json = Buffer.from(JSON.stringify(bank.header), 'utf8');
  const headerEnd = align4(16 + json.length);
  const a = bank.arrays;
  const arrays = [a.indices, a.mu0, a.sd0, a.mu1, a.sd1, a.effect];
  const body = arrays.reduce((n, t) => n + t.byteLength, 0);
  const out = new Uint8Array(headerEnd + body + 32);
  const view = new DataView(out.buffer);
  out.set(Buffer.from(bankMagic, 'latin1'), 0);
  view.setUint32(8, version, true);
  view.setUint32(12, json.length, true);
  out.set(json, 16);
  let at = headerEnd;
  for (const t of arrays) {
    // Typed arrays are host-endian; every platform Node supports is little-endian.
    out.set(new Uint8Array(t.buffer, t.byteOffset, t.byteLength), at);
    at += t.byteLength;
  }
  out.set(createHash('sha256').update(out.subarray(0, at)).digest(), at);
  return out;
}

/**
 * Writes atomically: a temporary file in the same folder, flushed to disk, then a rename (and the
 * folder flushed). Temporary files left by writers that died are removed first. With a private key
 * the bank is signed (version 2).
 */
export function writeBank(path: string, bank: FingerprintBank, options: { privateKey?: KeyInput } = {}): void {
  removeStaleTemporaries(path);
  const bytes = encodeBank(bank, options);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  try {
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch {
    // Some file systems cannot flush a folder; the rename itself is still atomic.
  }
}

/** Removes `<name>.tmp-<pid>-<time>` files beside `path` whose writer process no longer runs. */
function removeStaleTemporaries(path: string): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}.tmp-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(prefix) ? /^(\d+)-\d+$/.exec(name.slice(prefix.length)) : null;
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid !== process.pid && !processRuns(pid)) rmSync(join(dir, name), { force: true });
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ReadBankOptions {
  /** The deployment's public key: the bank must be signed by it and unaltered since. */
  publicKey?: KeyInput;
}

export function readBank(path: string, options: ReadBankOptions = {}): FingerprintBank {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new BankFormatError(basename(path), `cannot read (${(error as Error).message})`);
  }
  return decodeBank(bytes, basename(path), options);
}

export function decodeBank(bytes: Uint8Array, source = 'bank', options: ReadBankOptions = {}): FingerprintBank {
  const fail = (message: string): never => {
    throw new BankFormatError(source, message);
  };
  if (bytes.length < 16 + 32) fail(`too short to be a bank (${bytes.length} bytes)`);
  if (Buffer.from(bytes.subarray(0, 8)).toString('latin1') !== bankMagic) fail('not a bank file (bad magic)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== bankVersion && version !== signedBankVersion)
    fail(
      `unsupported bank format version ${version}; this build reads versions ${bankVersion} and ${signedBankVersion}`,
    );
  const signed = version === signedBankVersion;
  if (!signed && options.publicKey !== undefined)
    fail('the bank is not signed, but a public key was given: sign it with nfp bank sign');
  if (signed && bytes.length < 16 + 32 + signatureTrailerBytes)
    fail(`too short to be a signed bank (${bytes.length} bytes)`);
  const end = signed ? bytes.length - signatureTrailerBytes : bytes.length;
  let signature: string | undefined;
  if (signed) {
    try {
      signature = checkSignature(bytes.subarray(0, end), bytes.subarray(end), options.publicKey);
    } catch (error) {
      if (error instanceof SignatureError) fail(error.message);
      throw error;
    }
  }
  const headerLength = view.getUint32(12, true);
  if (headerLength > MAX_HEADER_BYTES || 16 + headerLength + 32 > end)
    fail(`header length ${headerLength} does not fit in the file (${bytes.length} bytes)`);
  const bodyEnd = end - 32;
  const digest = createHash('sha256').update(bytes.subarray(0, bodyEnd)).digest();
  if (!digest.equals(bytes.subarray(bodyEnd, end))) fail('checksum mismatch: the file is corrupt or truncated');
  let json: unknown;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(16, 16 + headerLength));
    if (jsonDepth(text) > MAX_HEADER_DEPTH) fail(`header nests deeper than ${MAX_HEADER_DEPTH} levels`);
    json = JSON.parse(text);
  } catch (error) {
    if (error instanceof BankFormatError) throw error;
    fail(`header is not valid JSON (${(error as Error).message})`);
  }
  const header = checkHeader(json, fail);
  const F = header.classes.reduce((n, c) => n + c.count, 0);
  const fam = header.families.length;
  const headerEnd = align4(16 + headerLength);
  for (let i = 16 + headerLength; i < headerEnd; i++) if (bytes[i] !== 0) fail('nonzero header padding');
  const expected = F * header.k * 4 + F * 4 * 3 + fam * F * 4 * 2;
  if (headerEnd + expected !== bodyEnd)
    fail(
      `expected ${expected} bytes of fingerprint arrays ` +
        `for ${F} fingerprints but the file holds ${bodyEnd - headerEnd}`,
    );
  // Copy into aligned arrays (a Buffer's offset need not be a multiple of 4).
  const body = new Uint8Array(expected);
  body.set(bytes.subarray(headerEnd, bodyEnd));
  let at = 0;
  const take = <T extends Uint32Array | Float32Array>(
    make: (b: ArrayBuffer, o: number, n: number) => T,
    n: number,
  ): T => {
    const t = make(body.buffer, at, n);
    at += n * 4;
    return t;
  };
  const arrays: BankArrays = {
    indices: take((b, o, n) => new Uint32Array(b, o, n), F * header.k),
    mu0: take((b, o, n) => new Float32Array(b, o, n), F),
    sd0: take((b, o, n) => new Float32Array(b, o, n), F),
    mu1: take((b, o, n) => new Float32Array(b, o, n), fam * F),
    sd1: take((b, o, n) => new Float32Array(b, o, n), fam * F),
    effect: take((b, o, n) => new Float32Array(b, o, n), F),
  };
  const bad = arrays.indices.findIndex((v) => v >= header.neurons);
  if (bad >= 0)
    fail(`fingerprint index ${arrays.indices[bad]} at position ${bad} is out of range for ${header.neurons} neurons`);
  for (const [name, a, positive] of [
    ['mu0', arrays.mu0, false],
    ['sd0', arrays.sd0, true],
    ['mu1', arrays.mu1, false],
    ['sd1', arrays.sd1, true],
    ['effect', arrays.effect, false],
  ] as const) {
    const i = a.findIndex((v) => !Number.isFinite(v) || (positive && !(v > 0)));
    if (i >= 0) fail(`${name}[${i}] is ${a[i]}, expected a finite${positive ? ' positive' : ''} number`);
  }
  return new FingerprintBank(
    header,
    arrays,
    signature === undefined ? undefined : { keyId: signature, verified: options.publicKey !== undefined },
  );
}

/** The deepest nesting of arrays and objects in JSON text, counted outside strings, without parsing it. */
function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++;
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (ch === 0x5d || ch === 0x7d) depth--;
  }
  return deepest;
}

/** [lo, hi] with finite lo < hi. */
function inputRange(v: unknown, fail: Fail): [number, number] {
  const r = list(v, 'model.inputRange', 2, fail);
  if (r.length !== 2) fail('header field model.inputRange must be [lo, hi]');
  const lo = num(r[0], 'model.inputRange[0]', fail);
  const hi = num(r[1], 'model.inputRange[1]', fail);
  if (!(lo < hi)) fail('header field model.inputRange must have lo < hi');
  return [lo, hi];
}

/** A rate in (0, 1). */
function rate(v: unknown, what: string, fail: Fail): number {
  const x = num(v, what, fail);
  if (!(x > 0 && x < 1)) fail(`header field ${what} must be in (0, 1) but is ${x}`);
  return x;
}

/** A number in [0, 1]. */
function share(v: unknown, what: string, fail: Fail): number {
  const x = num(v, what, fail);
  if (x < 0 || x > 1) fail(`header field ${what} must be in [0, 1] but is ${x}`);
  return x;
}

/** A tap's recorded neuron sample: `count` (the tap's size) of the layer's `of` neurons. */
function tapSample(v: unknown, what: string, size: number, fail: Fail): TapSample {
  if (!isObject(v)) fail(`header field ${what} must be an object`);
  const s = v as Record<string, unknown>;
  const of = int(s.of, `${what}.of`, 1, MAX_NEURONS, fail);
  const count = int(s.count, `${what}.count`, 1, of, fail);
  if (count !== size) fail(`header field ${what}.count is ${count} but the tap's size is ${size}`);
  const digest = str(s.digest, `${what}.digest`, fail);
  if (!/^[0-9a-f]{16}$/.test(digest)) fail(`header field ${what}.digest must be 16 hex digits`);
  return { of, count, seed: int(s.seed, `${what}.seed`, 0, 2 ** 32 - 1, fail), digest };
}

function align4(n: number): number {
  return Math.ceil(n / 4) * 4;
}

type Fail = (message: string) => never;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(v: unknown, what: string, lo: number, hi: number, fail: Fail): number {
  if (!Number.isInteger(v) || (v as number) < lo || (v as number) > hi)
    fail(`header field ${what} must be an integer in [${lo}, ${hi}] but is ${JSON.stringify(v)}`);
  return v as number;
}

function num(v: unknown, what: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isFinite(v))
    fail(`header field ${what} must be a finite number but is ${JSON.stringify(v)}`);
  return v as number;
}

// C0 and C1 controls and bidirectional overrides: printed raw, they would drive the reader's terminal.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

function str(v: unknown, what: string, fail: Fail): string {
  if (typeof v !== 'string') fail(`header field ${what} must be a string but is ${JSON.stringify(v)}`);
  if (CONTROL.test(v as string)) fail(`header field ${what} holds control characters`);
  return v as string;
}

function list(v: unknown, what: string, max: number, fail: Fail): unknown[] {
  if (!Array.isArray(v) || v.length > max) fail(`header field ${what} must be an array of at most ${max} entries`);
  return v as unknown[];
}

function range(v: unknown, what: string, fail: Fail): [number, number] {
  const r = list(v, what, 2, fail);
  if (r.length !== 2) fail(`header field ${what} must be [start, end]`);
  const [a, b] = [int(r[0], `${what}[0]`, 0, 2 ** 31, fail), int(r[1], `${what}[1]`, 0, 2 ** 31, fail)];
  if (b < a) fail(`header field ${what} must have start <= end`);
  return [a, b];
}

/** [center, scale > 0] of one statistic. */
function centerScale(v: unknown, name: string, fail: Fail): [number, number] {
  const entry = list(v, name, 2, fail);
  if (entry.length !== 2) fail(`header field ${name} must be [center, scale]`);
  const center = num(entry[0], `${name}[0]`, fail),
    scale = num(entry[1], `${name}[1]`, fail);
  if (!(scale > 0)) fail(`header field ${name}[1] must be a positive scale`);
  return [center, scale];
}

/** The confidence term: per class, [center, scale] per attack family and of the margin statistic. */
function confidenceCalibration(
  value: unknown,
  classCount: number,
  familyCount: number,
  fail: Fail,
): ConfidenceCalibration {
  if (!isObject(value)) fail('header field calibration.confidence must be an object');
  const c = value as Record<string, unknown>;
  const perClass = (field: string): unknown[] => {
    const items = list(c[field], `calibration.confidence.${field}`, MAX_CLASSES, fail);
    if (items.length !== classCount) fail(`header field calibration.confidence.${field} must have one entry per class`);
    return items;
  };
  const fingerprint = perClass('fingerprint').map((byFamily, i) => {
    const name = `calibration.confidence.fingerprint[${i}]`;
    const entries = list(byFamily, name, MAX_FAMILIES, fail);
    if (entries.length !== familyCount) fail(`header field ${name} must have one entry per attack family`);
    return entries.map((e, a) => centerScale(e, `${name}[${a}]`, fail));
  });
  const margin = perClass('margin').map((e, i) => centerScale(e, `calibration.confidence.margin[${i}]`, fail));
  return { fingerprint, margin };
}

function checkData(v: unknown, fail: Fail): DataRecord {
  if (!isObject(v)) fail('header field fit.data must be an object');
  const d = v as Record<string, unknown>;
  const sha = str(d.sha256, 'fit.data.sha256', fail);
  if (!/^[0-9a-f]{64}$/.test(sha)) fail('header field fit.data.sha256 must be 64 hex digits');
  return {
    source: str(d.source, 'fit.data.source', fail),
    sha256: sha,
    images: int(d.images, 'fit.data.images', 0, 2 ** 31, fail),
    fit: range(d.fit, 'fit.data.fit', fail),
    ...(d.calibration !== undefined ? { calibration: range(d.calibration, 'fit.data.calibration', fail) } : {}),
  };
}

function checkHeader(h: unknown, fail: Fail): BankHeader {
  if (!isObject(h)) fail('header is not a JSON object');
  const o = h as Record<string, unknown>;
  if (!isObject(o.model)) fail('header field model is missing');
  const m = o.model as Record<string, unknown>;
  const sha = str(m.sha256, 'model.sha256', fail);
  if (!/^[0-9a-f]{64}$/.test(sha)) fail('header field model.sha256 must be 64 hex digits');
  const classCount = int(m.classes, 'model.classes', 1, MAX_CLASSES, fail);
  const inputShape = list(m.inputShape, 'model.inputShape', 8, fail).map((d, i) =>
    int(d, `model.inputShape[${i}]`, 1, 2 ** 20, fail),
  );
  const neurons = int(o.neurons, 'neurons', 1, MAX_NEURONS, fail);
  const k = int(o.k, 'k', 1, Math.min(MAX_K, neurons), fail);
  const families = list(o.families, 'families', MAX_FAMILIES, fail).map((f, i) => str(f, `families[${i}]`, fail));
  if (families.length === 0) fail('header field families must name at least one attack family');
  let tapTotal = 0;
  const taps = list(o.taps, 'taps', 4096, fail).map((t, i) => {
    if (!isObject(t)) fail(`header field taps[${i}] must be an object`);
    const tap = t as Record<string, unknown>;
    const size = int(tap.size, `taps[${i}].size`, 1, MAX_NEURONS, fail);
    tapTotal += size;
    const tensor = str(tap.tensor, `taps[${i}].tensor`, fail);
    if (tap.sample === undefined) return { tensor, size };
    return { tensor, size, sample: tapSample(tap.sample, `taps[${i}].sample`, size, fail) };
  });
  if (tapTotal !== neurons) fail(`tap sizes add up to ${tapTotal} but neurons is ${neurons}`);
  const classes = list(o.classes, 'classes', MAX_CLASSES, fail).map((c, i): BankClass => {
    if (!isObject(c)) fail(`header field classes[${i}] must be an object`);
    const e = c as Record<string, unknown>;
    if (typeof e.fitted !== 'boolean') fail(`header field classes[${i}].fitted must be true or false`);
    const attacked = list(e.attacked, `classes[${i}].attacked`, MAX_FAMILIES, fail).map((n, j) =>
      int(n, `classes[${i}].attacked[${j}]`, 0, 2 ** 31, fail),
    );
    if (attacked.length !== families.length) fail(`header field classes[${i}].attacked must have one count per family`);
    return {
      fitted: e.fitted as boolean,
      count: int(e.count, `classes[${i}].count`, 0, 2 ** 31, fail),
      clean: int(e.clean, `classes[${i}].clean`, 0, 2 ** 31, fail),
      attacked,
      passed: int(e.passed, `classes[${i}].passed`, 0, 2 ** 53, fail),
      ...(e.redundancy !== undefined ? { redundancy: share(e.redundancy, `classes[${i}].redundancy`, fail) } : {}),
      ...(e.relaxed !== undefined ? { relaxed: str(e.relaxed, `classes[${i}].relaxed`, fail) } : {}),
    };
  });
  if (classes.length !== classCount) fail(`header lists ${classes.length} classes but model.classes is ${classCount}`);
  const F = classes.reduce((n, c) => n + c.count, 0);
  // Bounds the arrays before anything is allocated: the file length check then settles it.
  if (F * k > 2 ** 31 || F * families.length > 2 ** 31)
    fail(`${F} fingerprints of ${k} neurons are more than a bank can hold`);
  if (!isObject(o.fit)) fail('header field fit is missing');
  const fit = o.fit as Record<string, unknown>;
  let calibration: Calibration | undefined;
  if (o.calibration !== undefined) {
    if (!isObject(o.calibration)) fail('header field calibration must be an object');
    const c = o.calibration as Record<string, unknown>;
    const perClass = list(c.perClass, 'calibration.perClass', MAX_CLASSES, fail).map((t, i) =>
      t === null ? null : num(t, `calibration.perClass[${i}]`, fail),
    );
    if (perClass.length !== classCount) fail('header field calibration.perClass must have one entry per class');
    if (c.combine !== 'max' && c.combine !== 'logsumexp')
      fail("header field calibration.combine must be 'max' or 'logsumexp'");
    calibration = {
      fpr: rate(c.fpr, 'calibration.fpr', fail),
      draws: int(c.draws, 'calibration.draws', 1, 1_000_000, fail),
      combine: c.combine as 'max' | 'logsumexp',
      global: num(c.global, 'calibration.global', fail),
      perClass,
      images: int(c.images, 'calibration.images', 0, 2 ** 31, fail),
      drawsPerImage: int(c.drawsPerImage, 'calibration.drawsPerImage', 1, 1_000_000, fail),
    };
    if (c.confidence !== undefined)
      calibration.confidence = confidenceCalibration(c.confidence, classCount, families.length, fail);
  }
  return {
    model: {
      sha256: sha,
      source: str(m.source, 'model.source', fail),
      inputShape,
      classes: classCount,
      ...(m.inputRange !== undefined ? { inputRange: inputRange(m.inputRange, fail) } : {}),
    },
    taps,
    neurons,
    k,
    families,
    classes,
    fit: {
      candidates: int(fit.candidates, 'fit.candidates', 1, 2 ** 31, fail),
      k: int(fit.k, 'fit.k', 1, MAX_K, fail),
      pMax: num(fit.pMax, 'fit.pMax', fail),
      dMin: num(fit.dMin, 'fit.dMin', fail),
      topK: int(fit.topK, 'fit.topK', 1, 2 ** 31, fail),
      minFingerprints: int(fit.minFingerprints, 'fit.minFingerprints', 0, 2 ** 31, fail),
      // Banks written before the correlation cap existed kept every fingerprint: a cap of 1.
      maxCorrelation: fit.maxCorrelation === undefined ? 1 : num(fit.maxCorrelation, 'fit.maxCorrelation', fail),
      ...(fit.activationBytes !== undefined
        ? { activationBytes: int(fit.activationBytes, 'fit.activationBytes', 1, Number.MAX_SAFE_INTEGER, fail) }
        : {}),
      attacks: isObject(fit.attacks)
        ? (fit.attacks as Record<string, unknown>)
        : fail('header field fit.attacks must be an object'),
      ...(fit.seed !== undefined
        ? { seed: int(fit.seed, 'fit.seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, fail) }
        : {}),
      ...(fit.cleanPerClass !== undefined
        ? { cleanPerClass: int(fit.cleanPerClass, 'fit.cleanPerClass', 0, 2 ** 31, fail) }
        : {}),
      ...(fit.attackedPerClass !== undefined
        ? { attackedPerClass: int(fit.attackedPerClass, 'fit.attackedPerClass', 0, 2 ** 31, fail) }
        : {}),
      ...(fit.data !== undefined ? { data: checkData(fit.data, fail) } : {}),
    },
    ...(calibration ? { calibration } : {}),
    created: str(o.created, 'created', fail),
  };
}
