// Square attack, L-inf (Andriushchenko et al., 2020): a score-based black-box attack. It starts from
// vertical stripes of +-eps and then proposes, per image, a random square window whose pixels are
// set to x0 +- eps (one sign per channel), keeping a proposal only when it lowers the criterion's
// logit margin. The window's share p of the image shrinks on the paper's schedule. It reads logits
// only (no gradients) and counts queries per image; an image stops querying once adversarial.
import { gatherRows } from '../data/index.js';
import { toChannelsFirst } from '../model/index.js';
import { Attack } from './attack.js';
import type { AttackBatch, Perturbation } from './attack.js';
import { positive, positiveInt } from './options.js';

export interface SquareOptions {
  eps: number;
  /** Query budget per image, the initialization included (default 1000). */
  queries?: number;
  /** Initial share of the image a window covers (default 0.3). */
  pInit?: number;
}

/**
 * p after `iteration` of `budget` iterations: the paper's schedule for 10,000 iterations, halving
 * at 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000, rescaled to the budget.
 */
export function squareShare(pInit: number, iteration: number, budget: number): number {
  const it = Math.floor((iteration / budget) * 10000);
  const bounds = [10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000];
  let halvings = 0;
  for (const b of bounds) if (it > b) halvings++;
  return pInit / 2 ** halvings;
}

/**
 * Square attack, L-inf (Andriushchenko et al., "Square Attack: a query-efficient black-box
 * adversarial attack via random search", ECCV 2020): random square windows set to x0 +- eps, kept
 * when they lower the logit margin. Reads logits only (no gradients); counts queries per image.
 *
 * Arguments: `eps`, `queries` (1000 per image), `pInit` (0.3). Shapes: float32 [N, C, H, W] in
 * [0, 1] in and out; the result's `queries` replaces `iterations`.
 *
 * @example
 * const r = await new Square({ eps: 0.1, queries: 1000 }).run(model, images, { labels });
 */
export class Square extends Attack {
  readonly name = 'square';
  readonly norm = 'linf' as const;
  override readonly cost = 'queries' as const;
  readonly eps: number;
  readonly queries: number;
  readonly pInit: number;

  constructor(options: SquareOptions) {
    super();
    this.eps = positive('eps', options.eps);
    this.queries = positiveInt('queries', options.queries ?? 1000);
    this.pInit = positive('pInit', options.pInit ?? 0.3);
    if (this.pInit > 1) throw new RangeError(`Expected a share in (0, 1] for pInit but received ${this.pInit}`);
  }

  protected async perturb(batch: AttackBatch): Promise<Perturbation> {
    const { x0, perImage, rows, rng } = batch;
    const last = batch.model.layout === 'nhwc';
    const [channels, height, width] = toChannelsFirst(batch.model.inputShape, last ? 'nhwc' : 'nchw') as [
      number,
      number,
      number,
    ];
    // Offset of (channel, row, column) within an image, in the model's layout.
    const at = (c: number, row: number, col: number) =>
      last ? (row * width + col) * channels + c : (c * height + row) * width + col;
    const eps = this.eps;
    const clip = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
    // Vertical stripes: one sign per image, channel and column.
    const best = new Float32Array(x0.length);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < channels; c++) {
        for (let col = 0; col < width; col++) {
          const s = rng.sign() * eps;
          for (let row = 0; row < height; row++) {
            const i = r * perImage + at(c, row, col);
            best[i] = clip(x0[i]! + s);
          }
        }
      }
    }
    const spent = new Int32Array(rows).fill(1);
    const logits = await batch.logits(best, rows);
    const margin = Float64Array.from({ length: rows }, (_, r) => batch.marginOf(logits, r, r));
    let live = Array.from({ length: rows }, (_, r) => r).filter((r) => !batch.isAdversarial(logits, r, r));

    for (let iteration = 1; iteration < this.queries && live.length > 0; iteration++) {
      const p = squareShare(this.pInit, iteration, this.queries);
      const side = Math.min(Math.max(Math.round(Math.sqrt(p * height * width)), 1), Math.max(height - 1, 1));
      const proposal = gatherRows(best, live, perImage);
      live.forEach((r, i) => {
        // Redraw a window that would change nothing (all its pixels already at the proposed values).
        for (let attempt = 0; attempt < 10; attempt++) {
          const top = rng.int(height - side + 1);
          const left = rng.int(width - side + 1);
          let changed = false;
          for (let c = 0; c < channels; c++) {
            const s = rng.sign() * eps;
            for (let row = top; row < top + side; row++) {
              for (let col = left; col < left + side; col++) {
                const off = at(c, row, col);
                const v = clip(x0[r * perImage + off]! + s);
                if (v !== proposal[i * perImage + off]) changed = true;
                proposal[i * perImage + off] = v;
              }
            }
          }
          if (changed) break;
        }
      });
      const z = await batch.logits(proposal, live.length);
      const next: number[] = [];
      live.forEach((r, i) => {
        spent[r]!++;
        const m = batch.marginOf(z, i, r);
        const accepted = m < margin[r]!;
        if (accepted) {
          margin[r] = m;
          best.set(proposal.subarray(i * perImage, (i + 1) * perImage), r * perImage);
        }
        if (!(accepted && batch.isAdversarial(z, i, r))) next.push(r);
      });
      live = next;
      batch.progress(iteration / (this.queries - 1));
    }
    return { adv: best, spent };
  }
}
