// Class shards of a fit: shard i of n fits a contiguous block of classes, the same block for the same
// i, n and class count wherever it runs, so that n processes (the pods of a Kubernetes indexed Job)
// cover every class once and `nfp bank merge` joins their banks.
import { ExperimentError } from './errors.js';

export interface Shard {
  /** 0-based, below count. */
  index: number;
  count: number;
}

/** The environment variable a Kubernetes indexed Job sets to each pod's index. */
export const shardIndexVariable = 'JOB_COMPLETION_INDEX';

/**
 * A shard from `i/n`, or `env/n` (the index from JOB_COMPLETION_INDEX, as an indexed Job's pods
 * have it), or `env` (the count from NFP_SHARD_COUNT as well).
 */
export function parseShard(text: string, env: NodeJS.ProcessEnv = process.env): Shard {
  const m = /^(\d+|env)(?:\/(\d+))?$/.exec(text.trim());
  if (m === null) throw new ExperimentError(`Expected i/n, env/n or env for --shard but received ${text}`, '--shard');
  const fromEnv = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '')
      throw new ExperimentError(`--shard ${text} reads ${name} from the environment but it is not set`, '--shard');
    return value;
  };
  const indexText = m[1] === 'env' ? fromEnv(shardIndexVariable) : m[1]!;
  const countText = m[2] ?? (m[1] === 'env' ? fromEnv('NFP_SHARD_COUNT') : undefined);
  if (countText === undefined)
    throw new ExperimentError(`Expected i/n, env/n or env for --shard but received ${text}`, '--shard');
  const index = Number(indexText);
  const count = Number(countText);
  if (!/^\d+$/.test(indexText) || !/^\d+$/.test(countText) || !(count >= 1) || !(index < count))
    throw new ExperimentError(
      `Expected a shard index in [0, n) and n >= 1 for --shard but received ${indexText}/${countText}`,
      '--shard',
    );
  return { index, count };
}

/** The classes of shard i of n over `classes` classes: [floor(i C / n), floor((i + 1) C / n)). */
export function shardClasses(shard: Shard, classes: number): number[] {
  if (shard.count > classes)
    throw new ExperimentError(
      `Expected at most ${classes} shards (one class each) for --shard but received ${shard.count}`,
      '--shard',
    );
  const from = Math.floor((shard.index * classes) / shard.count);
  const to = Math.floor(((shard.index + 1) * classes) / shard.count);
  return Array.from({ length: to - from }, (_, i) => from + i);
}
