/**
 * Loss functions with torch's semantics and defaults (reduction 'mean'). Cross-entropy runs through a
 * fused log-softmax kernel with its own backward; the elementwise losses are composed from ops.
 */
import { kernels } from '../backend/backend.js';
import { record } from '../tensor/autograd.js';
import { broadcastShapes, fmt, normalizeAxis, shapesEqual, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { normalize } from './batch_norm.js';
import { scalar } from './creation.js';
import { abs, div, exp, gt, log, lt, mul, neg, softplus, square, sub, where } from './elementwise.js';
import { mean, sum } from './reduce.js';
import { expand, gather, reshape } from './shape.js';

export type Reduction = 'none' | 'mean' | 'sum';

function reduce(loss: Tensor, reduction: Reduction, op: string): Tensor {
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return sum(loss);
  if (reduction === 'mean') return mean(loss);
  throw new Error(`${op}: reduction must be 'none', 'mean' or 'sum', got '${reduction}'`);
}

function checkFloat(t: Tensor, op: string, what: string): void {
  if (t.dtype !== 'float32') throw new Error(`${op}: ${what} must be float32, got ${t.dtype}`);
}

function checkSameShape(input: Tensor, target: Tensor, op: string): void {
  if (!shapesEqual(input.shape, target.shape)) {
    throw new Error(
      `${op}: target ${fmt(target.shape)} must have the input's shape ${fmt(input.shape)} ` +
        '(broadcasting a loss target is almost always a bug; reshape one of them)',
    );
  }
}

function checkClassWeight(weight: Tensor | null | undefined, classes: number, op: string): void {
  if (weight && (weight.ndim !== 1 || weight.size !== classes || weight.dtype !== 'float32')) {
    throw new Error(
      `${op}: weight must be a float32 tensor of shape [${classes}] (one per class), got ${weight.dtype} ${fmt(weight.shape)}`,
    );
  }
}

/** Class-index targets: (N, d...) int for input (N, C, d...), or a scalar for an unbatched (C,) input. */
function checkIndexTarget(input: Tensor, target: Tensor, ignoreIndex: number, op: string): void {
  if (target.dtype !== 'int32' && target.dtype !== 'int64') {
    throw new Error(
      `${op}: class-index targets must be int32 or int64, got ${target.dtype} ${fmt(target.shape)} ` +
        `(probability targets must have the input's shape ${fmt(input.shape)})`,
    );
  }
  const expected = [input.shape[0], ...input.shape.slice(2)];
  if (!shapesEqual(target.shape, expected)) {
    throw new Error(
      `${op}: input ${fmt(input.shape)} (N, C, d...) needs class-index targets of shape ${fmt(expected)}, got ${fmt(target.shape)}`,
    );
  }
  const classes = input.shape[1];
  for (let i = 0; i < target.size; i++) {
    const y = target.data[i];
    if (y !== ignoreIndex && (y < 0 || y >= classes)) {
      throw new Error(
        `${op}: target ${y} at position ${i} is out of range for ${classes} classes (ignoreIndex is ${ignoreIndex})`,
      );
    }
  }
}

export interface CrossEntropyOptions {
  /** (C,) rescaling weight per class. */
  weight?: Tensor | null;
  ignoreIndex?: number;
  reduction?: Reduction;
  labelSmoothing?: number;
}

/**
 * F.crossEntropy(input, target, { weight, ignoreIndex = -100, reduction = 'mean', labelSmoothing = 0 }).
 * input (N, C, d...) or (C,) logits; target class indices (N, d...) int32/int64, or class
 * probabilities of the input's shape (Mixup/CutMix). 'mean' over indices is the weighted mean over
 * non-ignored positions (Σ loss / Σ w[y]); over probabilities it divides by the number of positions.
 */
export function crossEntropy(input: Tensor, target: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const { weight = null, ignoreIndex = -100, reduction = 'mean', labelSmoothing = 0 } = options;
  checkFloat(input, op, 'input');
  if (input.ndim === 0) throw new Error(`${op}: input must be (C,) or (N, C, d...) logits, got a scalar`);
  if (input.ndim === 1) {
    // unbatched (C,) input: a batch of one
    const probs = target.dtype === 'float32';
    const t = probs ? reshape(target, [1, ...target.shape]) : reshape(target, [1]);
    const out = crossEntropy(reshape(input, [1, input.size]), t, options);
    return reduction === 'none' ? reshape(out, []) : out;
  }
  if (!(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new Error(`${op}: labelSmoothing must be in [0, 1], got ${labelSmoothing}`);
  }
  const classes = input.shape[1];
  checkClassWeight(weight, classes, op);
  const probs = target.dtype === 'float32';
  if (probs) {
    if (!shapesEqual(input.shape, target.shape)) {
      throw new Error(
        `${op}: float targets are class probabilities and need the input's shape ${fmt(input.shape)}, ` +
          `got ${fmt(target.shape)}; class-index targets must be int32 or int64`,
      );
    }
    if (ignoreIndex >= 0) {
      throw new Error(
        `${op}: ignoreIndex (${ignoreIndex}) applies to class-index targets, not probabilities`,
      );
    }
  } else {
    checkIndexTarget(input, target, ignoreIndex, op);
  }
  const outer = input.shape[0];
  const inner = sizeOf(input.shape.slice(2));
  const posShape = [outer, ...input.shape.slice(2)]; // (N, d...)
  const w = weight ? (weight.data as Float32Array) : null;
  const lse = new Float64Array(outer * inner);
  const loss = new Float32Array(outer * inner);
  const k = kernels();
  k.crossEntropy(
    input.data as Float32Array,
    outer,
    classes,
    inner,
    target.data,
    probs,
    w,
    ignoreIndex,
    labelSmoothing,
    lse,
    loss,
  );
  const parents = probs ? [input, target] : [input];
  const perPosition = record(new Tensor(loss, posShape), op, parents, (g) => {
    const gx = new Float32Array(input.size);
    const gt = probs && target.requiresGrad ? new Float32Array(input.size) : null;
    kernels().crossEntropyBackward(
      input.data as Float32Array,
      outer,
      classes,
      inner,
      target.data,
      probs,
      w,
      ignoreIndex,
      labelSmoothing,
      lse,
      g.data as Float32Array,
      gx,
      gt,
    );
    return [new Tensor(gx, input.shape), gt ? new Tensor(gt, input.shape) : null];
  });
  if (reduction !== 'mean' || probs) return reduce(perPosition, reduction, op);
  let denominator = 0;
  for (let i = 0; i < target.size; i++) {
    const y = target.data[i];
    if (y !== ignoreIndex) denominator += w ? w[y] : 1;
  }
  // all positions ignored: 0 / 0 = NaN, as torch
  return div(sum(perPosition), scalar(denominator));
}

/**
 * F.nllLoss(input, target, { weight, ignoreIndex = -100, reduction = 'mean' }): input holds
 * log-probabilities (N, C, d...) or (C,); loss = -w[y] * input[y], 'mean' divides by Σ w[y] over
 * non-ignored positions.
 */
export function nllLoss(
  input: Tensor,
  target: Tensor,
  options: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {},
): Tensor {
  const op = 'nllLoss';
  const { weight = null, ignoreIndex = -100, reduction = 'mean' } = options;
  checkFloat(input, op, 'input');
  if (input.ndim === 1) {
    const out = nllLoss(reshape(input, [1, input.size]), reshape(target, [1]), options);
    return reduction === 'none' ? reshape(out, []) : out;
  }
  if (input.ndim < 2) throw new Error(`${op}: input must be (C,) or (N, C, d...), got ${fmt(input.shape)}`);
  checkClassWeight(weight, input.shape[1], op);
  checkIndexTarget(input, target, ignoreIndex, op);
  const w = weight ? (weight.data as Float32Array) : null;
  // Ignored positions read class 0 and get coefficient 0.
  const safeTarget = new Float64Array(target.size);
  const coef = new Float32Array(target.size);
  let denominator = 0;
  for (let i = 0; i < target.size; i++) {
    const y = target.data[i];
    if (y === ignoreIndex) continue;
    safeTarget[i] = y;
    coef[i] = w ? w[y] : 1;
    denominator += coef[i];
  }
  const indexShape = [input.shape[0], 1, ...input.shape.slice(2)];
  const picked = reshape(gather(input, 1, new Tensor(safeTarget, indexShape)), target.shape); // (N, d...)
  const loss = neg(mul(picked, new Tensor(coef, target.shape)));
  if (reduction === 'mean') return div(sum(loss), scalar(denominator));
  return reduce(loss, reduction, op);
}

/** Multiplies by an optional weight that broadcasts to the loss (torch's `weight` of the BCE losses). */
function weighted(loss: Tensor, weight: Tensor | null | undefined, op: string): Tensor {
  if (!weight) return loss;
  const shape = broadcastShapes(loss.shape, weight.shape, op);
  if (!shapesEqual(shape, loss.shape)) {
    throw new Error(`${op}: weight ${fmt(weight.shape)} must broadcast to the input ${fmt(loss.shape)}`);
  }
  return mul(loss, weight);
}

/**
 * F.binaryCrossEntropyWithLogits(input, target, { weight, posWeight, reduction = 'mean' }), stable for
 * any logit: (1 - t) x + (1 + (posWeight - 1) t) softplus(-x). posWeight broadcasts along the last
 * (class) dim; weight broadcasts to the input.
 */
export function binaryCrossEntropyWithLogits(
  input: Tensor,
  target: Tensor,
  options: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {},
): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  const { weight, posWeight, reduction = 'mean' } = options;
  checkFloat(input, op, 'input');
  checkFloat(target, op, 'target');
  checkSameShape(input, target, op);
  const negLogSigmoid = softplus(neg(input)); // -log σ(x)
  let logWeight: Tensor | number = 1;
  if (posWeight) {
    const shape = broadcastShapes(input.shape, posWeight.shape, op);
    if (!shapesEqual(shape, input.shape)) {
      throw new Error(
        `${op}: posWeight ${fmt(posWeight.shape)} must broadcast to the input ${fmt(input.shape)}`,
      );
    }
    logWeight = mul(sub(posWeight, 1), target).add(1);
  }
  const loss = mul(sub(1, target), input).add(mul(logWeight, negLogSigmoid));
  return reduce(weighted(loss, weight, op), reduction, op);
}

/**
 * F.binaryCrossEntropy(input, target, { weight, reduction = 'mean' }) on probabilities in [0, 1]. As
 * torch, each log is clamped at -100 so p = 0 or 1 gives a finite loss, and the input gradient is
 * (p - t) / max(p (1 - p), 1e-12).
 */
export function binaryCrossEntropy(
  input: Tensor,
  target: Tensor,
  options: { weight?: Tensor | null; reduction?: Reduction } = {},
): Tensor {
  const op = 'binaryCrossEntropy';
  const { weight, reduction = 'mean' } = options;
  checkFloat(input, op, 'input');
  checkFloat(target, op, 'target');
  checkSameShape(input, target, op);
  const p = input.data as Float32Array;
  const t = target.data as Float32Array;
  const n = input.size;
  const logP = new Float64Array(n);
  const log1mP = new Float64Array(n);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    if (!(p[i] >= 0 && p[i] <= 1)) {
      throw new Error(
        `${op}: input must hold probabilities in [0, 1], found ${p[i]} at ${i} (use the WithLogits form)`,
      );
    }
    logP[i] = Math.max(Math.log(p[i]), -100);
    log1mP[i] = Math.max(Math.log1p(-p[i]), -100);
    out[i] = -(t[i] * logP[i] + (1 - t[i]) * log1mP[i]);
  }
  const loss = record(new Tensor(out, input.shape), op, [input, target], (g) => {
    const gd = g.data as Float32Array;
    const gx = new Float32Array(n);
    const gt = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      gx[i] = (gd[i] * (p[i] - t[i])) / Math.max(p[i] * (1 - p[i]), 1e-12);
      gt[i] = gd[i] * (log1mP[i] - logP[i]);
    }
    return [new Tensor(gx, input.shape), new Tensor(gt, target.shape)];
  });
  return reduce(weighted(loss, weight, op), reduction, op);
}

function difference(input: Tensor, target: Tensor, op: string): Tensor {
  checkFloat(input, op, 'input');
  checkFloat(target, op, 'target');
  checkSameShape(input, target, op);
  return sub(input, target);
}

/** F.l1Loss(input, target, { reduction = 'mean' }): |input - target|. */
export function l1Loss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  return reduce(abs(difference(input, target, 'l1Loss')), options.reduction ?? 'mean', 'l1Loss');
}

/** F.mseLoss(input, target, { reduction = 'mean' }): (input - target)². */
export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  return reduce(square(difference(input, target, 'mseLoss')), options.reduction ?? 'mean', 'mseLoss');
}

/**
 * F.smoothL1Loss(input, target, { beta = 1, reduction = 'mean' }): 0.5 d² / beta where |d| < beta,
 * |d| - 0.5 beta elsewhere; beta 0 is the L1 loss.
 */
export function smoothL1Loss(
  input: Tensor,
  target: Tensor,
  options: { beta?: number; reduction?: Reduction } = {},
): Tensor {
  const op = 'smoothL1Loss';
  const { beta = 1, reduction = 'mean' } = options;
  if (!(beta >= 0)) throw new Error(`${op}: beta must be >= 0, got ${beta}`);
  const d = difference(input, target, op);
  const ad = abs(d);
  if (beta === 0) return reduce(ad, reduction, op);
  const loss = where(lt(ad, beta), mul(square(d), 0.5 / beta), sub(ad, 0.5 * beta));
  return reduce(loss, reduction, op);
}

/**
 * F.huberLoss(input, target, { delta = 1, reduction = 'mean' }): 0.5 d² where |d| < delta,
 * delta (|d| - 0.5 delta) elsewhere (smoothL1 scaled by delta).
 */
export function huberLoss(
  input: Tensor,
  target: Tensor,
  options: { delta?: number; reduction?: Reduction } = {},
): Tensor {
  const op = 'huberLoss';
  const { delta = 1, reduction = 'mean' } = options;
  if (!(delta > 0)) throw new Error(`${op}: delta must be > 0, got ${delta}`);
  const d = difference(input, target, op);
  const ad = abs(d);
  const loss = where(lt(ad, delta), mul(square(d), 0.5), mul(sub(ad, 0.5 * delta), delta));
  return reduce(loss, reduction, op);
}

/**
 * F.klDiv(input, target, { reduction = 'mean', logTarget = false }): input holds log-probabilities;
 * pointwise t (log t - input) with 0 log 0 = 0 (or exp(t) (t - input) when the target is in log
 * space). 'mean' averages over every element as torch does; 'batchmean' divides the sum by the batch
 * size, which is the mathematical KL divergence.
 */
export function klDiv(
  input: Tensor,
  target: Tensor,
  options: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {},
): Tensor {
  const op = 'klDiv';
  const { reduction = 'mean', logTarget = false } = options;
  checkFloat(input, op, 'input');
  checkFloat(target, op, 'target');
  checkSameShape(input, target, op);
  let loss: Tensor;
  if (logTarget) {
    loss = mul(exp(target), sub(target, input));
  } else {
    // log of 1 where t = 0 keeps both the value and the gradient of t log t finite there
    const positive = gt(target, 0);
    const tLogT = mul(target, log(where(positive, target, 1)));
    loss = sub(tLogT, mul(target, input));
  }
  if (reduction === 'batchmean') {
    const batch = input.ndim > 0 ? input.shape[0] : 1;
    return div(sum(loss), scalar(batch));
  }
  return reduce(loss, reduction, op);
}

/**
 * F.cosineSimilarity(x1, x2, { dim = 1, eps = 1e-8 }): Σ (x1 / max(‖x1‖, eps)) (x2 / max(‖x2‖, eps))
 * along dim, after broadcasting x1 and x2 (torch's formulation, which keeps the result in [-1, 1]).
 */
export function cosineSimilarity(
  x1: Tensor,
  x2: Tensor,
  options: { dim?: number; eps?: number } = {},
): Tensor {
  const op = 'cosineSimilarity';
  const { dim = 1, eps = 1e-8 } = options;
  checkFloat(x1, op, 'x1');
  checkFloat(x2, op, 'x2');
  const shape = broadcastShapes(x1.shape, x2.shape, op);
  const d = normalizeAxis(dim, shape.length, op);
  const a = normalize(shapesEqual(x1.shape, shape) ? x1 : expand(x1, shape), { dim: d, eps });
  const b = normalize(shapesEqual(x2.shape, shape) ? x2 : expand(x2, shape), { dim: d, eps });
  return sum(mul(a, b), d);
}
