/**
 * Segmentation losses with MONAI's semantics (monai.losses.DiceLoss / DiceCELoss with softmax=True,
 * to_onehot_y=True): logits (B, C, ...spatial) and class-index targets (B, ...spatial).
 *
 *   dice(b, c) = 1 - (2 Σ p·y + smoothNr) / (Σ y + Σ p + smoothDr)      p = softmax(logits)[c], y = [target = c]
 *
 * sums over the spatial dims (and the batch too with `batch`), then the mean over (b, c).
 */
import type { Reduction } from '../ops/loss.js';
import { add, div, mul, sub } from '../ops/elementwise.js';
import { softmax } from '../ops/normalization.js';
import { mean, sum } from '../ops/reduce.js';
import { slice } from '../ops/shape.js';
import { record } from '../tensor/autograd.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export interface DiceLossOptions {
  /** Keep class 0 in the average (MONAI's default true). */
  includeBackground?: boolean;
  smoothNr?: number;
  smoothDr?: number;
  /** Σ p² instead of Σ p in the denominator. */
  squaredPred?: boolean;
  /** Sum over the batch before the ratio (one Dice per class instead of per sample and class). */
  batch?: boolean;
  /** 'none' returns (B, C') or (C') with `batch`. */
  reduction?: Reduction;
}

/** One-hot (B, C, ...spatial) float32 of class-index targets (B, ...spatial). */
export function oneHot(target: Tensor, numClasses: number, op = 'oneHot'): Tensor {
  if (target.dtype !== 'int32' && target.dtype !== 'int64') {
    throw new Error(
      `${op}: targets must be int32 or int64 class indices, got ${target.dtype} ${fmt(target.shape)}`,
    );
  }
  const [B, ...spatial] = target.shape;
  const inner = spatial.reduce((a, b) => a * b, 1);
  const out = new Float32Array(B * numClasses * inner);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < inner; i++) {
      const y = Number(target.data[b * inner + i]);
      if (!(Number.isInteger(y) && y >= 0 && y < numClasses)) {
        throw new Error(
          `${op}: target ${y} at position ${b * inner + i} is out of range for ${numClasses} classes`,
        );
      }
      out[(b * numClasses + y) * inner + i] = 1;
    }
  }
  return new Tensor(out, [B, numClasses, ...spatial]);
}

function checkPair(input: Tensor, target: Tensor, op: string): void {
  if (input.dtype !== 'float32' || input.ndim < 3) {
    throw new Error(
      `${op}: input must be float32 logits (B, C, ...spatial), got ${input.dtype} ${fmt(input.shape)}`,
    );
  }
  const expected = [input.shape[0], ...input.shape.slice(2)];
  if (!shapesEqual(target.shape, expected)) {
    throw new Error(
      `${op}: logits ${fmt(input.shape)} need class-index targets of shape ${fmt(expected)}, got ${fmt(target.shape)}`,
    );
  }
}

/** MONAI's DiceLoss(softmax=True, to_onehot_y=True) on logits and class indices. */
export function diceLoss(input: Tensor, target: Tensor, options: DiceLossOptions = {}): Tensor {
  const op = 'diceLoss';
  checkPair(input, target, op);
  const {
    includeBackground = true,
    smoothNr = 1e-5,
    smoothDr = 1e-5,
    squaredPred = false,
    batch = false,
    reduction = 'mean',
  } = options;
  const C = input.shape[1];
  if (!includeBackground && C === 1)
    throw new Error(`${op}: includeBackground false needs more than one class`);
  let p = softmax(input, 1); // (B, C, ...)
  let y = oneHot(target, C, op);
  if (!includeBackground) {
    p = slice(p, 1, 1);
    y = slice(y, 1, 1);
  }
  const spatial = Array.from({ length: input.ndim - 2 }, (_, i) => i + 2);
  const dims = batch ? [0, ...spatial] : spatial;
  const intersection = sum(mul(p, y), dims);
  const denominator = add(sum(y, dims), sum(squaredPred ? mul(p, p) : p, dims));
  const loss = sub(1, div(add(mul(intersection, 2), smoothNr), add(denominator, smoothDr))); // (B, C') or (C')
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return sum(loss);
  if (reduction === 'mean') return mean(loss);
  throw new Error(`${op}: reduction must be 'none', 'mean' or 'sum', got '${reduction}'`);
}

export interface DiceCeLossOptions extends Omit<DiceLossOptions, 'reduction'> {
  lambdaDice?: number;
  lambdaCe?: number;
  /** (C,) class weights of the cross-entropy term. */
  ceWeight?: Tensor | null;
}

/**
 * MONAI's DiceCELoss: lambdaDice · diceLoss + lambdaCe · crossEntropy (both means; a weighted
 * cross-entropy is divided by the summed weights of the targets, as torch does). One fused pass each
 * way: softmax, the cross-entropy and the Dice sums forward, the analytic gradient backward. Composed
 * from softmax, oneHot, products, sums and F.crossEntropy it took a tenth of a 3D training step.
 */
export function diceCeLoss(input: Tensor, target: Tensor, options: DiceCeLossOptions = {}): Tensor {
  const op = 'diceCeLoss';
  const {
    lambdaDice = 1,
    lambdaCe = 1,
    ceWeight = null,
    includeBackground = true,
    smoothNr = 1e-5,
    smoothDr = 1e-5,
    squaredPred = false,
    batch = false,
  } = options;
  if (!(lambdaDice >= 0 && lambdaCe >= 0)) {
    throw new Error(`${op}: lambdaDice and lambdaCe must be >= 0, got ${lambdaDice} and ${lambdaCe}`);
  }
  checkPair(input, target, op);
  if (target.dtype !== 'int32' && target.dtype !== 'int64') {
    throw new Error(
      `${op}: targets must be int32 or int64 class indices, got ${target.dtype} ${fmt(target.shape)}`,
    );
  }
  const [B, C] = input.shape;
  if (!includeBackground && C === 1)
    throw new Error(`${op}: includeBackground false needs more than one class`);
  if (ceWeight && (ceWeight.ndim !== 1 || ceWeight.shape[0] !== C)) {
    throw new Error(`${op}: ceWeight must be (${C},) for ${C} classes, got ${fmt(ceWeight.shape)}`);
  }
  const n = input.size / (B * C); // positions per sample
  const x = input.data as Float32Array;
  const w = ceWeight ? (ceWeight.data as Float32Array) : null;
  const labels = new Int32Array(B * n);
  for (let i = 0; i < labels.length; i++) {
    const y = Number(target.data[i]);
    if (!(Number.isInteger(y) && y >= 0 && y < C)) {
      throw new Error(`${op}: target ${y} at position ${i} is out of range for ${C} classes`);
    }
    labels[i] = y;
  }
  const groups = batch ? 1 : B;
  const c0 = includeBackground ? 0 : 1;
  // Per (group, class): Σ p·y, Σ y, Σ p (or p²); float64 over up to millions of voxels.
  const inter = new Float64Array(groups * C);
  const ysum = new Float64Array(groups * C);
  const psum = new Float64Array(groups * C);
  const p = new Float32Array(input.size); // softmax, kept for the backward
  let ceSum = 0;
  let weightSum = 0;
  const e = new Float64Array(C);
  for (let b = 0; b < B; b++) {
    const g = batch ? 0 : b;
    const base = b * C * n;
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, x[base + c * n + i]);
      let z = 0;
      for (let c = 0; c < C; c++) {
        e[c] = Math.exp(x[base + c * n + i] - max);
        z += e[c];
      }
      const y = labels[b * n + i];
      const wy = w ? w[y] : 1;
      ceSum += wy * (max + Math.log(z) - x[base + y * n + i]);
      weightSum += wy;
      for (let c = 0; c < C; c++) {
        const pc = e[c] / z;
        p[base + c * n + i] = pc;
        psum[g * C + c] += squaredPred ? pc * pc : pc;
      }
      inter[g * C + y] += p[base + y * n + i];
      ysum[g * C + y] += 1;
    }
  }
  const terms = groups * (C - c0);
  let dice = 0;
  for (let g = 0; g < groups; g++) {
    for (let c = c0; c < C; c++) {
      const k = g * C + c;
      dice += 1 - (2 * inter[k] + smoothNr) / (ysum[k] + psum[k] + smoothDr);
    }
  }
  // torch's weighted mean is 0/0 when every target has weight 0; keep its NaN
  const value = (lambdaDice * dice) / terms + (lambdaCe * ceSum) / weightSum;
  const out = new Tensor(Float32Array.of(value), []);
  return record(out, 'diceCeLoss', [input], (grad) => {
    const up = (grad.data as Float32Array)[0];
    // ∂loss/∂p_c = dI·y_c + dP·(1 or 2p_c) per (group, class) with dI = -2/den, dP = num/den²
    const dI = new Float64Array(groups * C);
    const dP = new Float64Array(groups * C);
    const diceScale = (up * lambdaDice) / terms;
    for (let g = 0; g < groups; g++) {
      for (let c = c0; c < C; c++) {
        const k = g * C + c;
        const num = 2 * inter[k] + smoothNr;
        const den = ysum[k] + psum[k] + smoothDr;
        dI[k] = (-2 / den) * diceScale;
        dP[k] = (num / (den * den)) * diceScale;
      }
    }
    const ceScale = (up * lambdaCe) / weightSum;
    const gx = new Float32Array(input.size);
    const a = new Float64Array(C);
    for (let b = 0; b < B; b++) {
      const g = batch ? 0 : b;
      const base = b * C * n;
      for (let i = 0; i < n; i++) {
        const y = labels[b * n + i];
        // softmax backward of the Dice part: p_c (a_c - Σ_j p_j a_j)
        let dot = 0;
        for (let c = 0; c < C; c++) {
          const pc = p[base + c * n + i];
          const k = g * C + c;
          a[c] = (squaredPred ? 2 * pc : 1) * dP[k] + (c === y ? dI[k] : 0);
          dot += pc * a[c];
        }
        const ce = ceScale * (w ? w[y] : 1);
        for (let c = 0; c < C; c++) {
          const pc = p[base + c * n + i];
          gx[base + c * n + i] = pc * (a[c] - dot) + ce * (pc - (c === y ? 1 : 0));
        }
      }
    }
    return [new Tensor(gx, input.shape)];
  });
}
