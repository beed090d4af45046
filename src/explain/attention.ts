/**
 * What every explainer does first with captured attention: check the list of per-layer tensors,
 * fuse the heads, optionally discard the weakest weights, add the residual path and renormalize rows
 * (Abnar & Zuidema 2020), and turn a row over patch tokens into a map on the patch grid.
 */
import { matmul } from '../ops/matmul.js';
import { noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export type HeadFusion = 'mean' | 'max' | 'min';

/** The sizes shared by every layer of a captured attention list. */
export interface AttentionDims {
  layers: number;
  batch: number;
  heads: number;
  /** tokens, prefix (class/distillation/register) tokens included */
  tokens: number;
}

/** Checks that `attentions` is a non-empty list of (B, heads, N, N) float tensors of one shape. */
export function attentionDims(fn: string, attentions: readonly Tensor[]): AttentionDims {
  if (!Array.isArray(attentions) || attentions.length === 0) {
    throw new Error(
      `${fn}: expected a non-empty list of per-layer attention tensors (B, heads, N, N); capture them with model.forward(x, { captureAttention: true })`,
    );
  }
  const first = attentions[0];
  attentions.forEach((a, l) => {
    if (!(a instanceof Tensor) || a.ndim !== 4 || a.shape[2] !== a.shape[3] || a.dtype !== 'float32') {
      const got = a instanceof Tensor ? `${a.dtype} ${fmt(a.shape)}` : typeof a;
      throw new Error(`${fn}: attention ${l} must be a float32 (B, heads, N, N) tensor, got ${got}`);
    }
    if (a.shape.some((s, i) => s !== first.shape[i])) {
      throw new Error(
        `${fn}: attention ${l} has shape ${fmt(a.shape)} but attention 0 has ${fmt(first.shape)}; every layer must share (B, heads, N, N) (Swin's windowed maps need expanding first)`,
      );
    }
  });
  const [batch, heads, tokens] = first.shape;
  return { layers: attentions.length, batch, heads, tokens };
}

/** Throws unless 0 <= prefixTokens < tokens. */
export function checkPrefix(fn: string, prefixTokens: number, tokens: number): void {
  if (!Number.isInteger(prefixTokens) || prefixTokens < 0 || prefixTokens >= tokens) {
    throw new Error(
      `${fn}: prefixTokens ${prefixTokens} must be an integer in [0, ${tokens - 1}] for ${tokens} tokens (1 for a class token, 2 for DeiT's class + distillation tokens, plus any registers)`,
    );
  }
}

/** The patch grid (gh, gw): the given one (checked against the token count), else the square one. */
export function resolveGrid(
  fn: string,
  patches: number,
  gridSize?: readonly [number, number],
): [number, number] {
  if (gridSize) {
    const [gh, gw] = gridSize;
    if (!(Number.isInteger(gh) && Number.isInteger(gw) && gh > 0 && gw > 0) || gh * gw !== patches) {
      throw new Error(`${fn}: gridSize [${gridSize}] does not hold the ${patches} patch tokens`);
    }
    return [gh, gw];
  }
  const side = Math.round(Math.sqrt(patches));
  if (side * side !== patches) {
    throw new Error(
      `${fn}: ${patches} patch tokens do not form a square grid; pass gridSize: [gh, gw] (or fix prefixTokens)`,
    );
  }
  return [side, side];
}

/**
 * The query rows a map is read from: the given token indices, or `'mean'` (the mean over all rows);
 * by default the class token (0) when there are prefix tokens and the mean when there are none.
 */
export function resolveSources(
  fn: string,
  tokenIndex: number | readonly number[] | 'mean' | undefined,
  prefixTokens: number,
  tokens: number,
): number[] | 'mean' {
  if (tokenIndex === undefined) return prefixTokens > 0 ? [0] : 'mean';
  if (tokenIndex === 'mean') return 'mean';
  const list = typeof tokenIndex === 'number' ? [tokenIndex] : [...tokenIndex];
  if (list.length === 0) throw new Error(`${fn}: tokenIndex is an empty list; give at least one token`);
  for (const t of list) {
    if (!Number.isInteger(t) || t < 0 || t >= tokens) {
      throw new Error(`${fn}: tokenIndex ${t} is outside the ${tokens} tokens`);
    }
  }
  return list;
}

/** Fuses the heads of one layer: (B, heads, N, N) -> (B, N, N) by mean, max or min over heads. */
export function fuseHeads(attn: Tensor, fusion: HeadFusion): Float64Array {
  const [batch, heads, n] = attn.shape;
  const nn = n * n;
  const src = attn.data as Float32Array;
  const out = new Float64Array(batch * nn);
  for (let b = 0; b < batch; b++) {
    const o = b * nn;
    for (let h = 0; h < heads; h++) {
      const s = (b * heads + h) * nn;
      for (let i = 0; i < nn; i++) {
        const v = src[s + i];
        if (h === 0) out[o + i] = v;
        else if (fusion === 'mean') out[o + i] += v;
        else if (fusion === 'max') out[o + i] = Math.max(v, out[o + i]);
        else out[o + i] = Math.min(v, out[o + i]);
      }
    }
    if (fusion === 'mean') for (let i = 0; i < nn; i++) out[o + i] /= heads;
  }
  return out;
}

/**
 * Zeroes the `floor(ratio * N * N)` smallest weights of one fused (N, N) matrix, except those in the
 * prefix tokens' columns (attention paid to the class/distillation/register tokens).
 *
 * This is jacobgil/vit-explain's rule: rank all N*N fused weights (ascending, ties by position, as a
 * stable `topk(largest=False)`), take the lowest fraction and spare the class token. vit-explain
 * spares only the flat index 0, i.e. the entry (cls, cls); we spare the whole column of every prefix
 * token, so no query ever loses its path to the class token. The spared entries still count towards
 * the `floor(ratio * N * N)`, so fewer than that may be zeroed.
 */
export function discardLowest(
  fused: Float64Array,
  offset: number,
  n: number,
  ratio: number,
  prefix: number,
): void {
  const nn = n * n;
  const count = Math.floor(ratio * nn);
  if (count <= 0) return;
  const order = new Uint32Array(nn);
  for (let i = 0; i < nn; i++) order[i] = i;
  order.sort((x, y) => fused[offset + x] - fused[offset + y] || x - y);
  for (let r = 0; r < count; r++) {
    const idx = order[r];
    if (idx % n >= prefix) fused[offset + idx] = 0;
  }
}

/** A = rownorm((W + I) / 2) in place for each (N, N) block: the residual connection as identity attention. */
export function addResidualRowNormalize(fused: Float64Array, n: number): void {
  const nn = n * n;
  for (let o = 0; o < fused.length; o += nn) {
    for (let i = 0; i < n; i++) {
      const row = o + i * n;
      fused[row + i] += 1;
      let total = 0;
      for (let k = 0; k < n; k++) {
        fused[row + k] *= 0.5;
        total += fused[row + k];
      }
      // total >= 0.5 because the diagonal carries at least the residual's half.
      for (let k = 0; k < n; k++) fused[row + k] /= total;
    }
  }
}

export function checkHeadFusion(fn: string, fusion: string): HeadFusion {
  if (fusion !== 'mean' && fusion !== 'max' && fusion !== 'min') {
    throw new Error(`${fn}: headFusion '${fusion}' is not one of mean, max, min`);
  }
  return fusion;
}

export function checkDiscardRatio(fn: string, ratio: number): void {
  if (!(ratio >= 0 && ratio < 1)) {
    throw new Error(`${fn}: discardRatio ${ratio} must be in [0, 1) (0.9 drops the lowest 90% of weights)`);
  }
}

/** Where the maps are read: which tokens are not patches, which rows, on which grid. */
export interface MapOptions {
  /** Tokens before the patch tokens: 1 for a class token, 2 for DeiT distilled, + registers. Default 1. */
  prefixTokens?: number;
  /**
   * The token(s) whose maps are made, or 'mean' for all rows together (models without a class
   * token). Default: the class token (0), or 'mean' when prefixTokens is 0. For DeiT distilled pass
   * [0, 1] for the class and distillation tokens.
   */
  tokenIndex?: number | readonly number[] | 'mean';
  /** The patch grid (gh, gw). Default: the square grid of the N - prefixTokens patch tokens. */
  gridSize?: readonly [number, number];
}

/** The options rollout and flow share: how layers become transition matrices, and the maps. */
export interface TransitionOptions extends MapOptions {
  /** How the heads of a layer are combined. Default 'mean'. */
  headFusion?: HeadFusion;
  /** Fraction in [0, 1) of the lowest fused weights set to zero per layer and image. Default 0. */
  discardRatio?: number;
}

/** Maps on the patch grid, each scaled to max 1. */
export interface TokenMaps {
  /** (B, gh, gw) the first source token's map */
  map: Tensor;
  /** (B, T, gh, gw) one map per source token (T = 1 without a class token) */
  maps: Tensor;
}

/** Checks the attention and the options and computes the transition matrices (one per layer). */
export function prepareTransitions(fn: string, attentions: readonly Tensor[], options: TransitionOptions) {
  const dims = attentionDims(fn, attentions);
  const headFusion = checkHeadFusion(fn, options.headFusion ?? 'mean');
  const discardRatio = options.discardRatio ?? 0;
  checkDiscardRatio(fn, discardRatio);
  const where = resolveMapOptions(fn, dims.tokens, options);
  const transitions = transitionMatrices(fn, attentions, {
    headFusion,
    discardRatio,
    prefixTokens: where.prefixTokens,
  });
  return { ...dims, ...where, transitions };
}

/** MapOptions checked against the token count, defaults filled in. */
export function resolveMapOptions(fn: string, tokens: number, options: MapOptions) {
  const prefixTokens = options.prefixTokens ?? 1;
  checkPrefix(fn, prefixTokens, tokens);
  const grid = resolveGrid(fn, tokens - prefixTokens, options.gridSize);
  const sources = resolveSources(fn, options.tokenIndex, prefixTokens, tokens);
  return { prefixTokens, grid, sources };
}

/**
 * The per-layer transition matrices of Abnar & Zuidema: heads fused, the lowest weights discarded,
 * the residual added and rows renormalized. Returns one (B, N, N) Float64Array per layer.
 */
export function transitionMatrices(
  fn: string,
  attentions: readonly Tensor[],
  options: { headFusion: HeadFusion; discardRatio: number; prefixTokens: number },
): Float64Array[] {
  const { batch, tokens } = attentionDims(fn, attentions);
  return attentions.map((attn) => {
    const fused = fuseHeads(attn, options.headFusion);
    if (options.discardRatio > 0) {
      for (let b = 0; b < batch; b++) {
        discardLowest(fused, b * tokens * tokens, tokens, options.discardRatio, options.prefixTokens);
      }
    }
    addResidualRowNormalize(fused, tokens);
    return fused;
  });
}

/** The product M_L ... M_1 of per-layer (B, N, N) matrices, batched: (B, N, N) float32. */
export function chainProduct(perLayer: readonly Float64Array[], batch: number, tokens: number): Tensor {
  return noGrad(() => {
    let joint: Tensor | null = null;
    for (const m of perLayer) {
      const layer = new Tensor(Float32Array.from(m), [batch, tokens, tokens]);
      joint = joint ? matmul(layer, joint) : layer; // (B, N, N)
    }
    return joint as Tensor;
  });
}

/**
 * Maps from a (B, N, N)-shaped row source: for each image and source token the row over the patch
 * tokens (or the mean of all rows), reshaped to the grid and scaled to max 1. Returns (B, T, gh, gw).
 */
export function rowMaps(
  rows: (b: number, token: number, key: number) => number,
  dims: { batch: number; tokens: number; prefixTokens: number; grid: [number, number] },
  sources: number[] | 'mean',
): Tensor {
  const { batch, tokens, prefixTokens, grid } = dims;
  const patches = tokens - prefixTokens;
  const t = sources === 'mean' ? 1 : sources.length;
  const out = new Float32Array(batch * t * patches);
  for (let b = 0; b < batch; b++) {
    for (let s = 0; s < t; s++) {
      const o = (b * t + s) * patches;
      for (let p = 0; p < patches; p++) {
        const key = prefixTokens + p;
        if (sources === 'mean') {
          let acc = 0;
          for (let q = 0; q < tokens; q++) acc += rows(b, q, key);
          out[o + p] = acc / tokens;
        } else {
          out[o + p] = rows(b, sources[s], key);
        }
      }
      scaleToMax(out, o, patches);
    }
  }
  return new Tensor(out, [batch, t, grid[0], grid[1]]);
}

/** Divides a segment by its maximum (left alone when the maximum is not positive). */
export function scaleToMax(values: Float32Array, offset: number, length: number): void {
  let max = 0;
  for (let i = 0; i < length; i++) max = Math.max(max, values[offset + i]);
  if (max > 0) for (let i = 0; i < length; i++) values[offset + i] /= max;
}

/** The first source's maps: (B, T, gh, gw) -> (B, gh, gw). */
export function firstMap(maps: Tensor): Tensor {
  const [batch, t, gh, gw] = maps.shape;
  const plane = gh * gw;
  const out = new Float32Array(batch * plane);
  const src = maps.data as Float32Array;
  for (let b = 0; b < batch; b++) out.set(src.subarray(b * t * plane, b * t * plane + plane), b * plane);
  return new Tensor(out, [batch, gh, gw]);
}
