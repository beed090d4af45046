/**
 * Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020).
 *
 * Per layer l the heads are fused (mean, max or min), optionally the lowest weights are discarded
 * (jacobgil/vit-explain's denoising, see `discardLowest`), the residual connection is added as
 * identity attention and rows are renormalized: A_l = rownorm((fuse(attn_l) + I) / 2). The joint
 * attention is the product R = A_L ... A_1: R[i, j] is how much of token i at the output is
 * token j at the input. Every A_l is row-stochastic, so every row of R sums to 1.
 */
import type { Tensor } from '../tensor/tensor.js';
import {
  chainProduct,
  firstMap,
  prepareTransitions,
  rowMaps,
  type TokenMaps,
  type TransitionOptions,
} from './attention.js';

export type RolloutOptions = TransitionOptions;

export interface RolloutResult extends TokenMaps {
  /** (B, N, N) joint attention R = A_L ... A_1 */
  matrix: Tensor;
}

export function attentionRollout(attentions: readonly Tensor[], options: RolloutOptions = {}): RolloutResult {
  const { batch, tokens, prefixTokens, grid, sources, transitions } = prepareTransitions(
    'attentionRollout',
    attentions,
    options,
  );
  const matrix = chainProduct(transitions, batch, tokens);
  const r = matrix.data as Float32Array;
  const maps = rowMaps(
    (b, q, k) => r[(b * tokens + q) * tokens + k],
    { batch, tokens, prefixTokens, grid },
    sources,
  );
  return { matrix, map: firstMap(maps), maps };
}
