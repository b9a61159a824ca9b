// What an ablation can vary, and how a setting is named: the vocabulary shared by the CLI's
// parser, the runner (ablation.ts) and the report, kept apart so that parsing loads nothing else.
import type { TapSpec } from '../model/index.js';

/**
 * The settings that can be ablated, named as nfp fit's options (--draws, --top, --k, --candidates,
 * --taps; correlation is --max-correlation).
 */
export const ablationParameters = ['draws', 'top', 'k', 'candidates', 'correlation', 'taps'] as const;
export type AblationParameter = (typeof ablationParameters)[number];

export type AblationSpec =
  | { parameter: Exclude<AblationParameter, 'taps'>; values: number[] }
  | { parameter: 'taps'; values: TapSpec[] };

/** Parameters whose settings need the bank refitted. */
export const refitParameters: readonly AblationParameter[] = ['k', 'candidates', 'correlation', 'taps'];

export const ablationTitles: Record<AblationParameter, string> = {
  draws: 'fingerprints drawn per input (m)',
  top: 'fingerprints kept per class (K)',
  k: 'neurons per fingerprint (k)',
  candidates: 'candidates screened per class (C)',
  correlation: 'largest |correlation| between kept fingerprints (cap)',
  taps: 'tapped layers',
};

export function settingLabel(value: number | TapSpec): string {
  if (typeof value === 'number' || typeof value === 'string') return String(value);
  return value.map((t) => (typeof t === 'string' ? t : t.tensor)).join(',');
}
