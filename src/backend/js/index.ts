/** The js reference backend: every kernel, the normative semantics for all other backends. */
import { attention, attentionBackward } from './attention.js';
import { batchNormBackward, batchNormForward, batchNormStats } from './batch_norm.js';
import { col2im, col2imBatch, depthwiseConv, depthwiseConvBackward, im2col, im2colBatch } from './conv.js';
import { binary, unary, unaryGrad, where } from './elementwise.js';
import { gemm } from './gemm.js';
import { copyStrided, gather, indexAdd, indexSelect, scatterAdd } from './layout.js';
import { crossEntropy, crossEntropyBackward } from './loss.js';
import { layerNorm, layerNormBackward, softmax } from './normalization.js';
import { adamUpdate, sumOfSquares } from './optim.js';
import { qkvAttention, qkvAttentionBackward } from './qkv_attention.js';
import { adaptiveMaxPool, avgPool, avgPoolBackward, maxPool } from './pool.js';
import { reduce } from './reduce.js';
import { gridSample2d, gridSample2dBackward, resampleAxis, resampleAxisBackward } from './resample.js';

export const jsKernels = {
  unary,
  unaryGrad,
  binary,
  where,
  reduce,
  gemm,
  copyStrided,
  indexSelect,
  indexAdd,
  gather,
  scatterAdd,
  attention,
  attentionBackward,
  qkvAttention,
  qkvAttentionBackward,
  adamUpdate,
  sumOfSquares,
  softmax,
  layerNorm,
  layerNormBackward,
  batchNormStats,
  batchNormForward,
  batchNormBackward,
  crossEntropy,
  crossEntropyBackward,
  im2col,
  col2im,
  im2colBatch,
  col2imBatch,
  depthwiseConv,
  depthwiseConvBackward,
  maxPool,
  avgPool,
  avgPoolBackward,
  adaptiveMaxPool,
  resampleAxis,
  resampleAxisBackward,
  gridSample2d,
  gridSample2dBackward,
};
