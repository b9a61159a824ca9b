// `nfp demo`: the whole loop on the shipped Fashion-MNIST test set and the committed CNN, in one
// command (experiment/demo.ts): fit, calibrate, attack held-out images, write the report.
import type { Command } from 'commander';

import { runDemo } from '../experiment/index.js';
import type { DemoResult } from '../experiment/index.js';
import { parseInteger } from './parse.js';
import { fitBars, stageBars } from './progress.js';

export interface DemoCommandOptions {
  out: string;
  quick?: boolean;
  seed: number;
  confidence?: boolean;
}

export function registerDemoCommand(program: Command): Command {
  return program
    .command('demo')
    .description(
      'fit, calibrate and evaluate a detector for the committed Fashion-MNIST CNN on the shipped data ' +
        '(3 minutes of CPU: 2-3 minutes on 2 idle cores)',
    )
    .option('--out <dir>', 'where the bank and the report go', 'nfp-demo')
    .option('--quick', 'a tiny version, about 10 s of CPU (a smoke test, not a result)')
    .option('--seed <n>', 'seed of the fit, the attacks and the evaluation', parseInteger, 1)
    .option(
      '--confidence',
      'add the logit-margin confidence term to the detector, and CW-L2 with kappa 5 (built to defeat it) to the ' +
        'attacks',
    )
    .addHelpText('after', '\nExample:\n  $ npx nfp demo && open nfp-demo/report.html\n')
    .action(async (options: DemoCommandOptions) => {
      await demoCommand(options);
    });
}

export async function demoCommand(options: DemoCommandOptions): Promise<DemoResult> {
  // The report records the demo as one reproducible command, whatever the output folder.
  const flags = `${options.quick ? ' --quick' : ''}${options.confidence ? ' --confidence' : ''}`;
  const command = `nfp demo${flags} --seed ${options.seed}`;
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const result = await runDemo({ ...options, command, onProgress: stageBars(), onFitProgress: fitBars(), say });
  say(`\nreport: ${result.html}\n        ${result.report}\nbank:   ${result.bank}\n(${result.seconds.toFixed(0)} s)`);
  process.stdout.write(`${JSON.stringify({ ...result, seconds: Number(result.seconds.toPrecision(4)) })}\n`);
  return result;
}
