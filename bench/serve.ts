// `npm run bench:serve`: `nfp serve` under load against 127.0.0.1, compared with detect() in process on the
// same image. The server is the CLI as a user starts it, in a process of its own (with the heap setting of
// src/cli/relaunch.ts); so is the client (bench/serve-client.ts: one request at a time, each timed to the
// microsecond, for concurrency 1; autocannon for 8 and 64), which sends one float32 Fashion-MNIST image per
// request (JSON, base64) for NFP_BENCH_SECONDS each (default 5). It shares the machine's cores with the
// server, as a client on another machine would not. The committed CNN with a small bank over its default
// taps (54,602 neurons), 25 draws. Also measured: in-process detect() latency on one image (serial) and
// throughput on batches of 64 (the service's largest model call), in this process, which npm runs with the
// server's heap flag too; concurrency 64 with batching off (--max-batch 1), for the batching gain; and
// concurrency 1 and 64 with the model in the event loop's thread (--main-thread), for the inference thread's.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { loadFashionMnist } from '../src/data/index.js';
import { FingerprintDetector } from '../src/detect/index.js';
import { packageRoot } from '../src/paths.js';
import { writeSmallBank } from '../test/reference/small-bank.js';
import { machine, printTable, writeResult } from './machine.js';

const seconds = Number(process.env.NFP_BENCH_SECONDS ?? 5);
const modelPath = join(packageRoot, 'models', 'fmnist-cnn.onnx');

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function inProcess(detector: FingerprintDetector, image: Float32Array) {
  const one = { data: image, dims: [1, 1, 28, 28] };
  for (let i = 0; i < 20; i++) await detector.detect(one);
  const times: number[] = [];
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    const t = performance.now();
    await detector.detect(one);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  const batch = new Float32Array(64 * 784);
  for (let r = 0; r < 64; r++) batch.set(image, r * 784);
  const many = { data: batch, dims: [64, 1, 28, 28] };
  await detector.detect(many);
  let rows = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await detector.detect(many);
    rows += 64;
  }
  return {
    serialPerS: times.length / seconds,
    p50Ms: quantile(times, 0.5),
    p99Ms: quantile(times, 0.99),
    batchedPerS: rows / ((performance.now() - start) / 1000),
  };
}

const execFileAsync = promisify(execFile);

/** Runs bench/serve-client.ts in a process of its own and returns what it measured. */
interface ClientResult {
  reqPerS: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** CPU seconds per second the client process used (of the machine's cores). */
  clientCores: number;
}

async function client(job: Record<string, unknown>): Promise<ClientResult> {
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--import', 'tsx', join(packageRoot, 'bench', 'serve-client.ts'), JSON.stringify(job)],
    { cwd: packageRoot, maxBuffer: 1 << 20 },
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as ClientResult;
}

/** A free port on 127.0.0.1 for the server (it is given one rather than asked which it took: its logs are off). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** rows/calls of the server's nfp_batch_rows histogram, from GET /metrics. */
async function batchRows(base: string): Promise<{ rows: number; calls: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
  return { rows: read('nfp_batch_rows_sum'), calls: read('nfp_batch_rows_count') };
}

/**
 * `nfp serve` as a user runs it, in a process of its own (which starts its server in a child with the heap
 * setting of src/cli/relaunch.ts), under the client's load; `extra`: more serve options.
 */
async function load(bank: string, bodyFile: string, connections: number, extra: string[]) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(
    process.execPath,
    ['--import', 'tsx', join(packageRoot, 'src', 'cli', 'main.ts'), 'serve', '--model', modelPath, '--bank', bank]
      .concat(['--threshold', '0', '--port', String(port), '--log-level', 'warn'])
      .concat(extra),
    { cwd: packageRoot, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const exited = new Promise((resolve) => server.on('exit', resolve));
  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const up = await fetch(`${base}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) break;
      if (Date.now() > deadline || server.exitCode !== null) throw new Error('nfp serve did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
    // One client at a time is timed request by request (autocannon's latencies are whole milliseconds).
    const job = {
      mode: connections === 1 ? 'sequential' : 'autocannon',
      url: `${base}/v1/detect`,
      connections,
      bodyFile,
      contentType: 'application/json',
    };
    // An unmeasured second of the same load first, as detect() in process gets 20 warm-up calls: the
    // first requests to a new server pay for JIT compilation and allocation, and set the lone client's p99.
    await client({ ...job, seconds: 1 });
    const before = await batchRows(base);
    const r = await client({ ...job, seconds });
    const after = await batchRows(base);
    return { connections, ...r, meanBatch: (after.rows - before.rows) / Math.max(1, after.calls - before.calls) };
  } finally {
    server.kill('SIGTERM');
    await exited;
  }
}

/** One image per request, JSON with the float32 bytes in base64 (what a client without a tensor type sends). */
function requestBody(image: Float32Array): string {
  return JSON.stringify({
    inputs: [
      {
        tensor: Buffer.from(image.buffer, image.byteOffset, image.byteLength).toString('base64'),
        dims: [1, 1, 28, 28],
      },
    ],
  });
}

const dir = mkdtempSync(join(tmpdir(), 'nfp-bench-serve-'));
try {
  const bank = join(dir, 'bank.nfp');
  await writeSmallBank(modelPath, bank);
  const detector = await FingerprintDetector.load({ model: modelPath, bank, threshold: 0 });
  const image = loadFashionMnist({ split: 'test' }).data.slice(0, 784);
  const bodyFile = join(dir, 'body.json');
  writeFileSync(bodyFile, requestBody(image));
  const local = await inProcess(detector, image);
  const served = [];
  await detector.release();
  for (const c of [1, 8, 64]) served.push({ batching: true, thread: 'own', ...(await load(bank, bodyFile, c, [])) });
  served.push({
    batching: false,
    thread: 'own',
    ...(await load(bank, bodyFile, 64, ['--max-batch', '1', '--batch-window', '0'])),
  });
  // The model in the event loop's thread (--main-thread), for the inference thread's gain and cost.
  for (const c of [1, 64])
    served.push({ batching: true, thread: 'event loop', ...(await load(bank, bodyFile, c, ['--main-thread'])) });
  const f = (v: number, d = 1) => v.toFixed(d);
  printTable(
    `nfp serve, fmnist-cnn, one image per request, ${seconds} s per row`,
    ['concurrency', 'batching', 'model thread', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'mean batch', 'client cores'],
    served.map((s) => [
      String(s.connections),
      s.batching ? 'on' : 'off',
      s.thread,
      f(s.reqPerS, 0),
      f(s.p50Ms),
      f(s.p99Ms),
      String(s.errors),
      f(s.meanBatch),
      f(s.clientCores, 2),
    ]),
  );
  printTable(
    'detect() in process, same image',
    ['case', 'images/s', 'p50 ms', 'p99 ms'],
    [
      ['one image per call, serial', f(local.serialPerS, 0), f(local.p50Ms, 2), f(local.p99Ms, 2)],
      ['64 images per call', f(local.batchedPerS, 0), '', ''],
    ],
  );
  const c64 = served[2]!;
  const c1 = served[0]!;
  const summary = {
    // Against the better of the two in-process rates, and against in-process p50 and p99 (autocannon
    // reports whole milliseconds, so a ratio to a sub-millisecond p50 is an upper bound).
    throughputC64VsInProcess: c64.reqPerS / Math.max(local.batchedPerS, local.serialPerS),
    p99C1VsInProcessP50: c1.p99Ms / local.p50Ms,
    p99C1VsInProcessP99: c1.p99Ms / local.p99Ms,
    batchingGainC64: c64.reqPerS / served[3]!.reqPerS,
    // The inference thread against the model in the event loop's thread.
    threadGainC64: c64.reqPerS / served[5]!.reqPerS,
    threadP50CostC1Ms: c1.p50Ms - served[4]!.p50Ms,
  };
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  const m = machine();
  process.stderr.write(
    `wrote ${writeResult('serve', m, { machine: m, seconds, inProcess: local, served, summary })}\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
