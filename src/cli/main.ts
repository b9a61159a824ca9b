#!/usr/bin/env node
// The `nfp` command. Exit codes: 0 ok, 1 failure, 2 bad usage. Results go to stdout, progress
// and diagnostics to stderr.
import { Command, CommanderError } from 'commander';

import { version } from '../version.js';
import { infoCommand } from './info.js';

const program = new Command();
program
  .name('nfp')
  .description('Detect adversarial attacks on image classifiers with randomized neural fingerprints.')
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError()
  .exitOverride()
  .addHelpText('after', '\nExample:\n  $ nfp info          # backend, threads, CUDA and ONNX Runtime versions\n  $ nfp info --json   # the same as one JSON object\n');

program
  .command('info')
  .description("print the native addon's backend, thread count, CUDA build and ONNX Runtime version")
  .option('--json', 'print one JSON object instead of a table')
  .addHelpText('after', '\nExample:\n  $ NFP_THREADS=4 nfp info --json\n')
  .action(async (options: { json?: boolean }) => {
    await infoCommand(options);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // --help and --version arrive here as "errors" with exit code 0.
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`nfp: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
