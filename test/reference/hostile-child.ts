// Runs hostile cases in a process of their own (node --import tsx hostile-child.ts cases.json), so that
// its peak RSS is theirs: each image is decoded with decodeImage, each tensor file opened and read to
// its end in batches, while a 5 ms timer measures how long the event loop was held. A case that held it
// 50 ms or more runs again, up to three times in all, and its least block counts: on a loaded machine
// the scheduler can stall any process for a while, but that does not repeat where a real block does.
// Prints one JSON line per case, then one with the process's peak RSS.
import { readFileSync } from 'node:fs';

import { decodeImage, openTensorFile } from '../../src/data/index.js';
import type { HostileCase, HostileResult } from './hostile-corpus.js';
import { peakRssMB } from './peak-rss.js';

const cases = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as HostileCase[];

/** The event loop's longest stall past the timer's period while `work` runs, in ms. */
async function longestBlock<T>(work: () => Promise<T>): Promise<{ value?: T; error?: Error; blockMs: number }> {
  const period = 5;
  let last = performance.now();
  let worst = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - period);
    last = now;
  }, period);
  let value: T | undefined;
  let error: Error | undefined;
  try {
    value = await work();
  } catch (err) {
    error = err as Error;
  }
  // One more tick, so that a stall at the very end is counted too.
  await new Promise((resolve) => setTimeout(resolve, 2 * period));
  clearInterval(timer);
  return { ...(value !== undefined ? { value } : {}), ...(error ? { error } : {}), blockMs: Math.max(0, worst) };
}

async function run(c: HostileCase): Promise<string> {
  if (c.kind === 'image') {
    const image = await decodeImage(c.path, c.options ?? {});
    return `image [${image.dims.join(', ')}]`;
  }
  const reader = await openTensorFile(c.path, c.options ?? {});
  let rows = 0;
  for await (const batch of reader.batches(256)) rows += batch.dims[0];
  return `${rows} rows of [${reader.dims.slice(1).join(', ')}]`;
}

for (const c of cases) {
  const started = performance.now();
  const { value, error, blockMs: first } = await longestBlock(() => run(c));
  const ms = performance.now() - started;
  let blockMs = first;
  for (let again = 0; again < 2 && blockMs >= 50; again++)
    blockMs = Math.min(blockMs, (await longestBlock(() => run(c))).blockMs);
  const result: HostileResult = {
    name: c.name,
    outcome: error ? 'error' : 'ok',
    message: error ? `${error.name}: ${error.message}` : value!,
    ms: Math.round(ms),
    blockMs: Math.round(blockMs),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
process.stdout.write(`${JSON.stringify({ maxRssMB: peakRssMB() })}\n`);
