// The shared geometry of bounded attacks: steepest-ascent directions, projection onto the L-inf or
// L2 ball around the clean image intersected with the [0, 1] box, random starts and norms. Arrays
// hold `rows` images of `perImage` values each; norms accumulate in float64 (a 224x224x3 image has
// 150,528 terms).
import type { SeededRandom } from '../random.js';

export type Norm = 'linf' | 'l2';

/** x += step * direction(g), where direction is sign(g) for L-inf and g / ||g||_2 per image for L2. */
export function ascend(
  x: Float32Array,
  g: Float32Array,
  step: number | Float64Array,
  norm: Norm,
  perImage: number,
): void {
  const rows = x.length / perImage;
  for (let r = 0; r < rows; r++) {
    const o = r * perImage;
    const s = typeof step === 'number' ? step : step[r]!;
    if (norm === 'linf') {
      for (let i = o; i < o + perImage; i++) x[i] = x[i]! + s * Math.sign(g[i]!);
    } else {
      const scale = s / Math.max(l2Of(g, o, perImage), 1e-12);
      for (let i = o; i < o + perImage; i++) x[i] = x[i]! + scale * g[i]!;
    }
  }
}

/** Projects x onto {||x - x0|| <= eps} intersected with [0, 1], in place. */
export function project(x: Float32Array, x0: Float32Array, eps: number, norm: Norm, perImage: number): void {
  const rows = x.length / perImage;
  for (let r = 0; r < rows; r++) {
    const o = r * perImage;
    if (norm === 'linf') {
      for (let i = o; i < o + perImage; i++) {
        const lo = Math.max(0, x0[i]! - eps);
        const hi = Math.min(1, x0[i]! + eps);
        const v = x[i]!;
        x[i] = v < lo ? lo : v > hi ? hi : v;
      }
    } else {
      let ss = 0;
      for (let i = o; i < o + perImage; i++) ss += (x[i]! - x0[i]!) ** 2;
      const n = Math.sqrt(ss);
      // A hair inside the ball, so float32 rounding of x0 + delta cannot leave it.
      const scale = n > eps ? (eps / n) * (1 - 1e-7) : 1;
      for (let i = o; i < o + perImage; i++) {
        const v = x0[i]! + scale * (x[i]! - x0[i]!);
        x[i] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
    }
  }
}

/** A uniform random point of the L-inf ball, or a point of the L2 ball at radius eps * U(0, 1), clipped. */
export function randomStart(
  x0: Float32Array,
  eps: number,
  norm: Norm,
  perImage: number,
  rng: SeededRandom,
): Float32Array {
  const x = new Float32Array(x0.length);
  if (norm === 'linf') {
    for (let i = 0; i < x.length; i++) x[i] = x0[i]! + rng.uniform(-eps, eps);
  } else {
    const d = new Float64Array(perImage);
    for (let o = 0; o < x.length; o += perImage) {
      let ss = 0;
      for (let i = 0; i < perImage; i++) {
        d[i] = rng.normal();
        ss += d[i]! * d[i]!;
      }
      const scale = (eps * rng.next()) / Math.max(Math.sqrt(ss), 1e-12);
      for (let i = 0; i < perImage; i++) x[o + i] = x0[o + i]! + scale * d[i]!;
    }
  }
  project(x, x0, eps, norm, perImage);
  return x;
}

export function l2Of(a: Float32Array, offset: number, length: number): number {
  let ss = 0;
  for (let i = offset; i < offset + length; i++) ss += a[i]! * a[i]!;
  return Math.sqrt(ss);
}

export function l1Of(a: Float32Array, offset: number, length: number): number {
  let s = 0;
  for (let i = offset; i < offset + length; i++) s += Math.abs(a[i]!);
  return s;
}

/** Per-image L-inf and L2 norms of adv - x0. */
export function perturbationNorms(
  adv: Float32Array,
  x0: Float32Array,
  perImage: number,
): { linf: Float32Array; l2: Float32Array } {
  const rows = adv.length / perImage;
  const linf = new Float32Array(rows);
  const l2 = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    let ss = 0;
    for (let i = r * perImage; i < (r + 1) * perImage; i++) {
      const d = adv[i]! - x0[i]!;
      m = Math.max(m, Math.abs(d));
      ss += d * d;
    }
    linf[r] = m;
    l2[r] = Math.sqrt(ss);
  }
  return { linf, l2 };
}
