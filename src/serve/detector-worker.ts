// The inference thread's side of DetectorThread (detector-thread.ts): loads one FingerprintDetector and
// answers its messages in order.
//   in:  { kind: 'detect', id, data, dims }  -> { kind: 'detections', id, detections } | { kind: 'error', id, ... }
//        { kind: 'release' }                 -> { kind: 'released' }
//   on start: { kind: 'ready', ... } once loaded, or { kind: 'failed', name, message }
import { parentPort, workerData } from 'node:worker_threads';

import { FingerprintDetector } from '../detect/index.js';
import type { DetectorOptions } from '../detect/index.js';
import type { ThreadReply, ThreadRequest } from './detector-thread.js';

const port = parentPort!;
const post = (reply: ThreadReply) => port.postMessage(reply);
const failure = (error: unknown) => ({
  name: (error as Error)?.name ?? 'Error',
  message: (error as Error)?.message ?? String(error),
});

let detector: FingerprintDetector | undefined;
try {
  detector = await FingerprintDetector.load(workerData as DetectorOptions);
  const { classifier } = detector;
  // Every class's threshold now, so that the service's thresholdOf needs no round trip (and an
  // uncalibrated bank fails the start, not the first request).
  const thresholds = Array.from({ length: classifier.classes }, (_, c) => detector!.thresholdOf(c));
  post({
    kind: 'ready',
    inputShape: classifier.inputShape,
    layout: classifier.layout,
    classes: classifier.classes,
    inputRange: detector.inputRange,
    thresholds,
  });
} catch (error) {
  await detector?.release();
  detector = undefined;
  post({ kind: 'failed', ...failure(error) });
}

if (detector !== undefined) {
  const live = detector;
  // One message at a time: detect() calls would only queue for the one ONNX Runtime session anyway.
  let chain = Promise.resolve();
  port.on('message', (request: ThreadRequest) => {
    chain = chain.then(async () => {
      if (request.kind === 'release') {
        await live.release();
        post({ kind: 'released' });
        port.close();
        return;
      }
      try {
        const detections = await live.detect({ data: request.data, dims: request.dims });
        post({ kind: 'detections', id: request.id, detections });
      } catch (error) {
        post({ kind: 'error', id: request.id, ...failure(error) });
      }
    });
  });
}
