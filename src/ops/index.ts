/**
 * Every differentiable op. This module is the `F` namespace of the public API (PyTorch's functional
 * names in camelCase), and it installs the op table behind Tensor's methods.
 */
import { installTensorOps } from '../tensor/tensor.js';
import * as ew from './elementwise.js';
import { matmul } from './matmul.js';
import { logSoftmax, softmax } from './normalization.js';
import { argmax, max, mean, min, sum } from './reduce.js';
import { clone, expand, flatten, permute, reshape, slice, squeeze, transpose, unsqueeze } from './shape.js';

export {
  type AttentionResult,
  type ScaledDotProductAttentionOptions,
  scaledDotProductAttention,
} from './attention.js';
export {
  type ConvOptions,
  type ConvTransposeOptions,
  conv1d,
  conv2d,
  conv3d,
  convTranspose1d,
  convTranspose2d,
  convTranspose3d,
  fold,
  pixelShuffle,
  pixelUnshuffle,
  unfold,
} from './conv.js';
export * from './batch_norm.js';
export * from './creation.js';
export { type QkvAttentionOptions, qkvAttention } from './qkv_attention.js';
export { dropPath, dropout, embedding } from './dropout.js';
export {
  abs,
  add,
  atan2,
  cast,
  ceil,
  clamp,
  cos,
  div,
  eq,
  erf,
  exp,
  expm1,
  floor,
  ge,
  gelu,
  gt,
  le,
  leakyRelu,
  log,
  log1p,
  logicalAnd,
  logicalOr,
  lt,
  maskedFill,
  maximum,
  minimum,
  mul,
  ne,
  neg,
  pow,
  reciprocal,
  relu,
  remainder,
  round,
  rsqrt,
  sigmoid,
  sign,
  silu,
  sin,
  softplus,
  sqrt,
  square,
  sub,
  sumToShape,
  tanh,
  where,
} from './elementwise.js';
export * from './loss.js';
export * from './matmul.js';
export * from './normalization.js';
export {
  type AdaptiveSize,
  type AvgPoolOptions,
  adaptiveAvgPool1d,
  adaptiveAvgPool2d,
  adaptiveAvgPool3d,
  adaptiveMaxPool1d,
  adaptiveMaxPool2d,
  adaptiveMaxPool3d,
  avgPool1d,
  avgPool2d,
  avgPool3d,
  type MaxPoolOptions,
  maxPool1d,
  maxPool2d,
  maxPool3d,
} from './pool.js';
export * from './reduce.js';
export {
  affineGrid,
  type GridSampleOptions,
  gridSample,
  type InterpolateMode,
  type InterpolateOptions,
  interpolate,
} from './resample.js';
export * from './shape.js';

installTensorOps({
  add: ew.add,
  sub: ew.sub,
  mul: ew.mul,
  div: ew.div,
  pow: ew.pow,
  neg: ew.neg,
  exp: ew.exp,
  log: ew.log,
  sqrt: ew.sqrt,
  abs: ew.abs,
  tanh: ew.tanh,
  sigmoid: ew.sigmoid,
  relu: ew.relu,
  matmul,
  reshape,
  permute,
  transpose,
  sum,
  mean,
  max,
  min,
  argmax,
  softmax,
  logSoftmax,
  cast: ew.cast,
  expand,
  slice,
  flatten,
  squeeze,
  unsqueeze,
  clone,
});
