// The service's settings and their defaults, with the reason for each: one owner for all of them.

export interface ServeLimits {
  /** Largest request body in bytes. */
  bodyBytes: number;
  /** Most inputs (images or tensor rows) in one request. */
  requestInputs: number;
  /** Most rows the model scores in one call (requests batched together). */
  batchRows: number;
  /** Milliseconds a request waits for others to share its model call. 0: no wait. */
  batchWindowMs: number;
  /** Rows waiting for the model past which new requests are refused (503) instead of queued. */
  queueRows: number;
}

export const defaultServeLimits: ServeLimits = {
  /** A 224x224x3 float32 tensor is 602 KB; 16 of them, or 16 phone photos, fit in 16 MiB. */
  bodyBytes: 16 * 2 ** 20,
  /** "A small batch": enough for a client to send what it has, small enough to keep latency for the others. */
  requestInputs: 32,
  /** Past 64 rows the CNN's throughput per row no longer grows (bench/detect.ts), latency does. */
  batchRows: 64,
  /**
   * 0 ms: a request that finds the model idle goes at once; requests that arrive while the model is busy
   * wait for it anyway and share the next call. That batches under load without adding latency when
   * idle (measured, bench/serve.ts: a 2 ms window cost the lone client 2 ms and gained nothing at
   * concurrency 64). A window helps clients that send in bursts onto an idle model.
   */
  batchWindowMs: 0,
  /** 16 full batches waiting: past that the client is better told to retry than left to time out. */
  queueRows: 1024,
};

export const defaultServeAddress = { host: '127.0.0.1', port: 8080 } as const;
