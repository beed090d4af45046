/** The js reference backend: every kernel, the normative semantics for all other backends. */
import { binary, unary, unaryGrad, where } from './elementwise.js';
import { gemm } from './gemm.js';
import { copyStrided, gather, indexAdd, indexSelect, scatterAdd } from './layout.js';
import { layerNorm, layerNormBackward, softmax } from './normalization.js';
import { reduce } from './reduce.js';

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
  softmax,
  layerNorm,
  layerNormBackward,
};
