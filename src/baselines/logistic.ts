// Logistic regression with an L2 penalty whose strength is chosen by stratified k-fold cross-validation:
// how the Mahalanobis and LID detectors combine their per-layer scores. Both papers' code calls
// scikit-learn's LogisticRegressionCV with its defaults, which this reproduces: ten strengths C in
// logspace(-4, 4), five stratified folds without shuffling, accuracy as the criterion (the first, i.e.
// smallest, C among equals wins), an unpenalized intercept, then a refit on all rows at the chosen C.
// The objective is minimized exactly (Newton's method in float64) where scikit-learn stops L-BFGS at
// a tolerance of 1e-4, so the two agree to that tolerance.
import { choleskySolve } from './matrix.js';

/** Rows of features: a row-major [rows x cols] Float64Array. */
export interface FeatureMatrix {
  data: Float64Array;
  rows: number;
  cols: number;
}

export interface LogisticModel {
  weights: Float64Array;
  bias: number;
}

export interface CrossValidated extends LogisticModel {
  /** The chosen strength (inverse of the penalty). */
  C: number;
  /** Mean held-out score per candidate C, in the order of `Cs`. */
  scores: number[];
  Cs: number[];
}

export interface CrossValidationOptions {
  /** Inverse penalty strengths to try (default: scikit-learn's, 10 values logspace(-4, 4)). */
  Cs?: number[];
  /** Stratified folds (default 5). */
  folds?: number;
  /** Held-out criterion: 'accuracy' (scikit-learn's default) or 'logLoss' (mean log-likelihood). */
  scoring?: 'accuracy' | 'logLoss';
}

export const defaultCs: readonly number[] = Array.from({ length: 10 }, (_, i) => 10 ** (-4 + (8 * i) / 9));

/** log(1 + e^z) without overflow. */
function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

function sigmoid(z: number): number {
  if (z >= 0) return 1 / (1 + Math.exp(-z));
  const e = Math.exp(z);
  return e / (1 + e);
}

function checkProblem(x: FeatureMatrix, y: Uint8Array): void {
  if (!(x.data instanceof Float64Array) || x.data.length !== x.rows * x.cols || x.cols < 1)
    throw new TypeError(
      `Expected a Float64Array of ${x.rows} x ${x.cols} features for x but received ${x.data?.length} values`,
    );
  if (!(y instanceof Uint8Array) || y.length !== x.rows)
    throw new TypeError(`Expected a Uint8Array of ${x.rows} labels (0 or 1) for y but received ${y?.length}`);
  if (y.some((v) => v !== 0 && v !== 1)) throw new RangeError('Expected labels 0 or 1 for y');
  for (let i = 0; i < x.data.length; i++)
    if (!Number.isFinite(x.data[i]!))
      throw new RangeError(`Expected finite features for x but received ${x.data[i]} at row ${Math.floor(i / x.cols)}`);
}

/** w . x_r + b for every row: the log-odds of class 1. */
export function decisionFunction(model: LogisticModel, x: FeatureMatrix): Float64Array {
  const out = new Float64Array(x.rows);
  for (let r = 0; r < x.rows; r++) {
    let z = model.bias;
    for (let j = 0; j < x.cols; j++) z += model.weights[j]! * x.data[r * x.cols + j]!;
    out[r] = z;
  }
  return out;
}

/**
 * Minimizes C * sum_i log(1 + exp(-s_i (w . x_i + b))) + ||w||^2 / 2 (s_i = +-1; the intercept is not
 * penalized) by Newton's method with backtracking; the objective is strictly convex in w, and the
 * intercept's curvature gets a floor of 1e-12 so that a perfectly separated set still converges.
 */
export function fitLogistic(x: FeatureMatrix, y: Uint8Array, C: number): LogisticModel {
  checkProblem(x, y);
  if (!(C > 0)) throw new RangeError(`Expected a positive number for C but received ${C}`);
  const { data, rows, cols } = x;
  const p = cols + 1;
  const theta = new Float64Array(p);
  const objective = (t: Float64Array): number => {
    let f = 0;
    for (let j = 0; j < cols; j++) f += 0.5 * t[j]! * t[j]!;
    let loss = 0;
    for (let r = 0; r < rows; r++) {
      let z = t[cols]!;
      for (let j = 0; j < cols; j++) z += t[j]! * data[r * cols + j]!;
      loss += softplus(y[r] === 1 ? -z : z);
    }
    return f + C * loss;
  };
  let f = objective(theta);
  for (let iteration = 0; iteration < 200; iteration++) {
    const grad = new Float64Array(p);
    const hess = new Float64Array(p * p);
    for (let j = 0; j < cols; j++) {
      grad[j] = theta[j]!;
      hess[j * p + j] = 1;
    }
    hess[cols * p + cols] = 1e-12;
    for (let r = 0; r < rows; r++) {
      let z = theta[cols]!;
      for (let j = 0; j < cols; j++) z += theta[j]! * data[r * cols + j]!;
      const s = sigmoid(z);
      const g = C * (s - y[r]!);
      const h = C * s * (1 - s);
      for (let i = 0; i < p; i++) {
        const xi = i === cols ? 1 : data[r * cols + i]!;
        grad[i] += g * xi;
        for (let j = 0; j <= i; j++) hess[i * p + j] += h * xi * (j === cols ? 1 : data[r * cols + j]!);
      }
    }
    for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) hess[i * p + j] = hess[j * p + i]!;
    const step = choleskySolve(hess, grad, p);
    if (step === null) break;
    // Newton decrement: grad . step, the predicted decrease times two.
    const decrement = grad.reduce((a, g, i) => a + g * step[i]!, 0);
    if (decrement < 1e-20 * Math.max(1, Math.abs(f))) break;
    let t = 1;
    let next = theta;
    let fNext = f;
    for (let halvings = 0; halvings < 60; halvings++, t /= 2) {
      next = theta.map((v, i) => v - t * step[i]!);
      fNext = objective(next);
      if (fNext <= f - 0.25 * t * decrement) break;
    }
    if (!(fNext < f)) break;
    theta.set(next);
    const change = f - fNext;
    f = fNext;
    if (change <= 1e-15 * Math.max(1, Math.abs(f))) break;
  }
  return { weights: theta.slice(0, cols), bias: theta[cols]! };
}

/**
 * The fold of each row for stratified k-fold without shuffling, as scikit-learn's StratifiedKFold
 * assigns them: within each class, its rows in order are cut into `folds` contiguous blocks, the first
 * (count mod folds) blocks one row longer.
 */
export function stratifiedFolds(y: Uint8Array, folds: number): Int32Array {
  if (!Number.isInteger(folds) || folds < 2)
    throw new RangeError(`Expected an integer >= 2 for folds but received ${folds}`);
  const out = new Int32Array(y.length);
  for (const label of [0, 1]) {
    const rows = [...y.keys()].filter((i) => y[i] === label);
    if (rows.length > 0 && rows.length < folds)
      throw new RangeError(
        `Expected at least ${folds} rows of label ${label} for ${folds}-fold cross-validation ` +
          `but received ${rows.length}`,
      );
    let at = 0;
    for (let f = 0; f < folds; f++) {
      const size = Math.floor(rows.length / folds) + (f < rows.length % folds ? 1 : 0);
      for (let i = 0; i < size; i++) out[rows[at++]!] = f;
    }
  }
  return out;
}

function subset(x: FeatureMatrix, y: Uint8Array, keep: number[]): { x: FeatureMatrix; y: Uint8Array } {
  const data = new Float64Array(keep.length * x.cols);
  keep.forEach((r, i) => {
    data.set(x.data.subarray(r * x.cols, (r + 1) * x.cols), i * x.cols);
  });
  return { x: { data, rows: keep.length, cols: x.cols }, y: Uint8Array.from(keep, (r) => y[r]!) };
}

function heldOutScore(model: LogisticModel, x: FeatureMatrix, y: Uint8Array, scoring: 'accuracy' | 'logLoss'): number {
  const z = decisionFunction(model, x);
  let total = 0;
  for (let r = 0; r < x.rows; r++) {
    // scikit-learn predicts class 1 when the probability exceeds 0.5, i.e. z > 0.
    if (scoring === 'accuracy') total += (z[r]! > 0 ? 1 : 0) === y[r] ? 1 : 0;
    else total -= softplus(y[r] === 1 ? -z[r]! : z[r]!);
  }
  return total / x.rows;
}

/** Chooses C by stratified k-fold cross-validation, then refits on every row at that C. */
export function fitLogisticCV(x: FeatureMatrix, y: Uint8Array, options: CrossValidationOptions = {}): CrossValidated {
  checkProblem(x, y);
  const Cs = options.Cs ?? [...defaultCs];
  const folds = options.folds ?? 5;
  const scoring = options.scoring ?? 'accuracy';
  if (Cs.length === 0 || Cs.some((c) => !(c > 0)))
    throw new RangeError(`Expected positive numbers for Cs but received [${Cs.join(', ')}]`);
  if (!y.includes(0) || !y.includes(1)) throw new RangeError('Expected rows of both labels (0 and 1) for y');
  const fold = stratifiedFolds(y, folds);
  const scores = Cs.map(() => 0);
  for (let f = 0; f < folds; f++) {
    const train = subset(
      x,
      y,
      [...fold.keys()].filter((r) => fold[r] !== f),
    );
    const test = subset(
      x,
      y,
      [...fold.keys()].filter((r) => fold[r] === f),
    );
    Cs.forEach((C, i) => {
      scores[i] += heldOutScore(fitLogistic(train.x, train.y, C), test.x, test.y, scoring) / folds;
    });
  }
  let best = 0;
  for (let i = 1; i < Cs.length; i++) if (scores[i]! > scores[best]!) best = i;
  return { ...fitLogistic(x, y, Cs[best]!), C: Cs[best]!, scores, Cs };
}
