// Options and plumbing every long command shares: the attack options (--eps, --norm, --steps,
// --kappa), turning an experiment's option errors into usage errors (exit 2), and the command line
// as a report records it.
import type { Command } from 'commander';
import { Option } from 'commander';

import type { AttackSettings, Norm } from '../attacks/index.js';
import type { ImageFormat } from '../data/index.js';
import { ExperimentError } from '../experiment/index.js';
import type { ImageReadOptions } from '../experiment/index.js';
import { parseImageFormats, parseNonNegative, parsePositive, parsePositiveInt } from './parse.js';

export interface AttackOptions {
  eps?: number;
  norm?: Norm;
  steps?: number;
  kappa?: number;
}

/** Adds --eps, --norm, --steps and --kappa; `epsHelp` says what --eps defaults to, if anything. */
export function addAttackOptions(command: Command, epsHelp = 'perturbation bound of the bounded attacks'): Command {
  return command
    .option('--eps <e>', epsHelp, parsePositive)
    .addOption(new Option('--norm <norm>', "the attacks' norm").choices(['linf', 'l2']))
    .option('--steps <n>', 'attack iterations (defaults per attack)', parsePositiveInt)
    .option('--kappa <k>', 'cw: confidence margin past the decision boundary (default 0)', parseNonNegative);
}

/** The attack settings the options give (only those set). */
export function attackSettingsOf(options: AttackOptions): AttackSettings {
  return {
    ...(options.eps !== undefined ? { eps: options.eps } : {}),
    ...(options.norm !== undefined ? { norm: options.norm } : {}),
    ...(options.steps !== undefined ? { steps: options.steps } : {}),
    ...(options.kappa !== undefined ? { kappa: options.kappa } : {}),
  };
}

export interface ImageFlags {
  imageFormats?: ImageFormat[];
  firstFrame?: boolean;
}

/** Adds --image-formats and --first-frame: what image files (and folders of them) may hold. */
export function addImageOptions(command: Command): Command {
  return command
    .option(
      '--image-formats <list>',
      'image formats to read, by content (default jpeg,png,webp; also gif, tiff, svg, heif)',
      parseImageFormats,
    )
    .option('--first-frame', 'read the first frame of animated or multi-page images instead of refusing them');
}

/** The image options the flags give (only those set). */
export function imageReadOptionsOf(options: ImageFlags): ImageReadOptions {
  return {
    ...(options.imageFormats !== undefined ? { formats: options.imageFormats } : {}),
    ...(options.firstFrame === true ? { firstFrame: true } : {}),
  };
}

/** Runs an action; an ExperimentError (a bad option) becomes commander's usage error, exit code 2. */
export async function asUsage<T>(command: Command, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    if (error instanceof ExperimentError) command.error(`error: ${error.message}`, { exitCode: 2, code: 'nfp.usage' });
    throw error;
  }
}

/** `nfp <arguments>` as they were given (quoted where a shell needs it), for reports. */
export function commandLine(command: Command): string {
  let root = command;
  while (root.parent) root = root.parent;
  // commander keeps the arguments it parsed in rawArgs, which its typings leave out.
  const raw = (root as unknown as { rawArgs: string[] }).rawArgs;
  // From process.argv the first two are node and the script; from a test's { from: 'user' } there are none.
  const args = raw[0] === process.argv[0] && raw[1] === process.argv[1] ? raw.slice(2) : raw;
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`);
  return ['nfp', ...args.map(quote)].join(' ');
}
