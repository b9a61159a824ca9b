// The CLI in-process for tests: commands registered on a fresh commander program that throws
// instead of exiting, run with stdout captured and stderr (progress bars) silenced.
import { expect } from 'chai';
import { Command, CommanderError } from 'commander';

/** Runs `fn` with process.stdout captured and process.stderr silenced; returns what went to stdout. */
export async function captureStdout(fn: () => Promise<unknown>): Promise<string> {
  let out = '';
  const [write, writeErr] = [process.stdout.write, process.stderr.write];
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    await fn();
  } finally {
    [process.stdout.write, process.stderr.write] = [write, writeErr];
  }
  return out;
}

/** `nfp <args>` with only the commands `register` adds; returns stdout. Usage errors throw CommanderError. */
export async function runCommands(
  register: ReadonlyArray<(program: Command) => Command>,
  args: string[],
): Promise<string> {
  const program = new Command().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  for (const add of register) add(program);
  return captureStdout(() => program.parseAsync(args, { from: 'user' }));
}

/**
 * Runs `run(args)`, which must fail with a usage error: a CommanderError, with `exitCode` when given (the
 * project's own usage errors exit 2; commander's, such as an invalid option argument, 1). Returns the error.
 */
export async function expectUsageError(
  run: (args: string[]) => Promise<unknown>,
  args: string[],
  exitCode?: number,
): Promise<CommanderError> {
  const error = await run(args).then(
    () => expect.fail(`expected a usage error from nfp ${args.join(' ')}`),
    (e: unknown) => e,
  );
  expect(error, args.join(' ')).to.be.instanceOf(CommanderError);
  if (exitCode !== undefined) expect((error as CommanderError).exitCode, args.join(' ')).to.equal(exitCode);
  return error as CommanderError;
}
