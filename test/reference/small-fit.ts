// The arguments of a small `nfp fit` that the CLI tests share: the committed CNN's narrow taps, PGD at
// eps 0.1 with 3 steps, k = 5, 2,000 candidates, the top 100, 40 clean and 40 attacked images per class.
// A bank in seconds, for tests of the commands around it, not a good detector.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { registerFitCommand } from '../../src/cli/fit.js';
import { loadFashionMnist, writeNpy } from '../../src/data/index.js';
import { packageRoot } from '../../src/paths.js';
import { runCommands } from './cli.js';

/** The CNN's pool3, penultimate ReLU and logits: 1,290 neurons, quick to screen. */
export const smallFitTaps = '/features/pool3/MaxPool_output_0,/classifier/relu/Relu_output_0,logits';

/** `nfp fit` arguments (without --out) over `data` (and `labels`), seed 1, the first `limit` rows. */
export function smallFitArgs(options: { model: string; data: string; labels?: string; limit?: number }): string[] {
  return [
    ...['--model', options.model, '--data', options.data],
    ...(options.labels !== undefined ? ['--labels', options.labels] : []),
    ...['--limit', String(options.limit ?? 1500), '--attacks', 'pgd', '--eps', '0.1', '--steps', '3'],
    ...['--taps', smallFitTaps, '--k', '5', '--candidates', '2000', '--top', '100'],
    ...['--clean-per-class', '40', '--attacked-per-class', '40', '--attack-mode', 'untargeted', '--seed', '1'],
  ];
}

export interface SmallCliBank {
  /** The first 2,000 shipped test images (.npy) and their labels (.npy). */
  data: string;
  labels: string;
  /** Fitted by `nfp fit` with smallFitArgs on the first 1,500 of them. */
  bank: string;
}

let shared: Promise<SmallCliBank> | undefined;

/**
 * The small bank of the CLI tests, fitted once per test process (the first suite that asks pays for
 * the fit) in a folder removed when the process exits. Read-only: tests that change a bank copy it.
 */
export function sharedSmallCliBank(): Promise<SmallCliBank> {
  shared ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nfp-small-cli-bank-'));
    process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
    const test = loadFashionMnist({ split: 'test' });
    const paths = { data: join(dir, 'x.npy'), labels: join(dir, 'y.npy'), bank: join(dir, 'bank.nfp') };
    writeNpy(paths.data, { dims: [2000, 1, 28, 28], data: test.data.subarray(0, 2000 * 784) });
    writeNpy(paths.labels, { dims: [2000], data: test.labels.slice(0, 2000) });
    const model = join(packageRoot, 'models', 'fmnist-cnn.onnx');
    const args = ['fit', ...smallFitArgs({ model, data: paths.data, labels: paths.labels }), '--out', paths.bank];
    await runCommands([registerFitCommand], args);
    return paths;
  })();
  return shared;
}
