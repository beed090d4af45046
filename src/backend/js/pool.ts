/**
 * Pooling kernels over `planes` independent (D, H, W) planes (planes = batch * channels), with the
 * same three-spatial-dim Window as the conv kernels (1-D and 2-D pass leading size-1 dims).
 * Max pooling's backward is the existing `scatterAdd` kernel over the saved indices; adaptive
 * average pooling is separable and runs on `resampleAxis`.
 */
import type { Window } from './conv.js';

/**
 * Max pooling with torch semantics: padding never wins (it is -inf), NaN propagates, and indices hold
 * the flat position of the maximum inside its input plane (d * H * W + h * W + w). x (planes, D, H, W)
 * -> out and indices (planes, oD, oH, oW), fully written. Each window must overlap the input.
 */
export function maxPool(
  x: Float32Array,
  planes: number,
  win: Window,
  out: Float32Array,
  indices: Int32Array,
): void {
  const [D, H, W] = win.inSize;
  const [OD, OH, OW] = win.outSize;
  const [KD, KH, KW] = win.kernel;
  const [sd, sh, sw] = win.stride;
  const [pd, ph, pw] = win.padding;
  const [dd, dh, dw] = win.dilation;
  const inPlane = D * H * W;
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const xp = p * inPlane;
    for (let od = 0; od < OD; od++) {
      let d0 = od * sd - pd;
      while (d0 < 0) d0 += dd;
      for (let oh = 0; oh < OH; oh++) {
        let h0 = oh * sh - ph;
        while (h0 < 0) h0 += dh;
        for (let ow = 0; ow < OW; ow++, o++) {
          let w0 = ow * sw - pw;
          while (w0 < 0) w0 += dw;
          const dEnd = Math.min(od * sd - pd + (KD - 1) * dd + 1, D);
          const hEnd = Math.min(oh * sh - ph + (KH - 1) * dh + 1, H);
          const wEnd = Math.min(ow * sw - pw + (KW - 1) * dw + 1, W);
          // torch starts from the first in-bounds tap, so an all -inf window still has a valid index.
          let best = -Infinity;
          let bestIdx = (d0 * H + h0) * W + w0;
          for (let d = d0; d < dEnd; d += dd) {
            for (let h = h0; h < hEnd; h += dh) {
              const rowBase = (d * H + h) * W;
              for (let w = w0; w < wEnd; w += dw) {
                const v = x[xp + rowBase + w];
                if (v > best || v !== v) {
                  best = v;
                  bestIdx = rowBase + w;
                  if (v !== v) break;
                }
              }
              if (best !== best) break;
            }
            if (best !== best) break;
          }
          out[o] = best;
          indices[o] = bestIdx;
        }
      }
    }
  }
}

/**
 * Average pooling with torch semantics (no dilation: win.dilation is ignored). A window is clipped to
 * the padded input [-padding, inSize + padding); its divisor is `divisor` when > 0, else the clipped
 * window's size counting padding (countIncludePad) or only the in-bounds part. x (planes, D, H, W) ->
 * out (planes, oD, oH, oW), fully written.
 */
export function avgPool(
  x: Float32Array,
  planes: number,
  win: Window,
  countIncludePad: boolean,
  divisor: number,
  out: Float32Array,
): void {
  avgPoolApply(x, planes, win, countIncludePad, divisor, out, false);
}

/** The adjoint of avgPool: gx (planes, D, H, W) += pooled-window spreading of gy. */
export function avgPoolBackward(
  gy: Float32Array,
  planes: number,
  win: Window,
  countIncludePad: boolean,
  divisor: number,
  gx: Float32Array,
): void {
  avgPoolApply(gx, planes, win, countIncludePad, divisor, gy, true);
}

function avgPoolApply(
  x: Float32Array,
  planes: number,
  win: Window,
  countIncludePad: boolean,
  divisor: number,
  y: Float32Array,
  adjoint: boolean,
): void {
  const [D, H, W] = win.inSize;
  const [OD, OH, OW] = win.outSize;
  const [KD, KH, KW] = win.kernel;
  const [sd, sh, sw] = win.stride;
  const [pd, ph, pw] = win.padding;
  const inPlane = D * H * W;
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const xp = p * inPlane;
    for (let od = 0; od < OD; od++) {
      let d0 = od * sd - pd;
      let d1 = Math.min(d0 + KD, D + pd);
      const spanD = d1 - d0;
      d0 = Math.max(d0, 0);
      d1 = Math.min(d1, D);
      for (let oh = 0; oh < OH; oh++) {
        let h0 = oh * sh - ph;
        let h1 = Math.min(h0 + KH, H + ph);
        const spanH = h1 - h0;
        h0 = Math.max(h0, 0);
        h1 = Math.min(h1, H);
        for (let ow = 0; ow < OW; ow++, o++) {
          let w0 = ow * sw - pw;
          let w1 = Math.min(w0 + KW, W + pw);
          const spanW = w1 - w0;
          w0 = Math.max(w0, 0);
          w1 = Math.min(w1, W);
          if (d0 >= d1 || h0 >= h1 || w0 >= w1) {
            if (!adjoint) y[o] = 0;
            continue;
          }
          const div =
            divisor > 0
              ? divisor
              : countIncludePad
                ? spanD * spanH * spanW
                : (d1 - d0) * (h1 - h0) * (w1 - w0);
          if (adjoint) {
            const g = y[o] / div;
            for (let d = d0; d < d1; d++)
              for (let h = h0; h < h1; h++) {
                const base = xp + (d * H + h) * W;
                for (let w = w0; w < w1; w++) x[base + w] += g;
              }
          } else {
            let acc = 0;
            for (let d = d0; d < d1; d++)
              for (let h = h0; h < h1; h++) {
                const base = xp + (d * H + h) * W;
                for (let w = w0; w < w1; w++) acc += x[base + w];
              }
            y[o] = acc / div;
          }
        }
      }
    }
  }
}

/**
 * Adaptive max pooling: output cell o along a dim covers input [floor(o * in / out), ceil((o + 1) *
 * in / out)). inSize/outSize are (D, H, W). Writes out and flat in-plane indices like maxPool.
 */
export function adaptiveMaxPool(
  x: Float32Array,
  planes: number,
  inSize: readonly number[],
  outSize: readonly number[],
  out: Float32Array,
  indices: Int32Array,
): void {
  const [D, H, W] = inSize;
  const [OD, OH, OW] = outSize;
  const inPlane = D * H * W;
  let o = 0;
  for (let p = 0; p < planes; p++) {
    const xp = p * inPlane;
    for (let od = 0; od < OD; od++) {
      const d0 = Math.floor((od * D) / OD);
      const d1 = Math.ceil(((od + 1) * D) / OD);
      for (let oh = 0; oh < OH; oh++) {
        const h0 = Math.floor((oh * H) / OH);
        const h1 = Math.ceil(((oh + 1) * H) / OH);
        for (let ow = 0; ow < OW; ow++, o++) {
          const w0 = Math.floor((ow * W) / OW);
          const w1 = Math.ceil(((ow + 1) * W) / OW);
          let best = -Infinity;
          let bestIdx = (d0 * H + h0) * W + w0;
          for (let d = d0; d < d1 && best === best; d++) {
            for (let h = h0; h < h1 && best === best; h++) {
              const rowBase = (d * H + h) * W;
              for (let w = w0; w < w1; w++) {
                const v = x[xp + rowBase + w];
                if (v > best || v !== v) {
                  best = v;
                  bestIdx = rowBase + w;
                  if (v !== v) break;
                }
              }
            }
          }
          out[o] = best;
          indices[o] = bestIdx;
        }
      }
    }
  }
}
