/**
 * Normalization over the batch or channel groups (batchNorm, groupNorm, instanceNorm) and vector
 * normalization (normalize). batchNorm has its own kernels (a ResNet-50 forward runs 53 of them);
 * groupNorm rides on the layerNorm kernel over (N * groups) rows.
 */
import { kernels } from '../backend/backend.js';
import { noGrad, record } from '../tensor/autograd.js';
import { fmt, normalizeAxis, sizeOf } from '../tensor/shape.js';
import { emptyFloat32 } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { abs, add, clamp, div, mul, pow } from './elementwise.js';
import { layerNorm } from './normalization.js';
import { amax, sum } from './reduce.js';
import { reshape } from './shape.js';

export interface BatchNormOptions {
  /** Normalize with this batch's statistics (and update the running ones) rather than the running ones. */
  training?: boolean;
  momentum?: number;
  eps?: number;
}

function checkChannelTensor(x: Tensor, t: Tensor | null | undefined, op: string, name: string): void {
  const channels = x.shape[1];
  if (t && (t.size !== channels || t.ndim !== 1 || t.dtype !== 'float32')) {
    throw new Error(
      `${op}: input ${fmt(x.shape)} has ${channels} channels, so ${name} must be float32 [${channels}], got ${t.dtype} ${fmt(t.shape)}`,
    );
  }
}

/**
 * F.batchNorm(x, runningMean, runningVar, weight, bias, { training = false, momentum = 0.1, eps = 1e-5 })
 * on (N, C, ...) inputs. Training normalizes with the batch mean and biased variance and, when running
 * stats are given, updates them in place: r = (1 - momentum) r + momentum s with the unbiased variance
 * (as torch). Eval normalizes with the running stats. Differentiable wrt x, weight and bias.
 */
export function batchNorm(
  x: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  weight?: Tensor | null,
  bias?: Tensor | null,
  options: BatchNormOptions = {},
): Tensor {
  const op = 'batchNorm';
  const { training = false, momentum = 0.1, eps = 1e-5 } = options;
  if (x.dtype !== 'float32' || x.ndim < 2) {
    throw new Error(`${op}: expected a float32 (N, C, ...) input, got ${x.dtype} ${fmt(x.shape)}`);
  }
  const n = x.shape[0];
  const channels = x.shape[1];
  const spatial = sizeOf(x.shape.slice(2));
  checkChannelTensor(x, runningMean, op, 'runningMean');
  checkChannelTensor(x, runningVar, op, 'runningVar');
  checkChannelTensor(x, weight, op, 'weight');
  checkChannelTensor(x, bias, op, 'bias');
  if ((runningMean === null) !== (runningVar === null)) {
    throw new Error(`${op}: pass both runningMean and runningVar, or neither`);
  }
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  const k = kernels();
  if (training) {
    const count = n * spatial;
    if (count <= 1) {
      throw new Error(`${op}: training needs more than 1 value per channel, got input ${fmt(x.shape)}`);
    }
    k.batchNormStats(x.data as Float32Array, n, channels, spatial, mean, variance);
    if (runningMean && runningVar) {
      const rm = runningMean.data as Float32Array;
      const rv = runningVar.data as Float32Array;
      const unbias = count / (count - 1);
      for (let c = 0; c < channels; c++) {
        rm[c] = (1 - momentum) * rm[c] + momentum * mean[c];
        rv[c] = (1 - momentum) * rv[c] + momentum * variance[c] * unbias;
      }
    }
  } else {
    if (!runningMean || !runningVar) {
      throw new Error(`${op}: eval mode (training: false) needs runningMean and runningVar`);
    }
    mean.set(runningMean.data);
    variance.set(runningVar.data);
  }
  const invstd = new Float64Array(channels);
  const scale = new Float64Array(channels);
  const shift = new Float64Array(channels);
  const w = weight ? (weight.data as Float32Array) : null;
  const b = bias ? (bias.data as Float32Array) : null;
  for (let c = 0; c < channels; c++) {
    invstd[c] = 1 / Math.sqrt(variance[c] + eps);
    scale[c] = (w ? w[c] : 1) * invstd[c];
    shift[c] = (b ? b[c] : 0) - mean[c] * scale[c];
  }
  const out = emptyFloat32(x.size);
  k.batchNormForward(x.data as Float32Array, n, channels, spatial, scale, shift, out);
  const parents = [x, ...(weight ? [weight] : []), ...(bias ? [bias] : [])];
  return record(new Tensor(out, x.shape), op, parents, (g) => {
    const gx = emptyFloat32(x.size);
    const gw = weight?.requiresGrad ? new Float32Array(channels) : null;
    const gb = bias?.requiresGrad ? new Float32Array(channels) : null;
    kernels().batchNormBackward(
      x.data as Float32Array,
      g.data as Float32Array,
      n,
      channels,
      spatial,
      mean,
      invstd,
      w,
      training,
      gx,
      gw,
      gb,
    );
    const grads: Array<Tensor | null> = [new Tensor(gx, x.shape)];
    if (weight) grads.push(gw && new Tensor(gw, weight.shape));
    if (bias) grads.push(gb && new Tensor(gb, bias.shape));
    return grads;
  });
}

/** Per-channel affine y * weight + bias on (N, C, ...), weight/bias (C,) or null. */
function channelAffine(
  y: Tensor,
  weight: Tensor | null | undefined,
  bias: Tensor | null | undefined,
): Tensor {
  const view = [y.shape[1], ...y.shape.slice(2).map(() => 1)]; // (C, 1, ...)
  let out = y;
  if (weight) out = mul(out, reshape(weight, view));
  if (bias) out = add(out, reshape(bias, view));
  return out;
}

/**
 * F.groupNorm(x, numGroups, weight, bias, eps = 1e-5) on (N, C, ...): normalizes each group of
 * C / numGroups channels (with its spatial dims) per sample, then a per-channel affine.
 */
export function groupNorm(
  x: Tensor,
  numGroups: number,
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const op = 'groupNorm';
  if (x.dtype !== 'float32' || x.ndim < 2) {
    throw new Error(`${op}: expected a float32 (N, C, ...) input, got ${x.dtype} ${fmt(x.shape)}`);
  }
  const channels = x.shape[1];
  if (!Number.isInteger(numGroups) || numGroups <= 0 || channels % numGroups !== 0) {
    throw new Error(`${op}: ${channels} channels cannot be split into ${numGroups} groups`);
  }
  checkChannelTensor(x, weight, op, 'weight');
  checkChannelTensor(x, bias, op, 'bias');
  const cols = (channels / numGroups) * sizeOf(x.shape.slice(2));
  const rows = x.shape[0] * numGroups;
  const normalized = reshape(layerNorm(reshape(x, [rows, cols]), [cols], null, null, eps), x.shape);
  return channelAffine(normalized, weight, bias);
}

/**
 * F.instanceNorm(x, { weight, bias, eps = 1e-5 }) on (N, C, ...): each channel of each sample is
 * normalized over its spatial dims (torch's use_input_stats = true; running stats are not tracked).
 */
export function instanceNorm(
  x: Tensor,
  options: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {},
): Tensor {
  if (x.ndim < 3) throw new Error(`instanceNorm: expected (N, C, d1, ...) input, got ${fmt(x.shape)}`);
  return groupNorm(x, x.shape[1], options.weight, options.bias, options.eps ?? 1e-5);
}

/**
 * The Euclidean norm along `dim` (kept), with gradient x / ‖x‖ and 0 where the norm is 0 (where the
 * composed sqrt(Σx²) would give 0/0).
 */
function l2Norm(x: Tensor, dim: number): Tensor {
  const norm = noGrad(() => sum(mul(x, x), dim, true));
  const nd = norm.data as Float32Array;
  for (let i = 0; i < nd.length; i++) nd[i] = Math.sqrt(nd[i]);
  return record(norm, 'l2Norm', [x], (g) => {
    const safe = new Float32Array(nd.length);
    for (let i = 0; i < nd.length; i++) safe[i] = nd[i] > 0 ? 1 / nd[i] : 0;
    return [mul(x, mul(g, new Tensor(safe, norm.shape)))];
  });
}

/**
 * F.normalize(x, { p = 2, dim = 1, eps = 1e-12 }): x / max(‖x‖_p, eps) along dim. p is any
 * positive number or Infinity.
 */
export function normalize(x: Tensor, options: { p?: number; dim?: number; eps?: number } = {}): Tensor {
  const op = 'normalize';
  const { p = 2, eps = 1e-12 } = options;
  if (x.dtype !== 'float32') throw new Error(`${op}: expected a float32 input, got ${x.dtype}`);
  if (!(p > 0)) throw new Error(`${op}: p must be positive (or Infinity), got ${p}`);
  const dim = normalizeAxis(options.dim ?? 1, x.ndim, op);
  let norm: Tensor;
  if (p === 2) norm = l2Norm(x, dim);
  else if (p === 1) norm = sum(abs(x), dim, true);
  else if (p === Infinity) norm = amax(abs(x), dim, true);
  else norm = pow(sum(pow(abs(x), p), dim, true), 1 / p);
  return div(x, clamp(norm, eps));
}
