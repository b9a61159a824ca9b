// POST /v1/detect bodies made into rows for the model, every one checked before it is queued: a bad
// input is the client's error (a 4xx naming it), never a failed batch for the other requests.
//   image/jpeg, image/png, image/webp   one encoded image (decoded off the main thread, bounded)
//   application/octet-stream            float32 little-endian rows; ?dims=N,C,H,W (or C,H,W)
//   application/json                    {"inputs": [{"image": base64} | {"tensor": base64, "dims": [...]}
//                                         | {"data": [numbers], "dims": [...]}, ...]}
import type { Layout } from '../model/index.js';
import { decodeForModel, pixelProblems } from '../detect/index.js';

/** A client's mistake: answered with its status code and a JSON body { error: { code, message } }. */
export class RequestError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'RequestError';
  }
}

export interface ModelInput {
  /** One row's shape, in the model's layout ([C, H, W] or [H, W, C]). */
  shape: readonly number[];
  /** The model's layout: decoded images are put in it. */
  layout: Layout;
  /** Pixel values allowed, or 'any'. */
  inputRange: readonly [number, number] | 'any';
  /** Most rows in one request. */
  maxInputs: number;
}

export interface Rows {
  data: Float32Array;
  rows: number;
}

export const imageTypes: readonly string[] = ['image/jpeg', 'image/png', 'image/webp'];

export async function rowsFromBody(
  contentType: string,
  body: unknown,
  query: { dims?: unknown },
  model: ModelInput,
): Promise<Rows> {
  let parts: Rows[];
  if (imageTypes.includes(contentType)) parts = [await imageRows(body as Buffer, model, 'body')];
  else if (contentType === 'application/octet-stream') {
    if (typeof query.dims !== 'string')
      throw new RequestError(400, 'MISSING_DIMS', 'a float32 body needs ?dims=N,C,H,W (or C,H,W)');
    parts = [tensorRows(body as Buffer, parseDims(query.dims, 'dims'), model, 'body')];
  } else parts = await jsonRows(body, model);
  const rows = parts.reduce((a, p) => a + p.rows, 0);
  if (rows > model.maxInputs)
    throw new RequestError(413, 'TOO_MANY_INPUTS', `${rows} inputs in one request; at most ${model.maxInputs}`);
  const data = parts.length === 1 ? parts[0]!.data : concat(parts);
  const problems = pixelProblems(data, rows, model.inputRange);
  const bad = problems.findIndex((p) => p !== undefined);
  if (bad >= 0) throw new RequestError(422, 'BAD_VALUES', `input row ${bad}: ${problems[bad]}`);
  return { data, rows };
}

async function jsonRows(body: unknown, model: ModelInput): Promise<Rows[]> {
  const inputs = (body as { inputs?: unknown } | null)?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0)
    throw new RequestError(400, 'BAD_JSON', 'expected {"inputs": [...]} with at least one input');
  if (inputs.length > model.maxInputs)
    throw new RequestError(
      413,
      'TOO_MANY_INPUTS',
      `${inputs.length} inputs in one request; at most ${model.maxInputs}`,
    );
  const out: Rows[] = [];
  for (const [i, item] of inputs.entries()) {
    const where = `inputs[${i}]`;
    const x = (item ?? {}) as { image?: unknown; tensor?: unknown; data?: unknown; dims?: unknown };
    if (typeof x.image === 'string') out.push(await imageRows(base64(x.image, `${where}.image`), model, where));
    else if (typeof x.tensor === 'string')
      out.push(tensorRows(base64(x.tensor, `${where}.tensor`), dimsOf(x.dims, `${where}.dims`), model, where));
    else if (Array.isArray(x.data)) {
      if (!x.data.every((v) => typeof v === 'number'))
        throw new RequestError(400, 'BAD_JSON', `${where}.data: expected an array of numbers`);
      const data = Float32Array.from(x.data as number[]);
      out.push(checkShape(data, dimsOf(x.dims, `${where}.dims`), model, where));
    } else
      throw new RequestError(
        400,
        'BAD_JSON',
        `${where}: expected {"image": base64}, {"tensor": base64, "dims": [...]} or {"data": [...], "dims": [...]}`,
      );
  }
  return out;
}

async function imageRows(bytes: Buffer, model: ModelInput, where: string): Promise<Rows> {
  if (!Buffer.isBuffer(bytes) || bytes.length === 0) throw new RequestError(400, 'EMPTY_BODY', `${where}: no image`);
  try {
    return { data: await decodeForModel(bytes, [...model.shape], model.layout, where), rows: 1 };
  } catch (error) {
    throw new RequestError(422, 'IMAGE_NOT_DECODED', `${where}: ${(error as Error).message}`);
  }
}

function tensorRows(bytes: Buffer, dims: number[], model: ModelInput, where: string): Rows {
  if (!Buffer.isBuffer(bytes) || bytes.length % 4 !== 0)
    throw new RequestError(400, 'BAD_TENSOR', `${where}: ${bytes?.length ?? 0} bytes is not a whole number of float32`);
  const data = new Float32Array(bytes.length / 4);
  // A copy into aligned memory: the body's bytes may start at any offset. Little-endian, as x64 and arm64.
  new Uint8Array(data.buffer).set(bytes);
  return checkShape(data, dims, model, where);
}

function checkShape(data: Float32Array, dims: number[], model: ModelInput, where: string): Rows {
  const full = dims.length === 3 ? [1, ...dims] : dims;
  const shape = model.shape;
  if (full.length !== 4 || full.slice(1).some((d, j) => d !== shape[j]))
    throw new RequestError(
      400,
      'BAD_DIMS',
      `${where}: expected dims [N, ${shape.join(', ')}] or [${shape.join(', ')}] but received [${dims.join(', ')}]`,
    );
  const values = full.reduce((a, v) => a * v, 1);
  if (data.length !== values)
    throw new RequestError(
      400,
      'BAD_TENSOR',
      `${where}: dims [${dims.join(', ')}] hold ${values} values, not ${data.length}`,
    );
  return { data, rows: full[0]! };
}

function parseDims(text: string, where: string): number[] {
  return dimsOf(
    text.split(',').map((s) => (s.trim() === '' ? Number.NaN : Number(s))),
    where,
  );
}

function dimsOf(value: unknown, where: string): number[] {
  if (!Array.isArray(value) || !value.every((d) => Number.isSafeInteger(d) && d >= 1))
    throw new RequestError(400, 'BAD_DIMS', `${where}: expected positive integers, e.g. [1, 1, 28, 28]`);
  return value as number[];
}

function base64(text: string, where: string): Buffer {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text))
    throw new RequestError(400, 'BAD_BASE64', `${where}: not base64`);
  return Buffer.from(text, 'base64');
}

function concat(parts: Rows[]): Float32Array {
  const data = new Float32Array(parts.reduce((a, p) => a + p.data.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at);
    at += p.data.length;
  }
  return data;
}
