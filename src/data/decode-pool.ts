// Where images are decoded: small ones on the main thread (sharp decodes on libuv's threads, and the
// JavaScript resize of a small image takes a few milliseconds), larger ones wholly on a few worker
// threads, so that no image, however large its accepted size, blocks the event loop of the service
// that decodes it. Workers start on first use, never hold the process open, and are never terminated
// mid-decode (libvips does not survive that).
import { availableParallelism } from 'node:os';
import type { Worker } from 'node:worker_threads';

import { planDecode, runDecodeJob } from './decode-job.js';
import type { DecodeSettings, PixelTensor } from './decode-job.js';
import { startModuleWorker } from '../worker-module.js';

/**
 * Pixels in and out below which an image is decoded inline: 512 x 512, a few milliseconds of
 * JavaScript; a larger image goes to a worker.
 */
export const inlinePixels = 512 * 512;

interface Pending {
  job: { bytes: Uint8Array; settings: DecodeSettings };
  transfer: ArrayBuffer[];
  resolve: (tensor: PixelTensor) => void;
  reject: (error: Error) => void;
}

const maxWorkers = Math.max(1, Math.min(4, availableParallelism()));

const idle: Worker[] = [];
const active = new Map<Worker, Pending>();
const queue: Pending[] = [];
const live = new Set<Worker>();

/**
 * Decodes encoded image bytes to a tensor: inline when the image and the result are small, else on a
 * worker thread. `owned` says the bytes may be handed to the worker without a copy (they are not the
 * caller's). The tensor is the same either way; errors say what is wrong with the image.
 */
export async function decodeBytes(bytes: Uint8Array, settings: DecodeSettings, owned: boolean): Promise<PixelTensor> {
  const plan = await planDecode(bytes, settings);
  if (plan.width * plan.height <= inlinePixels && plan.outWidth * plan.outHeight <= inlinePixels)
    return runDecodeJob(bytes, settings, plan);
  return decodeInWorker(bytes, settings, owned);
}

/** Decodes on a worker thread whatever the size (decodeBytes decides for callers). */
export function decodeInWorker(bytes: Uint8Array, settings: DecodeSettings, owned: boolean): Promise<PixelTensor> {
  // A view into a larger buffer would be cloned with the whole buffer: send only its bytes.
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const sent = whole ? bytes : bytes.slice();
  const transfer = (owned || !whole) && sent.buffer instanceof ArrayBuffer ? [sent.buffer] : [];
  return new Promise((resolve, reject) => {
    queue.push({ job: { bytes: sent, settings }, transfer, resolve, reject });
    dispatch();
  });
}

/** Worker threads running now (started and not exited): for tests. */
export function decodeWorkers(): number {
  return live.size;
}

function dispatch(): void {
  while (queue.length > 0) {
    let worker = idle.pop();
    if (worker === undefined) {
      if (live.size >= maxWorkers) return;
      worker = spawn();
    }
    const pending = queue.shift()!;
    active.set(worker, pending);
    worker.ref();
    worker.postMessage(pending.job, pending.transfer);
  }
}

function spawn(): Worker {
  const worker = startModuleWorker(import.meta.url, 'decode-worker');
  live.add(worker);
  worker.on('message', (reply: PixelTensor | { error: string }) => {
    const pending = active.get(worker);
    active.delete(worker);
    worker.unref();
    idle.push(worker);
    if (pending !== undefined) {
      if ('error' in reply) pending.reject(new Error(reply.error));
      else pending.resolve({ data: reply.data, width: reply.width, height: reply.height });
    }
    dispatch();
  });
  const fail = (error: Error) => retire(worker, error);
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the image worker thread exited (code ${code})`)));
  return worker;
}

/** A worker that failed or exited: its job fails with the reason, and another worker takes the queue. */
function retire(worker: Worker, error: Error): void {
  if (!live.delete(worker)) return; // already retired: 'error' is followed by 'exit'
  const at = idle.indexOf(worker);
  if (at >= 0) idle.splice(at, 1);
  const pending = active.get(worker);
  active.delete(worker);
  pending?.reject(error);
  dispatch();
}
