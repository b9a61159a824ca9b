// DeepFool (Moosavi-Dezfooli et al., 2016): linearize the classifier around the current point and
// step to the nearest linearized decision boundary, until the label flips; the total step is
// scaled by (1 + overshoot). L2 steps along w_k, L-inf steps along sign(w_k) (the dual norms).
// Untargeted: the boundaries between the label and the `candidates` classes ranked highest on the
// clean image. Targeted: the boundary between the target and whichever candidate currently beats it.
// Gradients of the logit differences for all candidates come from one batched run, each image
// repeated once per candidate with its own logit seed.
import { gatherRows } from '../data/index.js';
import { Attack } from './attack.js';
import type { AttackBatch, Perturbation } from './attack.js';
import { l1Of, l2Of } from './geometry.js';
import type { Norm } from './geometry.js';
import { nonNegative, norm as checkNorm, positiveInt } from './options.js';

/** Rows per gradient run of the repeated batch (images x candidates). */
const REPEATED_ROWS = 256;

export interface DeepFoolOptions {
  norm?: Norm;
  /** Linearization steps (default 50). */
  steps?: number;
  /** Classes considered per image, the label included (default 10). */
  candidates?: number;
  /** Push past the boundary by this share of the perturbation (default 0.02). */
  overshoot?: number;
}

/**
 * DeepFool (Moosavi-Dezfooli, Fawzi and Frossard, "DeepFool: a simple and accurate method to fool
 * deep neural networks", CVPR 2016): steps to the nearest linearized decision boundary until the
 * label flips, the total scaled by (1 + overshoot). A minimal-perturbation attack.
 *
 * Arguments: `norm` ('l2' default | 'linf'), `steps` (50), `candidates` (10 classes), `overshoot`
 * (0.02). Shapes: float32 [N, C, H, W] in [0, 1] in and out.
 *
 * @example
 * const r = await new DeepFool().run(model, images, { labels });
 */
export class DeepFool extends Attack {
  readonly name = 'deepfool';
  readonly norm: Norm;
  readonly steps: number;
  readonly candidates: number;
  readonly overshoot: number;

  constructor(options: DeepFoolOptions = {}) {
    super();
    this.norm = checkNorm('norm', options.norm ?? 'l2');
    this.steps = positiveInt('steps', options.steps ?? 50);
    this.candidates = positiveInt('candidates', options.candidates ?? 10);
    this.overshoot = nonNegative('overshoot', options.overshoot ?? 0.02);
  }

  protected async perturb(batch: AttackBatch): Promise<Perturbation> {
    const { x0, perImage, rows, classes, criterion } = batch;
    const spent = new Int32Array(rows);
    const adv = x0.slice();
    const total = new Float64Array(x0.length);
    // Candidate classes per image, ranked by the clean logits; the class being pushed against is excluded.
    const clean = await batch.logits(x0, rows);
    const anchor = criterion.lossClasses;
    const others: number[][] = [];
    for (let r = 0; r < rows; r++) {
      const z = batch.logitsRow(clean, r);
      const ranked = Array.from({ length: classes }, (_, j) => j)
        .filter((j) => j !== anchor[r])
        .sort((a, b) => z[b]! - z[a]!);
      others.push(ranked.slice(0, Math.max(1, Math.min(this.candidates, classes) - 1)));
    }
    const groupSize = Math.max(1, Math.floor(REPEATED_ROWS / Math.max(1, Math.min(this.candidates, classes) - 1)));
    let live = Array.from({ length: rows }, (_, r) => r);
    for (let step = 0; step < this.steps && live.length > 0; step++) {
      // Images in groups, so the repeated batch stays a few hundred rows however large the batch.
      const next: number[] = [];
      for (let start = 0; start < live.length; start += groupSize) {
        const group = live.slice(start, start + groupSize);
        // Rows of the repeated batch: image r once per candidate j, seeded with e_j - e_anchor
        // (untargeted) or e_anchor - e_j (targeted), so each gradient is that of "distance to go".
        const sizes = group.map((r) => others[r]!.length);
        const count = sizes.reduce((a, b) => a + b, 0);
        const images = gatherRows(
          adv,
          group.flatMap((r) => others[r]!.map(() => r)),
          perImage,
        );
        const seed = new Float32Array(count * classes);
        const sign = criterion.targeted ? -1 : 1;
        let row = 0;
        for (const r of group) {
          for (const j of others[r]!) {
            seed[row * classes + j] = sign;
            seed[row * classes + anchor[r]!] = -sign;
            row++;
          }
        }
        const { grad, logits } = await batch.logitGradient(images, count, seed);
        row = 0;
        group.forEach((r, i) => {
          const first = row;
          row += sizes[i]!;
          if (batch.isAdversarial(logits, first, r)) return;
          // f_j = z_j - z_anchor (untargeted; negative until the boundary is crossed) or z_anchor - z_j.
          const z = batch.logitsRow(logits, first);
          let bestDistance = Infinity;
          let bestRow = -1;
          let bestF = 0;
          let choices = others[r]!.map((j, q) => ({ j, q }));
          if (criterion.targeted) {
            // Only the strongest rival of the target binds.
            const rival = choices.reduce((a, b) => (z[b.j]! > z[a.j]! ? b : a));
            choices = [rival];
          }
          for (const { j, q } of choices) {
            const f = sign * (z[j]! - z[anchor[r]!]!);
            const o = (first + q) * perImage;
            const dual = this.norm === 'l2' ? l2Of(grad, o, perImage) : l1Of(grad, o, perImage);
            const distance = (Math.abs(f) + 1e-4) / Math.max(dual, 1e-12);
            if (distance < bestDistance) [bestDistance, bestRow, bestF] = [distance, first + q, f];
          }
          const o = bestRow * perImage;
          const wNorm = this.norm === 'l2' ? l2Of(grad, o, perImage) : l1Of(grad, o, perImage);
          const scale = (Math.abs(bestF) + 1e-4) / Math.max(this.norm === 'l2' ? wNorm * wNorm : wNorm, 1e-24);
          const base = r * perImage;
          for (let p = 0; p < perImage; p++) {
            const w = grad[o + p]!;
            total[base + p] = total[base + p]! + (this.norm === 'l2' ? scale * w : scale * Math.sign(w));
            const v = x0[base + p]! + (1 + this.overshoot) * total[base + p]!;
            adv[base + p] = v < 0 ? 0 : v > 1 ? 1 : v;
          }
          spent[r]!++;
          next.push(r);
        });
      }
      live = next;
      batch.progress((step + 1) / this.steps);
    }
    return { adv, spent };
  }
}
