// Local rejection sampling (the white-box attacker with local testing): many candidate adversarial
// examples per image, each scored by the attacker's own detector copies; an image's first candidate
// that fools the model and that no copy flags is the one sent. What the deployed detector (its own,
// independent draws) still catches among those is the measure of the random draw's worth.
import type { FingerprintDetector } from '../../detect/index.js';
import { SeededDraws, mixSeed } from '../../detect/index.js';
import type { ImageBatch } from '../../model/index.js';
import { argmax } from '../criterion.js';
import type { TappedAttackModel } from './adaptive-pgd.js';
import type { DetectorTerm } from './detector-term.js';

/** One of the attacker's local detectors. */
export interface LocalCopy {
  readonly name: string;
  /**
   * 1 per row that the copy flags. `ids` names each row (its candidate's number), so a copy scores
   * the same candidate with the same draw however the rows are batched.
   */
  flags(acts: Float32Array, labels: Int32Array, ids: Int32Array): Promise<Uint8Array>;
}

/**
 * A copy of the randomized detector with its own seeded draws (copy `copy` of seed `seed`), at the
 * detector's calibrated thresholds. Unscored and unfit rows count as flagged, as the detector reports them.
 */
export function drawnCopy(detector: FingerprintDetector, seed: number, copy: number): LocalCopy {
  const source = new SeededDraws(mixSeed(seed, 0x6c6f63, copy));
  return {
    name: `draw-${copy}`,
    async flags(acts, labels, ids) {
      const out = new Uint8Array(labels.length);
      // Row by row, each with the draw of its candidate's number.
      for (let r = 0; r < labels.length; r++) {
        const n = acts.length / labels.length;
        const one = await detector.scoreActivations(acts.subarray(r * n, (r + 1) * n), labels.subarray(r, r + 1), {
          draws: source,
          firstRow: ids[r]!,
        });
        const score = one.scores[0]!;
        const empty = detector.bank.header.classes[labels[r]!]!.count === 0;
        out[r] = empty || !(score <= detector.thresholdOf(labels[r]!)) ? 1 : 0;
      }
      return out;
    },
  };
}

/** The copy that uses every fingerprint: the expected score over draws against the threshold. */
export function expectationCopy(term: DetectorTerm): LocalCopy {
  return {
    name: 'all',
    async flags(acts, labels) {
      const { slack } = await term.evaluate(acts, labels, false);
      return Uint8Array.from(slack, (s) => (s < 0 ? 0 : 1));
    },
  };
}

export interface RejectionResult {
  /** Per image, the candidate sent (index into `candidates`), or -1 when none passed. */
  chosen: Int32Array;
  /** Per image, the candidate sent, or the last one when none passed ([n x ...]). */
  adv: Float32Array;
  /** 1 where a candidate passed: misclassified and unflagged by every copy. */
  passed: Uint8Array;
  /** Candidates that fooled the model, per image (before the copies looked). */
  misclassified: Int32Array;
}

/**
 * Tries the candidates in order (each [n x ...] like `images`) against the model and every copy.
 * Candidate c of image i is named c * n + i for the copies' draws.
 */
export async function rejectionSample(
  model: TappedAttackModel,
  images: ImageBatch,
  labels: Int32Array,
  candidates: Float32Array[],
  copies: LocalCopy[],
): Promise<RejectionResult> {
  const n = images.dims[0]!;
  const perImage = n === 0 ? 0 : images.data.length / n;
  const chosen = new Int32Array(n).fill(-1);
  const misclassified = new Int32Array(n);
  const adv = images.data.slice();
  for (const [c, candidate] of candidates.entries()) {
    if (candidate.length !== images.data.length)
      throw new RangeError(
        `Expected ${images.data.length} values for candidates[${c}] but received ${candidate.length}`,
      );
    const open = Array.from({ length: n }, (_, i) => i).filter((i) => chosen[i]! < 0);
    if (open.length === 0) break;
    const { logits, activations } = await model.forward({ data: candidate, dims: images.dims });
    const predicted = Int32Array.from({ length: n }, (_, i) => argmax(logits, i, model.classes));
    const fooled = open.filter((i) => predicted[i] !== labels[i]);
    for (const i of fooled) misclassified[i]!++;
    for (const i of open) adv.set(candidate.subarray(i * perImage, (i + 1) * perImage), i * perImage);
    if (fooled.length === 0) continue;
    const neurons = model.neurons;
    const acts = new Float32Array(fooled.length * neurons);
    fooled.forEach((i, at) => {
      acts.set(activations.subarray(i * neurons, (i + 1) * neurons), at * neurons);
    });
    const rowLabels = Int32Array.from(fooled, (i) => predicted[i]!);
    const ids = Int32Array.from(fooled, (i) => c * n + i);
    const flagged = new Uint8Array(fooled.length);
    for (const copy of copies) {
      const f = await copy.flags(acts, rowLabels, ids);
      f.forEach((v, at) => {
        flagged[at] = flagged[at]! | v;
      });
    }
    fooled.forEach((i, at) => {
      if (!flagged[at]) chosen[i] = c;
    });
  }
  return { chosen, adv, passed: Uint8Array.from(chosen, (c) => (c >= 0 ? 1 : 0)), misclassified };
}
