// Worker threads that run one of the library's own modules, from dist/ (compiled .js beside the caller)
// or, under tsx (tests, scripts), from the .ts sources. Node 20 does not carry tsx's module hooks into
// worker threads, so from the sources the worker registers tsx's ESM loader itself (ESM, so that a
// worker module may use top-level await), found through tsx's package.json: import.meta.resolve is not
// there when mocha loads the caller through tsx.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { WorkerOptions } from 'node:worker_threads';

/**
 * Starts `name` (without extension: 'decode-worker') from the folder of `callerUrl` (the caller's
 * import.meta.url) on a worker thread.
 */
export function startModuleWorker(callerUrl: string, name: string, options: WorkerOptions = {}): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const url = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, callerUrl);
  if (!fromSource) return new Worker(url, options);
  const tsxRoot = dirname(createRequire(callerUrl).resolve('tsx/package.json'));
  const api = JSON.stringify(pathToFileURL(join(tsxRoot, 'dist', 'esm', 'api', 'index.mjs')).href);
  const code = `import(${api}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(code, { ...options, eval: true });
}
