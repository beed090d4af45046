/**
 * Mean attention distance (Dosovitskiy et al., "An Image is Worth 16x16 Words", Fig. 7 and
 * Appendix D.7): for each head, the attention-weighted Euclidean distance in pixels between a query
 * patch's center and the key patches' centers, averaged over queries and images. Early layers mix
 * heads that look locally and heads that look across the whole image; deep layers look globally.
 */
import type { Tensor } from '../tensor/tensor.js';
import { attentionDims, checkPrefix, resolveGrid } from './attention.js';

export interface DistanceOptions {
  /** The patch grid (gh, gw). Default: the square grid of the N - prefixTokens patch tokens. */
  gridSize?: readonly [number, number];
  /** Patch size in input pixels (the distance unit), one number or (height, width). */
  patchSize: number | readonly [number, number];
  /** Tokens before the patch tokens (class, distillation, registers); they are left out. Default 1. */
  prefixTokens?: number;
}

/** Distances in pixels between every pair of patch centers: (P, P), P = gh * gw. */
export function patchDistances(
  grid: readonly [number, number],
  patchSize: readonly [number, number],
): Float64Array {
  const [gh, gw] = grid;
  const [ph, pw] = patchSize;
  const p = gh * gw;
  const out = new Float64Array(p * p);
  for (let q = 0; q < p; q++) {
    const qy = Math.floor(q / gw);
    const qx = q % gw;
    for (let k = 0; k < p; k++) {
      const dy = (Math.floor(k / gw) - qy) * ph;
      const dx = ((k % gw) - qx) * pw;
      out[q * p + k] = Math.sqrt(dy * dy + dx * dx);
    }
  }
  return out;
}

/**
 * number[layer][head] in pixels: sum over patch keys of attn[b, h, q, k] * distance(q, k), with
 * q and k patch tokens only (prefix rows and columns dropped, rows not renormalized, as the code
 * used to reproduce Fig. 7 does), averaged over patch queries and images.
 */
export function meanAttentionDistance(attentions: readonly Tensor[], options: DistanceOptions): number[][] {
  const fn = 'meanAttentionDistance';
  const { batch, heads, tokens } = attentionDims(fn, attentions);
  const prefixTokens = options.prefixTokens ?? 1;
  checkPrefix(fn, prefixTokens, tokens);
  const patches = tokens - prefixTokens;
  const grid = resolveGrid(fn, patches, options.gridSize);
  const patchSize: [number, number] =
    typeof options?.patchSize === 'number'
      ? [options.patchSize, options.patchSize]
      : [options?.patchSize?.[0], options?.patchSize?.[1]];
  if (!patchSize.every((s) => Number.isFinite(s) && s > 0)) {
    throw new Error(
      `${fn}: patchSize ${JSON.stringify(options?.patchSize)} must be a positive number of pixels (16 for ViT-B/16)`,
    );
  }
  const dist = patchDistances(grid, patchSize);
  return attentions.map((attn) => {
    const a = attn.data as Float32Array;
    const perHead: number[] = [];
    for (let h = 0; h < heads; h++) {
      let total = 0;
      for (let b = 0; b < batch; b++) {
        const base = (b * heads + h) * tokens * tokens;
        for (let q = 0; q < patches; q++) {
          const row = base + (prefixTokens + q) * tokens + prefixTokens;
          const drow = q * patches;
          for (let k = 0; k < patches; k++) total += a[row + k] * dist[drow + k];
        }
      }
      perHead.push(total / (batch * patches));
    }
    return perHead;
  });
}
