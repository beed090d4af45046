/**
 * Segmentation losses with MONAI's semantics (monai.losses.DiceLoss / DiceCELoss with softmax=True,
 * to_onehot_y=True): logits (B, C, ...spatial) and class-index targets (B, ...spatial).
 *
 *   dice(b, c) = 1 - (2 Σ p·y + smoothNr) / (Σ y + Σ p + smoothDr)      p = softmax(logits)[c], y = [target = c]
 *
 * sums over the spatial dims (and the batch too with `batch`), then the mean over (b, c).
 */
import { crossEntropy, type Reduction } from '../ops/loss.js';
import { add, div, mul, sub } from '../ops/elementwise.js';
import { softmax } from '../ops/normalization.js';
import { mean, sum } from '../ops/reduce.js';
import { slice } from '../ops/shape.js';
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

/** MONAI's DiceCELoss: lambdaDice · diceLoss + lambdaCe · crossEntropy (both means). */
export function diceCeLoss(input: Tensor, target: Tensor, options: DiceCeLossOptions = {}): Tensor {
  const { lambdaDice = 1, lambdaCe = 1, ceWeight = null, ...dice } = options;
  if (!(lambdaDice >= 0 && lambdaCe >= 0)) {
    throw new Error(`diceCeLoss: lambdaDice and lambdaCe must be >= 0, got ${lambdaDice} and ${lambdaCe}`);
  }
  const d = diceLoss(input, target, dice);
  const ce = crossEntropy(input, target, { weight: ceWeight });
  return add(mul(d, lambdaDice), mul(ce, lambdaCe));
}
