// L-inf PGD against the model and a detector at once: descend max(margin, -kappa) + weight * score,
// where the score is a DetectorTerm (a known static draw, or the expectation over the random draw)
// and its input gradient comes from the term's activation gradient fed as the tap seed. The class the
// detector scores is the one the model gives the current iterate, so it is tracked as it changes.
import type { GradientModel } from '../../autodiff/index.js';
import { gatherRows } from '../../data/index.js';
import type { ImageBatch } from '../../model/index.js';
import { Attack } from '../attack.js';
import type { AttackBatch, AttackModel, AttackOptions, AttackResult, Perturbation } from '../attack.js';
import { argmax } from '../criterion.js';
import { confidenceStatistic } from '../../detect/confidence.js';
import { ascend, project, randomStart } from '../geometry.js';
import { nonNegative, positive, positiveInt } from '../options.js';
import type { DetectorTerm } from './detector-term.js';
import { tappedModel } from './tapped-model.js';

/** An attack model that also gives the tapped activations of a forward pass (GradientModel via tappedModel). */
export interface TappedAttackModel extends AttackModel {
  readonly neurons: number;
  forward(images: ImageBatch): Promise<{ logits: Float32Array; activations: Float32Array }>;
}

export interface AdaptivePgdOptions {
  eps: number;
  /** Gradient steps per restart (default 100). */
  steps?: number;
  /** Step length (default 2.5 * eps / steps). */
  stepSize?: number;
  /** Runs from fresh random starts for images not yet adversarial and under the threshold (default 1). */
  restarts?: number;
  /** Weight of the detector's score against the margin (default 1). */
  weight?: number;
  /** The margin term stops pushing once the margin is below -kappa (default 0). */
  kappa?: number;
  /**
   * The detector term stops pushing once the score is this far under the threshold (default: never
   * stops). The score's gradient can dwarf the margin's, so that a sign step follows it alone; the hinge
   * lets the margin steer once the score is low enough.
   */
  slack?: number;
  /**
   * Take each step's tap seed from the previous iterate's activations (one ONNX Runtime run per step
   * instead of a forward and a gradient run): cheaper, and the seed lags by one step.
   */
  lagged?: boolean;
  /** Start the first run from a random point of the eps-ball (default) or from the clean image. */
  randomStart?: boolean;
  /**
   * One ONNX Runtime run per step: the term and its seed are computed inside the gradient run from the
   * iterate's own activations (DetectorTerm.quadraticTable: k = 1, 'max'), and the margin's seed and the
   * label come from the previous iterate's logits (one step late, as with `lagged`). Not with `slack`.
   */
  fused?: boolean;
}

/**
 * Adaptive PGD (Carlini & Wagner 2017's recipe of attacking the detector with the model; Athalye et
 * al. 2018's expectation over the randomness when the term is `DetectorTerm.expectation`). Keeps,
 * per image, the adversarial iterate with the lowest score relative to its class's threshold, or the
 * iterate of lowest margin while none is adversarial.
 *
 * @example
 * const term = DetectorTerm.expectation(bank, { draws: 25, combine: 'max', threshold: (c) => t[c] });
 * const r = await new AdaptivePGD(term, { eps: 0.1, steps: 100 }).run(tappedModel(model), images, { labels });
 */
export class AdaptivePGD extends Attack {
  readonly name: string;
  readonly norm = 'linf' as const;
  readonly eps: number;
  readonly steps: number;
  readonly stepSize: number;
  readonly restarts: number;
  readonly weight: number;
  readonly kappa: number;
  readonly lagged: boolean;
  readonly slack: number | undefined;
  readonly randomStart: boolean;
  readonly fused: boolean;

  constructor(
    readonly term: DetectorTerm,
    options: AdaptivePgdOptions,
  ) {
    super();
    this.name = `adaptive-${term.name}`;
    this.eps = positive('eps', options.eps);
    this.steps = positiveInt('steps', options.steps ?? 100);
    this.stepSize = positive('stepSize', options.stepSize ?? (2.5 * this.eps) / this.steps);
    this.restarts = positiveInt('restarts', options.restarts ?? 1);
    this.weight = nonNegative('weight', options.weight ?? 1);
    this.kappa = nonNegative('kappa', options.kappa ?? 0);
    this.lagged = options.lagged ?? false;
    this.slack = options.slack === undefined ? undefined : nonNegative('slack', options.slack);
    this.randomStart = options.randomStart ?? true;
    this.fused = options.fused ?? false;
    if (this.fused && (this.slack !== undefined || this.lagged))
      throw new RangeError('Expected fused without slack or lagged for options but received both');
    if (this.fused) term.quadraticTable(); // a term it cannot fuse fails here, not in the first step
  }

  /**
   * `model` gives the tapped activations with the logits: a TappedAttackModel, or a GradientModel loaded
   * with the bank's taps (as a fit's model is, where this attack is a family of its own).
   */
  override run(
    model: TappedAttackModel | GradientModel,
    images: ImageBatch,
    options: AttackOptions,
  ): Promise<AttackResult> {
    const tapped = 'forward' in model ? model : tappedModel(model);
    if (tapped.neurons !== this.term.neurons)
      throw new RangeError(
        `Expected a model tapping the bank's ${this.term.neurons} neurons for model but received ${tapped.neurons}`,
      );
    return super.run(tapped, images, options);
  }

  protected async perturb(batch: AttackBatch): Promise<Perturbation> {
    const model = batch.model as TappedAttackModel;
    const { x0, perImage, rows } = batch;
    const adv = x0.slice();
    const spent = new Int32Array(rows);
    // Per image: the best adversarial iterate's slack (+Infinity while none), and the best margin till then.
    const best: Best = {
      adv,
      slack: new Float64Array(rows).fill(Number.POSITIVE_INFINITY),
      margin: new Float64Array(rows).fill(Number.POSITIVE_INFINITY),
    };
    const passed = (r: number) => best.slack[r]! < 0;
    for (let restart = 0; restart < this.restarts; restart++) {
      const live = Array.from({ length: rows }, (_, r) => r).filter((r) => !passed(r));
      if (live.length === 0) break;
      const clean = gatherRows(x0, live, perImage);
      // The first run may start at the clean image, where the drawn neurons sit at their clean means.
      const x =
        this.randomStart || restart > 0 ? randomStart(clean, this.eps, 'linf', perImage, batch.rng) : clean.slice();
      const dims = batch.dims(live.length);
      if (this.fused && this.weight > 0) {
        await this.fusedSteps(batch, live, x, clean, best, restart, spent);
        await this.seeds(batch, live, await model.forward({ data: x, dims }), x, best, false);
        continue;
      }
      let seeds = this.lagged
        ? await this.seeds(batch, live, await model.forward({ data: x, dims }), x, best)
        : undefined;
      for (let step = 0; step < this.steps; step++) {
        let grad: Float32Array;
        if (seeds === undefined) {
          const now = await this.seeds(batch, live, await model.forward({ data: x, dims }), x, best);
          grad = (await model.gradient({ data: x, dims }, { ...now, activations: false })).grad;
        } else {
          // One run: the gradient of the previous iterate's seeds, and this iterate's logits and activations.
          const out = await model.gradient({ data: x, dims }, seeds);
          grad = out.grad;
          seeds = await this.seeds(batch, live, out, x, best);
        }
        for (let i = 0; i < grad.length; i++) grad[i] = -grad[i]!;
        ascend(x, grad, this.stepAt(step), 'linf', perImage);
        project(x, clean, this.eps, 'linf', perImage);
        for (const r of live) spent[r]!++;
        batch.progress((restart * this.steps + step + 1) / (this.restarts * this.steps));
      }
      // The last iterate has not been looked at yet.
      await this.seeds(batch, live, await model.forward({ data: x, dims }), x, best, false);
    }
    return { adv, spent };
  }

  /**
   * The steps of one restart in fused mode: per step one gradient run of (1 / weight) x margin + term,
   * the term computed in the run (the direction of a sign step is that of margin + weight x term). The
   * run's logits and term value are those of the iterate before the step, which is kept as `seeds` keeps
   * iterates, except where its label moved away from the one the term was computed for.
   */
  private async fusedSteps(
    batch: AttackBatch,
    live: number[],
    x: Float32Array,
    clean: Float32Array,
    best: Best,
    restart: number,
    spent: Int32Array,
  ): Promise<void> {
    const model = batch.model as TappedAttackModel;
    const k = batch.classes;
    const perImage = batch.perImage;
    const dims = batch.dims(live.length);
    let logits = await model.logits({ data: x, dims });
    for (let step = 0; step < this.steps; step++) {
      const labels = Int32Array.from(live, (_, i) => argmax(logits, i, k));
      const logitSeed = new Float32Array(live.length * k);
      live.forEach((r, i) => {
        if (batch.marginOf(logits, i, r) > -this.kappa) marginSeed(batch, logits, i, r, logitSeed);
      });
      for (let i = 0; i < logitSeed.length; i++) logitSeed[i] = logitSeed[i]! / this.weight;
      const out = await model.gradient(
        { data: x, dims },
        { logitSeed, tapQuadratic: this.term.quadraticRequest(labels), activations: false },
      );
      const margins = this.term.options.confidence !== undefined ? confidenceStatistic(out.logits, live.length) : null;
      live.forEach((r, i) => {
        // No slack where the label moved away from the class the value was computed for, or has no fingerprints.
        const c = argmax(out.logits, i, k);
        const scored = c === labels[i] && this.term.bank.header.classes[c]!.count > 0;
        const slack = scored
          ? this.term.withMargin(c, out.tapValue![i]!, margins?.[i]) - this.term.options.threshold(c)
          : Number.POSITIVE_INFINITY;
        keep(batch, best, x, out.logits, i, r, slack);
      });
      logits = out.logits;
      const grad = out.grad;
      for (let i = 0; i < grad.length; i++) grad[i] = -grad[i]!;
      ascend(x, grad, this.stepAt(step), 'linf', perImage);
      project(x, clean, this.eps, 'linf', perImage);
      for (const r of live) spent[r]!++;
      batch.progress((restart * this.steps + step + 1) / (this.restarts * this.steps));
    }
  }

  /**
   * The step length at `step`: full for the first half, then a quarter, then a sixteenth, so that the
   * quadratic log-likelihood terms, which sign steps of a fixed length overshoot, settle (APGD halves its
   * step for the same reason, on a schedule of its own).
   */
  private stepAt(step: number): number {
    const t = step / this.steps;
    return t < 0.5 ? this.stepSize : t < 0.75 ? this.stepSize / 4 : this.stepSize / 16;
  }

  /**
   * At iterate x of rows `live`: keeps each row's best iterate so far, and returns the seeds of
   * max(margin, -kappa) + weight * score for a gradient run (logitSeed, tapSeed).
   */
  private async seeds(
    batch: AttackBatch,
    live: number[],
    at: { logits: Float32Array; activations: Float32Array },
    x: Float32Array,
    state: Best,
    gradient = true,
  ): Promise<{ logitSeed: Float32Array; tapSeed: Float32Array }> {
    const k = batch.classes;
    const labels = Int32Array.from(live, (_, i) => argmax(at.logits, i, k));
    const term = await this.term.evaluate(at.activations, labels, gradient, at.logits);
    const logitSeed = new Float32Array(live.length * k);
    live.forEach((r, i) => {
      keep(batch, state, x, at.logits, i, r, term.slack[i]!);
      if (batch.marginOf(at.logits, i, r) > -this.kappa) marginSeed(batch, at.logits, i, r, logitSeed);
    });
    const tapSeed = term.seed ?? new Float32Array(0);
    const n = live.length === 0 ? 0 : tapSeed.length / live.length;
    live.forEach((_, i) => {
      // Hinged, as the margin is: a row already under its threshold by `slack` lets the margin steer.
      const w = this.slack !== undefined && term.slack[i]! < -this.slack ? 0 : this.weight;
      if (w === 1) return;
      // The seed is zero outside the neurons of the row's class: scale those alone.
      for (const j of this.term.neuronsOf(labels[i]!)) tapSeed[i * n + j] = w * tapSeed[i * n + j]!;
    });
    return { logitSeed, tapSeed };
  }
}

/** The iterates kept per image of a batch, and what they scored. */
interface Best {
  adv: Float32Array;
  slack: Float64Array;
  margin: Float64Array;
}

/**
 * Keeps iterate row i (batch row r) of x when it is the best so far: among adversarial iterates the one
 * of lowest slack (score minus threshold), and while none is adversarial the one of lowest margin.
 */
function keep(
  batch: AttackBatch,
  state: Best,
  x: Float32Array,
  logits: Float32Array,
  i: number,
  r: number,
  slack: number,
): void {
  const perImage = batch.perImage;
  if (batch.isAdversarial(logits, i, r)) {
    if (slack < state.slack[r]!) {
      state.adv.set(x.subarray(i * perImage, (i + 1) * perImage), r * perImage);
      state.slack[r] = slack;
    }
    return;
  }
  const margin = batch.marginOf(logits, i, r);
  if (state.slack[r] === Number.POSITIVE_INFINITY && margin < state.margin[r]!) {
    state.adv.set(x.subarray(i * perImage, (i + 1) * perImage), r * perImage);
    state.margin[r] = margin;
  }
}

/**
 * Adds to row i of `seed` the logit seed of the criterion's margin for batch row `row`: untargeted
 * z_y - z_j*, targeted z_j* - z_t, with j* the strongest other class.
 */
function marginSeed(batch: AttackBatch, logits: Float32Array, i: number, row: number, seed: Float32Array): void {
  const k = batch.classes;
  const { labels, targets } = batch.criterion;
  const own = targets === undefined ? labels[row]! : targets[row]!;
  let other = -1;
  for (let j = 0; j < k; j++) if (j !== own && (other < 0 || logits[i * k + j]! > logits[i * k + other]!)) other = j;
  const sign = targets === undefined ? 1 : -1;
  seed[i * k + own] = seed[i * k + own]! + sign;
  seed[i * k + other] = seed[i * k + other]! - sign;
}
