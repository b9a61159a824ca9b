// nfp serve: the HTTP service on 127.0.0.1 with the committed CNN and a small bank, every endpoint,
// every bad input, requests batched together, the token, and shutdown with requests in flight.
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'chai';
import sharp from 'sharp';

import { loadFashionMnist } from '../../src/data/index.js';
import { FingerprintDetector } from '../../src/detect/index.js';
import { packageRoot } from '../../src/paths.js';
import { createService } from '../../src/serve/index.js';
import type { ServeMetrics } from '../../src/serve/index.js';
import { writeSmallBank } from '../reference/small-bank.js';
import { useTempDir } from '../reference/temp-dir.js';

const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');
const token = 'correct horse battery staple';

interface Body {
  detections: Array<{ label: number; score: number | null; attacked: boolean; threshold: number }>;
  error: { code: string; message: string };
}

interface Answer {
  status: number;
  body: Body;
}

describe('nfp serve', function () {
  this.timeout(120_000);
  const dir = useTempDir('nfp-serve-');
  const bank = () => join(dir(), 'bank.nfp');
  const test = loadFashionMnist({ split: 'test' });
  const row = (i: number) => test.data.slice(i * 784, (i + 1) * 784);
  let detector: FingerprintDetector;
  let service: ReturnType<typeof createService>;
  let metrics: ServeMetrics;
  let base = '';
  let png: Buffer;

  async function post(body: string | Uint8Array, type: string, path = '/v1/detect', auth = token): Promise<Answer> {
    const r = await fetch(`${base}${path}`, {
      method: 'POST',
      body,
      headers: { 'content-type': type, authorization: `Bearer ${auth}` },
    });
    return { status: r.status, body: (await r.json()) as Body };
  }
  const tensor = (data: Float32Array, dims: string) =>
    post(
      Buffer.from(data.buffer, data.byteOffset, data.byteLength),
      'application/octet-stream',
      `/v1/detect?dims=${dims}`,
    );

  before(async () => {
    await writeSmallBank(modelPath, bank());
    // The small bank is not calibrated: a threshold of 0 decides. Draws of 5 from its classes'
    // fingerprints, so that a draw never takes a whole class (whose scores would then all be one number).
    detector = await FingerprintDetector.load({ model: modelPath, bank: bank(), threshold: 0, draws: 5 });
    service = createService(detector, {
      token,
      limits: { requestInputs: 8, batchRows: 16, bodyBytes: 64 * 1024, batchWindowMs: 5 },
    });
    metrics = service.metrics;
    base = await service.app.listen({ host: '127.0.0.1', port: 0 });
    const pixels = Buffer.from(row(0).map((v) => Math.round(v * 255)));
    png = await sharp(pixels, { raw: { width: 28, height: 28, channels: 1 } })
      .png()
      .toBuffer();
  });

  after(async () => {
    await service?.app.close();
    await detector?.release();
  });

  it('GET /healthz answers without a token', async () => {
    const r = await fetch(`${base}/healthz`);
    expect(r.status).to.equal(200);
    expect(await r.json()).to.include({ status: 'ok', classes: 10 });
  });

  it('POST /v1/detect judges a PNG, a JPEG and a WebP image like detect() in process', async () => {
    const [expected] = await detector.detect(png);
    for (const format of ['png', 'jpeg', 'webp'] as const) {
      const bytes = format === 'png' ? png : await sharp(png)[format]({ quality: 100, lossless: true }).toBuffer();
      const r = await post(bytes, `image/${format}`);
      expect(r.status, format).to.equal(200);
      expect(r.body.detections).to.have.length(1);
      const [d] = r.body.detections;
      expect(d).to.have.keys('label', 'score', 'attacked', 'threshold');
      expect(d!.label, format).to.equal(expected!.label);
      expect(d!.threshold).to.equal(0);
      expect(d!.attacked).to.equal(d!.score! > 0);
    }
  });

  it('POST /v1/detect takes raw float32 rows with ?dims, and a JSON batch of images and tensors', async () => {
    const data = test.data.slice(0, 3 * 784);
    const expected = (await detector.detect({ data, dims: [3, 1, 28, 28] })).map((d) => d.label);
    const raw = await tensor(data, '3,1,28,28');
    expect(raw.status).to.equal(200);
    expect(raw.body.detections.map((d) => d.label)).to.deep.equal(expected);
    const one = await tensor(row(1), '1,28,28');
    expect(one.body.detections[0]!.label).to.equal(expected[1]);
    const json = await post(
      JSON.stringify({
        inputs: [
          { image: png.toString('base64') },
          { tensor: Buffer.from(row(1).buffer).toString('base64'), dims: [1, 1, 28, 28] },
          { data: Array.from(row(2)), dims: [1, 28, 28] },
        ],
      }),
      'application/json',
    );
    expect(json.status).to.equal(200);
    expect(json.body.detections.map((d) => d.label)).to.deep.equal(expected);
  });

  it('answers every bad input with a JSON 4xx naming it, and keeps serving', async () => {
    const nan = row(0);
    nan[5] = Number.NaN;
    const bright = row(0);
    bright[0] = 3;
    const f32 = (a: Float32Array) => Buffer.from(a.buffer);
    const cases: Array<[string, Promise<Answer>, number, string]> = [
      ['corrupt PNG', post(png.subarray(0, 40), 'image/png'), 422, 'IMAGE_NOT_DECODED'],
      ['text as a JPEG', post('not an image', 'image/jpeg'), 422, 'IMAGE_NOT_DECODED'],
      ['empty image', post(new Uint8Array(0), 'image/png'), 400, 'EMPTY_BODY'],
      ['wrong dims', tensor(row(0), '1,1,14,56'), 400, 'BAD_DIMS'],
      ['dims and bytes disagree', tensor(row(0), '2,1,28,28'), 400, 'BAD_TENSOR'],
      [
        'bytes not float32',
        post(new Uint8Array(7), 'application/octet-stream', '/v1/detect?dims=1,1,28,28'),
        400,
        'BAD_TENSOR',
      ],
      ['dims missing', post(f32(row(0)), 'application/octet-stream'), 400, 'MISSING_DIMS'],
      ['dims not numbers', tensor(row(0), '1,x,28,28'), 400, 'BAD_DIMS'],
      ['a NaN pixel', tensor(nan, '1,1,28,28'), 422, 'BAD_VALUES'],
      ['a pixel outside [0, 1]', tensor(bright, '1,1,28,28'), 422, 'BAD_VALUES'],
      ['wrong content type', post('hello', 'text/plain'), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'],
      ['GIF (not read by default)', post(png, 'image/gif'), 415, 'FST_ERR_CTP_INVALID_MEDIA_TYPE'],
      ['broken JSON', post('{"inputs": [', 'application/json'), 400, 'FST_ERR_CTP_INVALID_JSON_BODY'],
      ['JSON without inputs', post('{}', 'application/json'), 400, 'BAD_JSON'],
      ['JSON input of no kind', post('{"inputs": [{"pixels": 1}]}', 'application/json'), 400, 'BAD_JSON'],
      [
        'JSON data not numbers',
        post('{"inputs": [{"data": ["a"], "dims": [1,1,1]}]}', 'application/json'),
        400,
        'BAD_JSON',
      ],
      ['bad base64', post('{"inputs": [{"image": "***"}]}', 'application/json'), 400, 'BAD_BASE64'],
      ['too many inputs', tensor(test.data.slice(0, 9 * 784), '9,1,28,28'), 413, 'TOO_MANY_INPUTS'],
      ['body too large', post(new Uint8Array(65 * 1024), 'image/png'), 413, 'FST_ERR_CTP_BODY_TOO_LARGE'],
      ['no token', post(png, 'image/png', '/v1/detect', ''), 401, 'UNAUTHORIZED'],
      ['wrong token', post(png, 'image/png', '/v1/detect', `${token}x`), 401, 'UNAUTHORIZED'],
      ['unknown route', post(png, 'image/png', '/v1/detect/../../bank.nfp'), 404, 'NOT_FOUND'],
    ];
    for (const [name, answer, status, code] of cases) {
      const r = await answer;
      expect(r.status, name).to.equal(status);
      expect(r.body.error.code, name).to.equal(code);
      expect(r.body.error.message, name).to.be.a('string').and.not.empty;
    }
    expect((await fetch(`${base}/v1/detect`, { headers: { authorization: `Bearer ${token}` } })).status).to.equal(404);
    expect((await tensor(row(0), '1,1,28,28')).status).to.equal(200);
    expect(metrics.errors.get({ code: 'BAD_VALUES' })).to.equal(2);
  });

  it('batches concurrent requests into shared model calls, with independent draws per input', async () => {
    const before = metrics.batchRows.count();
    const answers = await Promise.all(Array.from({ length: 48 }, () => tensor(row(0), '1,1,28,28')));
    expect(answers.every((a) => a.status === 200)).to.equal(true);
    const calls = metrics.batchRows.count() - before;
    expect(calls).to.be.below(48); // some requests shared a call
    // One image, 48 fresh draws of its class's fingerprints: the scores are not all one number.
    const label = answers[0]!.body.detections[0]!.label;
    expect(detector.bank.header.classes[label]!.count).to.be.above(2 * detector.draws);
    const scores = new Set(answers.map((a) => a.body.detections[0]!.score));
    expect(scores.size).to.be.above(1);
    expect(new Set(answers.map((a) => a.body.detections[0]!.label)).size).to.equal(1);
  });

  it('GET /metrics reports requests, latency, detections, batch sizes and errors, behind the token', async () => {
    expect((await fetch(`${base}/metrics`)).status).to.equal(401);
    const r = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(r.status).to.equal(200);
    expect(r.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();
    for (const line of [
      'nfp_requests_total{route="/v1/detect",status="200"}',
      'nfp_request_duration_seconds_bucket{route="/v1/detect",le="0.005"}',
      'nfp_detections_total{outcome=',
      'nfp_batch_rows_bucket{le="16"}',
      'nfp_errors_total{code="IMAGE_NOT_DECODED"} 2',
      'nfp_errors_total{code="UNAUTHORIZED"}',
    ])
      expect(text, line).to.include(line);
  });

  it('finishes requests in flight when it shuts down, then refuses new connections', async () => {
    const slow = createService(detector, { limits: { batchWindowMs: 300 } });
    const url = await slow.app.listen({ host: '127.0.0.1', port: 0 });
    const data = row(0);
    const inFlight = fetch(`${url}/v1/detect?dims=1,1,28,28`, {
      method: 'POST',
      body: Buffer.from(data.buffer),
      headers: { 'content-type': 'application/octet-stream' },
    });
    await new Promise((r) => setTimeout(r, 100)); // the request waits in the batch window
    await slow.app.close();
    const r = await inFlight;
    expect(r.status).to.equal(200);
    expect(((await r.json()) as Body).detections).to.have.length(1);
    let refused = false;
    await fetch(`${url}/healthz`).catch(() => {
      refused = true;
    });
    expect(refused).to.equal(true);
  });

  it('scores the requests of clients that hung up before idle() resolves, so the detector outlives them', async () => {
    const own = await FingerprintDetector.load({ model: modelPath, bank: bank(), threshold: 0, draws: 5 });
    const svc = createService(own, { limits: { batchWindowMs: 2_000 } });
    const url = new URL(await svc.app.listen({ host: '127.0.0.1', port: 0 }));
    const body = Buffer.from(row(0).buffer);
    const sent = Array.from({ length: 5 }, () => {
      const req = httpRequest({
        host: url.hostname,
        port: url.port,
        path: '/v1/detect?dims=1,1,28,28',
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', 'content-length': body.length },
      });
      req.on('error', () => {}); // the client hangs up below
      req.end(body);
      return req;
    });
    // All five wait in the batch window (the service says how many rows wait) before the clients hang up.
    const deadline = Date.now() + 1_500;
    for (;;) {
      const health = (await (await fetch(`${url.origin}/healthz`)).json()) as { waiting: number };
      if (health.waiting === 5 || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const req of sent) req.destroy();
    await svc.app.close(); // no connection is left, so this does not wait for the batch
    const pending = await Promise.race([svc.idle().then(() => 'idle'), new Promise((r) => setTimeout(r, 0, 'busy'))]);
    expect(pending).to.equal('busy');
    await svc.idle();
    await own.release();
    await new Promise((r) => setTimeout(r, 100));
    const text = svc.metrics.text();
    expect(text).to.not.include('code="INTERNAL"');
    // All five judged (clean or attacked: random draws against a threshold of 0 split them).
    const judged = [...text.matchAll(/^nfp_detections_total\{outcome="(\w+)"\} (\d+)$/gm)];
    expect(
      judged.reduce((n, m) => n + Number(m[2]), 0),
      text,
    ).to.equal(5);
    expect(judged.map((m) => m[1])).to.not.include('rejected');
  });

  /** `nfp serve` from the sources with `args` after the model and bank, once it says where it listens. */
  async function startServe(args: string[]) {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', join(packageRoot, 'src', 'cli', 'main.ts'), 'serve', '--model', modelPath, '--bank', bank()]
        .concat(['--threshold', '0', '--port', '0', '--threads', '1'])
        .concat(args),
      { cwd: packageRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const listening = /listening at (http:\/\/127\.0\.0\.1:\d+)/;
    const deadline = Date.now() + 60_000;
    while (!listening.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const url = listening.exec(out)?.[1];
    expect(url, out).to.be.a('string');
    // Its log lines so far, and later, as JSON; the first says which process serves.
    const lines = () =>
      out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { level: number; msg: string; pid: number });
    return { child, url: url!, exited, lines };
  }

  it('nfp serve listens (one ONNX Runtime thread), logs JSON lines, and exits 0 on SIGTERM', async () => {
    const tokenFile = join(dir(), 'token');
    writeFileSync(tokenFile, `${token}\n`);
    const { child, url, exited, lines } = await startServe(['--token-file', tokenFile]);
    const r = await fetch(`${url}/v1/detect?dims=1,1,28,28`, {
      method: 'POST',
      body: Buffer.from(row(0).buffer),
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${token}` },
    });
    expect(r.status).to.equal(200);
    child.kill('SIGTERM');
    expect(await exited).to.equal(0);
    expect(lines().some((l) => l.msg === 'request completed')).to.equal(true);
    // The server ran in the child started with the heap flag (src/cli/relaunch.ts), and it is gone too.
    const server = lines()[0]!.pid;
    expect(server).to.not.equal(child.pid);
    expect(processAlive(server)).to.equal(false);
  });

  it('nfp serve --main-thread: the server process shuts down when the nfp process is killed outright', async () => {
    const { child, lines } = await startServe(['--main-thread']);
    const server = lines()[0]!.pid;
    expect(server).to.not.equal(child.pid);
    child.kill('SIGKILL');
    const gone = Date.now() + 20_000;
    while (processAlive(server) && Date.now() < gone) await new Promise((r) => setTimeout(r, 50));
    expect(processAlive(server), 'the server outlived its parent').to.equal(false);
  });
});

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
