/** Dropout, stochastic depth (timm's drop_path) and embedding lookup. */
import { kernels } from '../backend/backend.js';
import { record } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { random } from './creation.js';
import { mul } from './elementwise.js';

function checkProbability(p: number, op: string): void {
  if (!(p >= 0 && p <= 1)) throw new Error(`${op}: probability must be in [0, 1], got ${p}`);
}

/**
 * torch's F.dropout: zeroes each element with probability p and scales the survivors by 1/(1-p),
 * drawing from the global generator (manualSeed). Identity when not training or p = 0.
 */
export function dropout(x: Tensor, p = 0.5, training = true): Tensor {
  checkProbability(p, 'dropout');
  if (!training || p === 0) return x;
  const keep = new Float32Array(x.size);
  if (p < 1) {
    const scale = 1 / (1 - p);
    for (let i = 0; i < keep.length; i++) keep[i] = random() < p ? 0 : scale;
  }
  return mul(x, new Tensor(keep, x.shape));
}

/**
 * timm's drop_path (stochastic depth): drops whole samples (dim 0) of a residual branch with
 * probability p, scaling the kept ones by 1/(1-p) when `scaleByKeep`. Identity when not training or p = 0.
 */
export function dropPath(x: Tensor, p = 0, training = false, scaleByKeep = true): Tensor {
  checkProbability(p, 'dropPath');
  if (!training || p === 0) return x;
  if (x.ndim === 0) throw new Error('dropPath: expected a tensor with a batch dim, got a scalar');
  const keepProb = 1 - p;
  const batch = x.shape[0];
  const keep = new Float32Array(batch);
  const kept = keepProb > 0 && scaleByKeep ? 1 / keepProb : 1;
  for (let b = 0; b < batch; b++) keep[b] = random() < keepProb ? kept : 0;
  // (B, 1, ..., 1) broadcasts over every other dim
  return mul(x, new Tensor(keep, [batch, ...new Array<number>(x.ndim - 1).fill(1)]));
}

/**
 * torch's F.embedding: rows of `weight` (num, dim) at integer `indices` → (...indices.shape, dim).
 * The row at `paddingIdx` receives no gradient.
 */
export function embedding(
  indices: Tensor,
  weight: Tensor,
  options: { paddingIdx?: number | null } = {},
): Tensor {
  if (indices.dtype !== 'int32' && indices.dtype !== 'int64') {
    throw new Error(
      `embedding: indices must be int32/int64, got ${indices.dtype}; cast them with .to('int64')`,
    );
  }
  if (weight.ndim !== 2 || weight.dtype !== 'float32') {
    throw new Error(
      `embedding: weight must be a float32 (num, dim) matrix, got ${weight.dtype} ${fmt(weight.shape)}`,
    );
  }
  const [num, dim] = weight.shape;
  for (let i = 0; i < indices.size; i++) {
    const v = indices.data[i];
    if (v < 0 || v >= num) throw new Error(`embedding: index ${v} out of range for ${num} embeddings`);
  }
  let pad = options.paddingIdx ?? null;
  if (pad !== null) {
    if (pad < -num || pad >= num)
      throw new Error(`embedding: paddingIdx ${pad} out of range for ${num} embeddings`);
    if (pad < 0) pad += num;
  }
  const out = new Float32Array(indices.size * dim);
  kernels().indexSelect(weight.data, 1, num, dim, indices.data, out);
  return record(new Tensor(out, [...indices.shape, dim]), 'embedding', [weight], (g) => {
    const gw = new Float32Array(weight.size);
    kernels().indexAdd(g.data as Float32Array, 1, num, dim, indices.data, gw);
    if (pad !== null) gw.fill(0, pad * dim, (pad + 1) * dim);
    return [new Tensor(gw, weight.shape)];
  });
}
