// The arguments of a small `nfp fit` that the CLI tests share: the committed CNN's narrow taps, PGD at
// eps 0.1 with 3 steps, k = 5, 2,000 candidates, the top 100, 40 clean and 40 attacked images per class.
// A bank in seconds, for tests of the commands around it, not a good detector.

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
