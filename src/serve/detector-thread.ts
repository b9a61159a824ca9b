// The service's detector on a worker thread of its own. ONNX Runtime's Node binding runs a model
// synchronously on the calling thread, so a detector in the server's event loop held up all HTTP work
// while the model ran; on its own thread, the event loop parses and answers requests while it runs.
// Measured with npm run bench:serve on the committed CNN (2 cores, client on the same machine):
// concurrency 64 5,836 and 6,046 req/s against 5,136 and 4,838 with the model in the event loop
// (--main-thread); a lone client pays about 0.2 ms. ONNX Runtime's spinning is off for it (serve): with
// spinning threads keeping both cores busy between runs, the thread gained nothing.
import type { Worker } from 'node:worker_threads';

import type { Detection, DetectorOptions } from '../detect/index.js';
import type { ImageBatch, Layout } from '../model/index.js';
import { startModuleWorker } from '../worker-module.js';

export type ThreadRequest = { kind: 'detect'; id: number; data: Float32Array; dims: number[] } | { kind: 'release' };

export type ThreadReply =
  | {
      kind: 'ready';
      inputShape: number[];
      layout: Layout;
      classes: number;
      inputRange: readonly [number, number] | 'any';
      thresholds: number[];
    }
  | { kind: 'failed'; name: string; message: string }
  | { kind: 'detections'; id: number; detections: Detection[] }
  | { kind: 'error'; id: number; name: string; message: string }
  | { kind: 'released' };

function errorFrom(reply: { name: string; message: string }): Error {
  const error = new Error(reply.message);
  error.name = reply.name;
  return error;
}

/**
 * A FingerprintDetector loaded and run on a worker thread, with what the service reads of a detector:
 * the classifier's input shape, layout and classes, the input range, per-class thresholds and
 * detect(). The bank is given as a path or bytes (the thread loads it). Should the thread stop, every
 * detect() waiting or to come fails with an error saying so, and `alive` turns false.
 */
export class DetectorThread {
  private readonly pending = new Map<number, { resolve: (d: Detection[]) => void; reject: (e: Error) => void }>();
  private next = 0;
  private stopped: Error | undefined;
  private released: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly classifier: { readonly inputShape: number[]; readonly layout: Layout; readonly classes: number },
    readonly inputRange: readonly [number, number] | 'any',
    private readonly thresholds: number[],
  ) {
    worker.on('message', (reply: ThreadReply) => {
      if (reply.kind !== 'detections' && reply.kind !== 'error') return;
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.kind === 'detections') waiting?.resolve(reply.detections);
      else waiting?.reject(errorFrom(reply));
    });
    const stop = (why: string) => {
      this.stopped ??= new Error(`The inference thread stopped (${why}): restart the service`);
      for (const { reject } of this.pending.values()) reject(this.stopped);
      this.pending.clear();
    };
    worker.on('error', (error) => stop(error.message));
    worker.on('exit', (code) => stop(`exit code ${code}`));
  }

  /** Starts the thread and loads the detector there; fails as FingerprintDetector.load would. */
  static async start(options: DetectorOptions): Promise<DetectorThread> {
    if (typeof options.bank === 'object' && !(options.bank instanceof Uint8Array))
      throw new TypeError('Expected a bank path or its bytes for the inference thread but received a bank object');
    const worker = startModuleWorker(import.meta.url, 'detector-worker', { workerData: options });
    const first = await new Promise<ThreadReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`The inference thread exited (code ${code}) while loading`)));
    });
    worker.removeAllListeners('error');
    worker.removeAllListeners('exit');
    if (first.kind !== 'ready') {
      await worker.terminate();
      throw first.kind === 'failed'
        ? errorFrom(first)
        : new Error(`Unexpected ${first.kind} from the inference thread`);
    }
    const { inputShape, layout, classes, inputRange, thresholds } = first;
    return new DetectorThread(worker, { inputShape, layout, classes }, inputRange, thresholds);
  }

  /** Whether the thread still runs (false after release() or if it stopped). */
  get alive(): boolean {
    return this.stopped === undefined && this.released === undefined;
  }

  thresholdOf(label: number): number {
    const t = this.thresholds[label];
    if (t === undefined)
      throw new RangeError(`Expected a class in [0, ${this.thresholds.length}) but received ${label}`);
    return t;
  }

  /** One Detection per row of `batch`, as FingerprintDetector.detect gives them. */
  detect(batch: ImageBatch): Promise<Detection[]> {
    if (this.released !== undefined) return Promise.reject(new Error('detect() was called after release()'));
    if (this.stopped !== undefined) return Promise.reject(this.stopped);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // The rows are copied to the thread (structured clone): the caller's buffer may be a view of a
      // request body, which must not be detached.
      const request: ThreadRequest = { kind: 'detect', id, data: batch.data, dims: [...batch.dims] };
      this.worker.postMessage(request);
    });
  }

  /** Finishes the detections asked for, releases the detector and ends the thread; twice is harmless. */
  release(): Promise<void> {
    this.released ??= (async () => {
      if (this.stopped === undefined) {
        const done = new Promise<void>((resolve) => {
          this.worker.on('message', (reply: ThreadReply) => {
            if (reply.kind === 'released') resolve();
          });
          this.worker.once('exit', () => resolve());
        });
        this.worker.postMessage({ kind: 'release' } satisfies ThreadRequest);
        await done;
      }
      await this.worker.terminate();
    })();
    return this.released;
  }
}
