// The HTTP service around one loaded detector: routes, limits, the token, metrics and error shapes.
//   POST /v1/detect  inputs (see inputs.ts) -> {"detections": [{label, score, attacked, threshold, rejected?}]}
//   GET  /healthz    {"status": "ok", ...} while serving; 503 once shutting down
//   GET  /metrics    Prometheus text
// Every error is JSON, {"error": {"code", "message"}}, and costs only its own request.
import Fastify from 'fastify';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';

import type { Detection } from '../detect/index.js';
import type { ImageBatch, Layout } from '../model/index.js';
import { bearerCheck } from './auth.js';
import { Batcher, QueueFullError } from './batcher.js';
import { imageTypes, RequestError, rowsFromBody } from './inputs.js';
import { ServeMetrics } from './metrics.js';
import { defaultServeLimits } from './options.js';
import type { ServeLimits } from './options.js';

export interface ServiceOptions {
  limits?: Partial<ServeLimits>;
  /** Bearer token required on every route but /healthz; undefined: none. */
  token?: string;
  /** Fastify's logger: false (tests), true (JSON lines on stdout) or pino options. */
  logger?: FastifyServerOptions['logger'];
}

/**
 * What the service reads of a detector: a FingerprintDetector in this thread, or a DetectorThread
 * (detector-thread.ts), whose `alive` turns false should its thread stop (/healthz then answers 503).
 */
export interface ServedDetector {
  readonly classifier: { readonly inputShape: number[]; readonly layout: Layout; readonly classes: number };
  readonly inputRange: readonly [number, number] | 'any';
  readonly alive?: boolean;
  thresholdOf(label: number): number;
  detect(batch: ImageBatch): Promise<Detection[]>;
}

/** What the service answers for one input. A score that could not be computed is null. */
export interface DetectionView {
  label: number;
  score: number | null;
  attacked: boolean;
  threshold: number;
  rejected?: string;
  unscored?: string;
}

export function detectionView(d: Detection): DetectionView {
  return {
    label: d.label,
    score: Number.isFinite(d.score) ? d.score : null,
    attacked: d.attacked,
    threshold: d.threshold,
    ...(d.rejected !== undefined ? { rejected: d.rejected } : {}),
    ...(d.unscored !== undefined ? { unscored: d.unscored } : {}),
  };
}

/**
 * The service for `detector`, not yet listening. It does not own the detector: release it once `app.close()`
 * has resolved and then `idle()` has too (a request whose client hung up is still being scored after the
 * server has closed its connection).
 */
export function createService(
  detector: ServedDetector,
  options: ServiceOptions = {},
): { app: FastifyInstance; metrics: ServeMetrics; idle: () => Promise<void> } {
  const limits: ServeLimits = { ...defaultServeLimits, ...options.limits };
  for (const [name, value] of Object.entries(limits))
    if (!(Number.isFinite(value) && value >= (name === 'batchWindowMs' ? 0 : 1)))
      throw new RangeError(
        `Expected a ${name === 'batchWindowMs' ? 'number >= 0' : 'number >= 1'} for ${name} but received ${value}`,
      );
  detector.thresholdOf(0); // an uncalibrated bank without a threshold fails here, not on the first request
  const metrics = new ServeMetrics();
  const shape = detector.classifier.inputShape;
  const batcher = new Batcher((batch) => detector.detect(batch), {
    shape,
    maxRows: limits.batchRows,
    windowMs: limits.batchWindowMs,
    queueRows: limits.queueRows,
    onBatch: (rows) => metrics.batchRows.observe(rows),
  });
  const authorized = bearerCheck(options.token);
  const model = {
    shape,
    layout: detector.classifier.layout,
    inputRange: detector.inputRange,
    maxInputs: limits.requestInputs,
  };

  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: limits.bodyBytes,
    // A client that sends slowly cannot hold a connection open for ever.
    requestTimeout: 30_000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  app.removeContentTypeParser('text/plain'); // JSON, images and float32 only: anything else is a 415
  app.addContentTypeParser([...imageTypes, 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  );

  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/healthz' || authorized(request.headers.authorization)) return;
    reply.header('www-authenticate', 'Bearer');
    throw new RequestError(401, 'UNAUTHORIZED', 'a valid bearer token is required (Authorization: Bearer <token>)');
  });
  // Once closing, answers to requests still in flight end their connections, so close() waits only for them.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    metrics.latency.observe(reply.elapsedTime / 1000, { route });
  });

  app.setErrorHandler(async (error, request, reply) => {
    const e = error as Error & { statusCode?: number; code?: string };
    let status = 500;
    let code = 'INTERNAL';
    let message = 'internal error';
    if (e instanceof RequestError) [status, code, message] = [e.statusCode, e.code, e.message];
    else if (e instanceof QueueFullError) [status, code, message] = [503, 'OVERLOADED', e.message];
    else if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500)
      [status, code, message] = [e.statusCode, e.code ?? 'BAD_REQUEST', e.message];
    else request.log.error({ err: e }, 'request failed');
    metrics.errors.inc({ code });
    if (status === 503) reply.header('retry-after', '1');
    return reply.status(status).send({ error: { code, message } });
  });
  app.setNotFoundHandler(async (request, reply) => {
    metrics.errors.inc({ code: 'NOT_FOUND' });
    return reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` } });
  });

  app.get('/healthz', async (_request, reply) => {
    if (detector.alive === false) return reply.status(503).send({ status: 'the detector has stopped' });
    return { status: 'ok', inputShape: shape, classes: detector.classifier.classes, waiting: batcher.waiting };
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(metrics.text()),
  );
  // Requests being scored, counted apart from connections: one whose client hung up keeps its place in
  // the batch after the server has let its connection go, and the detector must outlive it.
  let scoring = 0;
  let whenIdle: Array<() => void> = [];
  app.post('/v1/detect', async (request) => {
    scoring++;
    try {
      const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const { data, rows } = await rowsFromBody(type, request.body, request.query as { dims?: unknown }, model);
      const detections = await batcher.submit(data, rows);
      for (const d of detections)
        metrics.detections.inc({ outcome: d.rejected !== undefined ? 'rejected' : d.attacked ? 'attacked' : 'clean' });
      return { detections: detections.map(detectionView) };
    } finally {
      if (--scoring === 0) {
        for (const resolve of whenIdle) resolve();
        whenIdle = [];
      }
    }
  });
  const idle = () => (scoring === 0 ? Promise.resolve() : new Promise<void>((resolve) => whenIdle.push(resolve)));
  return { app, metrics, idle };
}
