/**
 * Attention rollout for Swin (Liu et al. 2021), whose blocks attend inside windows.
 *
 * Each block's window attention (B*nW, heads, w*w, w*w) is fused, pruned and residual-augmented per
 * window exactly as in `attentionRollout`, then placed into the global token-to-token matrix of its
 * stage: window nW's local position p holds the token the cyclic shift moved there, so a block
 * shifted by s maps shifted coordinate (y', x') back to ((y' + s) mod H, (x' + s) mod W) (timm rolls
 * by -s before partitioning). Patch merging turns 2x2 tokens into one by a learned linear map of
 * their concatenation; without weights to split it, the merged token's row is the mean of its four
 * children's rows, which keeps every row a distribution over the first stage's tokens.
 *
 * The result R (B, N_last, N_0) says how much each last-stage token draws from each first-stage patch;
 * Swin classifies from the mean of its last-stage tokens, so the map is the mean of R's rows.
 */
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import {
  addResidualRowNormalize,
  checkDiscardRatio,
  checkHeadFusion,
  discardLowest,
  fuseHeads,
  type HeadFusion,
  scaleToMax,
} from './attention.js';

export interface SwinRolloutOptions {
  /** The first stage's patch grid (image size / patch size), e.g. [56, 56] for 224 px and patch 4. */
  gridSize: readonly [number, number];
  /** The configured window size (7 for swin_*_window7); a stage no larger than it is one window. */
  windowSize: number;
  /** Blocks per stage, e.g. [2, 2, 6, 2]; they must add up to the number of attention maps. */
  depths: readonly number[];
  headFusion?: HeadFusion;
  discardRatio?: number;
}

export interface SwinRolloutResult {
  /** (B, N_last, N_0): last-stage tokens over first-stage patches */
  matrix: Tensor;
  /** (B, gh, gw): the mean of R's rows on the first stage's grid, scaled to max 1 */
  map: Tensor;
}

/** The original token index at each (window, local position) of a block: (nW * w * w). */
function windowTokens(h: number, w: number, win: number, shift: number): Int32Array {
  const perRow = w / win;
  const nW = (h / win) * perRow;
  const out = new Int32Array(nW * win * win);
  for (let wi = 0; wi < nW; wi++) {
    const wy = Math.floor(wi / perRow);
    const wx = wi % perRow;
    for (let p = 0; p < win * win; p++) {
      const y = (wy * win + Math.floor(p / win) + shift) % h;
      const x = (wx * win + (p % win) + shift) % w;
      out[wi * win * win + p] = y * w + x;
    }
  }
  return out;
}

export function swinRollout(attentions: readonly Tensor[], options: SwinRolloutOptions): SwinRolloutResult {
  const fn = 'swinRollout';
  const { gridSize, windowSize, depths } = options;
  const headFusion = checkHeadFusion(fn, options.headFusion ?? 'mean');
  const discardRatio = options.discardRatio ?? 0;
  checkDiscardRatio(fn, discardRatio);
  const total = depths.reduce((a, b) => a + b, 0);
  if (!Array.isArray(attentions) || attentions.length !== total || total === 0) {
    throw new Error(
      `${fn}: depths [${depths}] need ${total} attention maps, got ${attentions?.length}; capture them with model.forward(x, { captureAttention: true })`,
    );
  }
  const [gh, gw] = gridSize;
  if (!(Number.isInteger(windowSize) && windowSize > 0)) {
    throw new Error(`${fn}: windowSize ${windowSize} must be a positive integer`);
  }
  if (!(gh > 0 && gw > 0) || gh % 2 ** (depths.length - 1) !== 0 || gw % 2 ** (depths.length - 1) !== 0) {
    throw new Error(
      `${fn}: gridSize [${gridSize}] must halve evenly ${depths.length - 1} times for ${depths.length} stages`,
    );
  }
  const n0 = gh * gw;
  const first = attentions[0];
  const win0 = Math.min(gh, gw, windowSize);
  const batch = first.shape[0] / ((gh / win0) * (gw / win0));
  if (first.ndim !== 4 || !Number.isInteger(batch)) {
    throw new Error(
      `${fn}: attention 0 ${fmt(first.shape)} is not (B*windows, heads, ${win0 * win0}, ${win0 * win0}) for a ${gh}x${gw} grid`,
    );
  }

  // R per image: (tokens of the current stage, n0), starting as the identity.
  let h = gh;
  let w = gw;
  let rows: Float32Array[] = Array.from({ length: batch }, () => {
    const r = new Float32Array(n0 * n0);
    for (let i = 0; i < n0; i++) r[i * n0 + i] = 1;
    return r;
  });
  let layer = 0;
  depths.forEach((depth, stage) => {
    if (stage > 0) {
      rows = rows.map((r) => mergeRows(r, h, w, n0));
      h /= 2;
      w /= 2;
    }
    const small = Math.min(h, w) <= windowSize;
    const win = Math.min(h, w, windowSize);
    const tokensPerWindow = win * win;
    const nW = (h / win) * (w / win);
    for (let j = 0; j < depth; j++, layer++) {
      const attn = attentions[layer];
      const expected = [batch * nW, attn.shape[1], tokensPerWindow, tokensPerWindow];
      if (attn.ndim !== 4 || attn.dtype !== 'float32' || expected.some((s, i) => s !== attn.shape[i])) {
        throw new Error(
          `${fn}: attention ${layer} (stage ${stage}, ${h}x${w} tokens, window ${win}) should be ${fmt(expected)}, got ${fmt(attn.shape)}; check gridSize, windowSize and depths`,
        );
      }
      const shift = small || j % 2 === 0 ? 0 : Math.floor(windowSize / 2);
      const fused = fuseHeads(attn, headFusion); // (B*nW, T, T)
      if (discardRatio > 0) {
        for (let m = 0; m < batch * nW; m++) {
          discardLowest(fused, m * tokensPerWindow * tokensPerWindow, tokensPerWindow, discardRatio, 0);
        }
      }
      addResidualRowNormalize(fused, tokensPerWindow);
      const index = windowTokens(h, w, win, shift);
      rows = rows.map((r, b) => applyWindows(r, fused, b * nW, nW, tokensPerWindow, index, n0));
    }
  });

  const last = h * w;
  const matrix = new Float32Array(batch * last * n0);
  const map = new Float32Array(batch * n0);
  rows.forEach((r, b) => {
    matrix.set(r, b * last * n0);
    for (let q = 0; q < last; q++) for (let k = 0; k < n0; k++) map[b * n0 + k] += r[q * n0 + k] / last;
    scaleToMax(map, b * n0, n0);
  });
  return { matrix: new Tensor(matrix, [batch, last, n0]), map: new Tensor(map, [batch, gh, gw]) };
}

/** R_new[g(q)] = sum_k A_window[q, k] R[g(k)] for every window of one image. */
function applyWindows(
  r: Float32Array,
  fused: Float64Array,
  windowOffset: number,
  nW: number,
  t: number,
  index: Int32Array,
  n0: number,
): Float32Array {
  const out = new Float32Array(r.length);
  const acc = new Float64Array(n0);
  for (let wi = 0; wi < nW; wi++) {
    const a = (windowOffset + wi) * t * t;
    for (let q = 0; q < t; q++) {
      acc.fill(0);
      for (let k = 0; k < t; k++) {
        const weight = fused[a + q * t + k];
        if (weight === 0) continue;
        const src = index[wi * t + k] * n0;
        for (let c = 0; c < n0; c++) acc[c] += weight * r[src + c];
      }
      out.set(acc, index[wi * t + q] * n0);
    }
  }
  return out;
}

/** Patch merging on rows: token (i, j) of the halved grid is the mean of tokens (2i + a, 2j + b). */
function mergeRows(r: Float32Array, h: number, w: number, n0: number): Float32Array {
  const h2 = h / 2;
  const w2 = w / 2;
  const out = new Float32Array(h2 * w2 * n0);
  for (let i = 0; i < h2; i++) {
    for (let j = 0; j < w2; j++) {
      const dst = (i * w2 + j) * n0;
      for (const [a, b] of [
        [0, 0],
        [1, 0],
        [0, 1],
        [1, 1],
      ]) {
        const src = ((2 * i + a) * w + 2 * j + b) * n0;
        for (let c = 0; c < n0; c++) out[dst + c] += r[src + c] / 4;
      }
    }
  }
  return out;
}
