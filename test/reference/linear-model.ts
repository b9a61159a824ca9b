// A linear classifier z = W x + b with analytic gradients, implementing the attacks' model
// interface: the attacks' arithmetic can be checked against closed forms (the exact distance to a
// hyperplane, the exact FGSM direction) without ONNX Runtime.
import type { GradientRequest, GradientResult } from '../../src/autodiff/index.js';
import type { AttackModel } from '../../src/attacks/index.js';
import type { ImageBatch } from '../../src/model/index.js';

export class LinearModel implements AttackModel {
  readonly inputShape: number[];
  readonly features: number;
  /** Number of gradient and logits calls, and rows they covered. */
  gradientCalls = 0;
  logitCalls = 0;
  rowsEvaluated = 0;

  constructor(
    /** [classes x features], row-major. */
    readonly weights: Float64Array,
    readonly bias: Float64Array,
    inputShape: number[],
  ) {
    this.inputShape = inputShape;
    this.features = inputShape.reduce((a, v) => a * v, 1);
  }

  get classes(): number {
    return this.bias.length;
  }

  private forward(images: ImageBatch): Float32Array {
    const rows = images.dims[0]!;
    const k = this.classes;
    const d = this.features;
    const z = new Float32Array(rows * k);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < k; c++) {
        let s = this.bias[c]!;
        for (let i = 0; i < d; i++) s += this.weights[c * d + i]! * images.data[r * d + i]!;
        z[r * k + c] = s;
      }
    }
    this.rowsEvaluated += rows;
    return z;
  }

  async logits(images: ImageBatch): Promise<Float32Array> {
    this.logitCalls++;
    return this.forward(images);
  }

  async gradient(images: ImageBatch, request: GradientRequest): Promise<GradientResult> {
    this.gradientCalls++;
    const rows = images.dims[0]!;
    const k = this.classes;
    const d = this.features;
    const logits = this.forward(images);
    // d loss / d logits, then W^T times it.
    const dz = new Float64Array(rows * k);
    const loss = request.labels ? new Float32Array(rows) : undefined;
    const margin = request.marginLabels ? new Float32Array(rows) : undefined;
    for (let r = 0; r < rows; r++) {
      const z = logits.subarray(r * k, (r + 1) * k);
      if (request.logitSeed) for (let c = 0; c < k; c++) dz[r * k + c] += request.logitSeed[r * k + c]!;
      if (request.labels) {
        const y = request.labels[r]!;
        const max = Math.max(...z);
        const sum = z.reduce((a, v) => a + Math.exp(v - max), 0);
        for (let c = 0; c < k; c++) dz[r * k + c] += Math.exp(z[c]! - max) / sum - (c === y ? 1 : 0);
        loss![r] = Math.log(sum) + max - z[y]!;
      }
      if (request.marginLabels) {
        const y = request.marginLabels[r]!;
        let other = -1;
        for (let c = 0; c < k; c++) if (c !== y && (other < 0 || z[c]! > z[other]!)) other = c;
        dz[r * k + y] += 1;
        dz[r * k + other] -= 1;
        margin![r] = z[y]! - z[other]!;
      }
    }
    const grad = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < k; c++) {
        const g = dz[r * k + c]!;
        if (g === 0) continue;
        for (let i = 0; i < d; i++) grad[r * d + i] += g * this.weights[c * d + i]!;
      }
    }
    return {
      rows,
      classes: k,
      logits,
      activations: new Float32Array(0),
      grad,
      ...(loss ? { loss } : {}),
      ...(margin ? { margin } : {}),
    };
  }
}
