// `nfp serve`: the detector as an HTTP service (src/serve); logs are JSON lines on stdout.
import { readFileSync } from 'node:fs';

import type { Command } from 'commander';
import { InvalidArgumentError, Option } from 'commander';

import { defaultServeAddress, defaultServeLimits, serve } from '../serve/index.js';
import { asUsage } from './options.js';
import { parseNonNegative, parseNumber, parsePositiveInt } from './parse.js';
import { childWatchesParent, relaunchWithServeHeap, shouldRelaunch } from './relaunch.js';

export interface ServeCommandOptions {
  model: string;
  bank: string;
  host: string;
  port: number;
  tokenFile?: string;
  publicKey?: string;
  threshold?: number;
  draws?: number;
  batchWindow?: number;
  maxBatch?: number;
  maxInputs?: number;
  bodyLimit?: number;
  threads?: number;
  mainThread?: boolean;
  logLevel: string;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) throw new InvalidArgumentError('expected a port in 0..65535');
  return n;
}

export function registerServeCommand(program: Command): Command {
  const d = defaultServeLimits;
  return program
    .command('serve')
    .description('serve detection over HTTP: POST /v1/detect, GET /healthz, GET /metrics (Prometheus)')
    .requiredOption('--model <model>', 'the ONNX classifier the bank was fitted on')
    .requiredOption('--bank <bank.nfp>', 'a calibrated bank (nfp fit)')
    .option('--host <host>', 'address to listen on', defaultServeAddress.host)
    .option('--port <port>', 'port to listen on (0: any free port)', parsePort, defaultServeAddress.port)
    .option('--token-file <file>', 'require Authorization: Bearer <the token in this file> (all routes but /healthz)')
    .option('--public-key <key.pub>', 'refuse the bank unless it is signed with this key (nfp bank sign)')
    .option('--threshold <t>', 'decide with this threshold instead of the calibration', parseNumber)
    .option('--draws <n>', "fingerprints drawn per input (default: the calibration's)", parsePositiveInt)
    .option(
      '--batch-window <ms>',
      `how long a request waits to share a model call (default ${d.batchWindowMs})`,
      parseNonNegative,
    )
    .option('--max-batch <rows>', `most rows in one model call (default ${d.batchRows})`, parsePositiveInt)
    .option('--max-inputs <n>', `most inputs in one request (default ${d.requestInputs})`, parsePositiveInt)
    .option('--body-limit <bytes>', `largest request body (default ${d.bodyBytes})`, parsePositiveInt)
    .option(
      '--threads <n>',
      "ONNX Runtime's threads for the model (default: its own choice, every core); fewer leave cores to the " +
        'HTTP work and to other replicas on the machine',
      parsePositiveInt,
    )
    .option(
      '--main-thread',
      "run the model in the event loop's thread, with ONNX Runtime's spinning on, instead of on a thread of its " +
        'own with spinning off: on 2 cores a lone client gained about 0.2 ms per request and 64 concurrent ' +
        'clients lost 12-20% of the throughput',
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['fatal', 'error', 'warn', 'info', 'debug'])
        .default('info'),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  $ nfp serve --model models/fmnist-cnn.onnx --bank bank.nfp --port 8080\n' +
        '  $ curl -s --data-binary @shirt.png -H "content-type: image/png" http://127.0.0.1:8080/v1/detect\n',
    )
    .action(async (options: ServeCommandOptions, cmd: Command) => {
      // The server itself runs in a child with a heap setting that keeps full collections off the tail
      // latency (relaunch.ts); options were checked here first, so usage errors come from this process.
      if (shouldRelaunch()) {
        process.exitCode = await relaunchWithServeHeap();
        return;
      }
      childWatchesParent();
      await asUsage(cmd, () => serveCommand(options, cmd));
    });
}

export async function serveCommand(options: ServeCommandOptions, cmd: Command): Promise<void> {
  let token: string | undefined;
  if (options.tokenFile !== undefined) {
    token = readFileSync(options.tokenFile, 'utf8').trim();
    if (token === '') cmd.error(`error: the token file ${options.tokenFile} is empty`, { exitCode: 2 });
  }
  const server = await serve({
    detector: {
      model: options.model,
      bank: options.bank,
      ...(options.threshold !== undefined ? { threshold: options.threshold } : {}),
      ...(options.draws !== undefined ? { draws: options.draws } : {}),
      ...(options.threads !== undefined ? { intraOpThreads: options.threads } : {}),
      ...(options.publicKey !== undefined ? { publicKey: readFileSync(options.publicKey) } : {}),
    },
    host: options.host,
    port: options.port,
    inferenceThread: options.mainThread !== true,
    ...(token !== undefined ? { token } : {}),
    limits: {
      ...(options.batchWindow !== undefined ? { batchWindowMs: options.batchWindow } : {}),
      ...(options.maxBatch !== undefined ? { batchRows: options.maxBatch } : {}),
      ...(options.maxInputs !== undefined ? { requestInputs: options.maxInputs } : {}),
      ...(options.bodyLimit !== undefined ? { bodyBytes: options.bodyLimit } : {}),
    },
    logger: { level: options.logLevel },
  });
  // SIGTERM or SIGINT: stop taking requests, finish those in flight, release the detector, exit 0.
  await new Promise<void>((resolve, reject) => {
    const stop = () => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      server.close().then(resolve, reject);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
