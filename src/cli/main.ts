#!/usr/bin/env node
// The `nfp` command. Exit codes: 0 ok, 1 failure, 2 bad usage. Results go to stdout, progress
// and diagnostics to stderr.
import { Command, CommanderError } from 'commander';

import { version } from '../version.js';
import { registerAttackCommand } from './attack.js';
import { registerBankCommand } from './bank.js';
import { registerCheckCommand } from './check.js';
import { registerDemoCommand } from './demo.js';
import { registerDetectCommand } from './detect.js';
import { registerEvaluateCommand } from './evaluate.js';
import { registerFitCommand } from './fit.js';
import { registerGradCommand } from './grad.js';
import { infoCommand } from './info.js';
import { registerLayersCommand } from './layers.js';
import { registerPredictCommand } from './predict.js';
import { registerServeCommand } from './serve.js';

const program = new Command();
program
  .name('nfp')
  .description('Detect adversarial attacks on image classifiers with randomized neural fingerprints.')
  .version(version, '-V, --version', 'print the version')
  // One line after a usage error, not the whole help: the error is the line that matters.
  .showHelpAfterError('(add --help for usage and an example)')
  .exitOverride()
  .addHelpText(
    'after',
    [
      '\nExamples:',
      '  $ nfp demo                              # fit, calibrate and evaluate a detector on shipped data (2-3 min)',
      '  $ nfp info                              # backend, threads, CUDA and ONNX Runtime versions',
      '  $ nfp check model.onnx                  # whether a model works for predict, attack, fit and detect',
      '  $ nfp layers models/fmnist-cnn.onnx     # layers and shapes, to choose taps',
      '  $ nfp detect --model m.onnx --bank bank.nfp image.png   # one JSON line per image',
      '  $ nfp serve --model m.onnx --bank bank.nfp --port 8080  # POST /v1/detect, /healthz, /metrics\n',
    ].join('\n'),
  );

program
  .command('info')
  .description("print the native addon's backend, thread count, CUDA build and ONNX Runtime version")
  .option('--json', 'print one JSON object instead of a table')
  .addHelpText('after', '\nExample:\n  $ NFP_THREADS=4 nfp info --json\n')
  .action(async (options: { json?: boolean }) => {
    await infoCommand(options);
  });

registerLayersCommand(program);
registerCheckCommand(program);
registerPredictCommand(program);
registerGradCommand(program);
registerAttackCommand(program);
registerFitCommand(program);
registerDetectCommand(program);
registerBankCommand(program);
registerEvaluateCommand(program);
registerDemoCommand(program);
registerServeCommand(program);

// A reader that stops early (`nfp bank info x.nfp | head -1`) closes the pipe: stop quietly, as Unix tools do.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
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
