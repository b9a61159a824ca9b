// `nfp serve` runs its server in a child Node process started with a larger initial old-space limit.
// Why: under request load V8 starts a full (mark-compact) collection whenever the old generation's
// headroom below its limit is no larger than the young generation. A detector's heap is small (about
// 15 MB), so with the default initial limit that headroom is used up and a full collection of 2-10 ms
// ran every 60-90 ms: measured on fmnist-cnn with one client, 55-106 full collections in 5 s and a p99 of
// 9.7-10.7 ms; with the flag, one full collection and a p99 of 2.7-2.9 ms (docs/results.md). The flag
// cannot be set from inside a running process, nor through NODE_OPTIONS, hence the child.
import { spawn } from 'node:child_process';

export const serveHeapFlag = '--initial-old-space-size=64';
const relaunchedEnv = 'NFP_SERVE_CHILD';

/** Whether this process should start the server in a child with serveHeapFlag instead of itself. */
export function shouldRelaunch(): boolean {
  return (
    process.env[relaunchedEnv] === undefined &&
    !process.execArgv.some((a) => a.startsWith('--initial-old-space-size')) &&
    process.argv[1] !== undefined
  );
}

/**
 * Runs this command line again in a child with serveHeapFlag and resolves with its exit code. The child
 * has its own process group, so a terminal's Ctrl-C reaches it once, forwarded from here, and its
 * graceful shutdown is not cut short by a second signal; SIGTERM, SIGINT and SIGHUP are forwarded.
 * Should this process die without forwarding (SIGKILL), the child sees its IPC channel close and shuts
 * down gracefully (childWatchesParent).
 */
export function relaunchWithServeHeap(): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, serveHeapFlag, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [relaunchedEnv]: '1' },
    detached: true,
  });
  const signals = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
  const forward = (signal: NodeJS.Signals) => {
    child.kill(signal);
  };
  for (const s of signals) process.on(s, forward);
  return new Promise((resolve) => {
    const done = (code: number) => {
      for (const s of signals) process.off(s, forward);
      resolve(code);
    };
    child.on('error', (error) => {
      process.stderr.write(`error: could not start the server process: ${error.message}\n`);
      done(1);
    });
    // A child ended by a signal exits as a shell reports it: 128 + the signal's number.
    child.on('exit', (code, signal) => done(code ?? (signal === 'SIGTERM' ? 143 : signal === 'SIGINT' ? 130 : 1)));
  });
}

/**
 * In the child: shut down as on SIGTERM when the parent's IPC channel closes; the channel never holds the
 * process open.
 */
export function childWatchesParent(): void {
  if (process.env[relaunchedEnv] === undefined || process.channel === undefined) return;
  process.channel.unref();
  process.once('disconnect', () => {
    process.kill(process.pid, 'SIGTERM');
  });
}
