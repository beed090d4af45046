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
  attentionDims,
  chainProduct,
  checkDiscardRatio,
  checkHeadFusion,
  checkPrefix,
  firstMap,
  type HeadFusion,
  resolveGrid,
  resolveSources,
  rowMaps,
  transitionMatrices,
} from './attention.js';

export interface RolloutOptions {
  /** How the heads of a layer are combined. Default 'mean'. */
  headFusion?: HeadFusion;
  /** Fraction in [0, 1) of the lowest fused weights set to zero per layer and image. Default 0. */
  discardRatio?: number;
  /** Tokens before the patch tokens: 1 for a class token, 2 for DeiT distilled, + registers. Default 1. */
  prefixTokens?: number;
  /**
   * The token(s) whose row becomes the map. Default: the class token (0), or the mean over all rows
   * when prefixTokens is 0. For DeiT distilled pass [0, 1] for the class and distillation tokens.
   */
  tokenIndex?: number | readonly number[];
  /** The patch grid (gh, gw). Default: the square grid of the N - prefixTokens patch tokens. */
  gridSize?: readonly [number, number];
}

export interface RolloutResult {
  /** (B, N, N) joint attention R = A_L ... A_1 */
  matrix: Tensor;
  /** (B, gh, gw) the first source token's row over the patch tokens, scaled to max 1 */
  map: Tensor;
  /** (B, T, gh, gw) one map per source token (T = 1 for the mean over rows) */
  maps: Tensor;
}

export function attentionRollout(attentions: readonly Tensor[], options: RolloutOptions = {}): RolloutResult {
  const fn = 'attentionRollout';
  const { batch, tokens } = attentionDims(fn, attentions);
  const headFusion = checkHeadFusion(fn, options.headFusion ?? 'mean');
  const discardRatio = options.discardRatio ?? 0;
  checkDiscardRatio(fn, discardRatio);
  const prefixTokens = options.prefixTokens ?? 1;
  checkPrefix(fn, prefixTokens, tokens);
  const grid = resolveGrid(fn, tokens - prefixTokens, options.gridSize);
  const sources = resolveSources(fn, options.tokenIndex, prefixTokens, tokens);

  const transitions = transitionMatrices(fn, attentions, { headFusion, discardRatio, prefixTokens });
  const matrix = chainProduct(transitions, batch, tokens);
  const r = matrix.data as Float32Array;
  const maps = rowMaps(
    (b, q, k) => r[(b * tokens + q) * tokens + k],
    { batch, tokens, prefixTokens, grid },
    sources,
  );
  return { matrix, map: firstMap(maps), maps };
}
