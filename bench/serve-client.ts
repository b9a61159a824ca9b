// The load generator of bench/serve.ts, run as its own process so that it does not share the server's
// event loop, heap or garbage collector (autocannon in a worker thread of the server's process cost the
// server a third of its throughput). Reads one JSON argument, prints one JSON line:
//   { mode: 'autocannon', url, connections, seconds, bodyFile, contentType }
//     -> { reqPerS, p50Ms, p99Ms, errors, clientCores }  (autocannon: whole-millisecond latencies)
//   { mode: 'sequential', url, seconds, bodyFile, contentType }
//     -> { reqPerS, p50Ms, p99Ms, errors }        (one request at a time on a kept-alive connection,
//                                                   each timed to the microsecond: the lone client)
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

import autocannon from 'autocannon';

interface Job {
  mode: 'autocannon' | 'sequential';
  url: string;
  connections?: number;
  seconds: number;
  bodyFile: string;
  contentType: string;
}

const job = JSON.parse(process.argv[2]!) as Job;
const cpuBefore = process.cpuUsage();
const body = readFileSync(job.bodyFile);
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

async function sequential(): Promise<{ reqPerS: number; p50Ms: number; p99Ms: number; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(job.url);
  const once = () =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname + url.search,
          method: 'POST',
          headers: { 'content-type': job.contentType, 'content-length': body.length },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const times: number[] = [];
  let errors = 0;
  const until = performance.now() + job.seconds * 1000;
  while (performance.now() < until) {
    const t = performance.now();
    const status = await once().catch(() => 0);
    times.push(performance.now() - t);
    if (status !== 200) errors++;
  }
  agent.destroy();
  const total = times.reduce((a, v) => a + v, 0);
  times.sort((a, b) => a - b);
  return { reqPerS: times.length / (total / 1000), p50Ms: quantile(times, 0.5), p99Ms: quantile(times, 0.99), errors };
}

/** The cores this client kept busy while it ran: what the server did not get on a shared machine. */
const clientCores = () => {
  const used = process.cpuUsage(cpuBefore);
  return (used.user + used.system) / 1e6 / job.seconds;
};

if (job.mode === 'sequential')
  process.stdout.write(`${JSON.stringify({ ...(await sequential()), clientCores: clientCores() })}\n`);
else {
  const r = await autocannon({
    url: job.url,
    connections: job.connections ?? 1,
    duration: job.seconds,
    method: 'POST',
    headers: { 'content-type': job.contentType },
    body,
  });
  process.stdout.write(
    `${JSON.stringify({ reqPerS: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, errors: r.errors + r.timeouts + r.non2xx, clientCores: clientCores() })}\n`,
  );
}
