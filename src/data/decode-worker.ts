// A decode worker thread (decode-pool.ts): decodes one image at a time and hands the tensor back.
import { parentPort } from 'node:worker_threads';

import { runDecodeJob } from './decode-job.js';
import type { DecodeSettings } from './decode-job.js';

parentPort!.on('message', ({ bytes, settings }: { bytes: Uint8Array; settings: DecodeSettings }) => {
  runDecodeJob(bytes, settings).then(
    ({ data, width, height }) => parentPort!.postMessage({ data, width, height }, [data.buffer as ArrayBuffer]),
    (err: unknown) => parentPort!.postMessage({ error: (err as Error).message }),
  );
});
