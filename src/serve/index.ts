// The service's front door: `serve` loads a detector and answers HTTP (nfp serve); createService wraps a
// detector the caller already holds.
import { FingerprintDetector } from '../detect/index.js';
import type { DetectorOptions } from '../detect/index.js';
import { DetectorThread } from './detector-thread.js';
import { createService } from './server.js';
import type { ServiceOptions } from './server.js';

export { Batcher, QueueFullError } from './batcher.js';
export { bearerCheck } from './auth.js';
export { RequestError, rowsFromBody } from './inputs.js';
export { ServeMetrics } from './metrics.js';
export { defaultServeAddress, defaultServeLimits } from './options.js';
export type { ServeLimits } from './options.js';
export { DetectorThread } from './detector-thread.js';
export { createService, detectionView } from './server.js';
export type { DetectionView, ServedDetector, ServiceOptions } from './server.js';

export interface ServeOptions extends ServiceOptions {
  detector: DetectorOptions;
  host: string;
  /** 0: any free port (the address is returned). */
  port: number;
  /**
   * Run the detector on a worker thread of its own (default true), with ONNX Runtime's spinning off
   * unless `detector.allowSpinning` says otherwise; false: in the event loop's thread, as loaded.
   */
  inferenceThread?: boolean;
}

/**
 * Loads the detector (on a thread of its own unless `inferenceThread` is false), listens on host:port
 * and returns the address with a close() that stops taking requests, finishes those in flight, then
 * releases the detector.
 */
export async function serve(options: ServeOptions): Promise<{ address: string; close: () => Promise<void> }> {
  const detector =
    options.inferenceThread === false
      ? await FingerprintDetector.load(options.detector)
      : await DetectorThread.start({ allowSpinning: false, ...options.detector });
  try {
    const { app, idle } = createService(detector, options);
    // Fastify runs onClose hooks after its server has closed; requests still being scored finish first.
    app.addHook('onClose', async () => {
      await idle();
      await detector.release();
    });
    const address = await app.listen({ host: options.host, port: options.port });
    return { address, close: () => app.close() };
  } catch (error) {
    await detector.release();
    throw error;
  }
}
