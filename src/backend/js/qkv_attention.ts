/**
 * Multi-head self-attention on a fused qkv projection, the layout timm's ViT produces: qkv (B, N, 3, H,
 * D) row-major (q, k, v, each H heads of D), output (B, N, H, D), the heads merged back. Defined as
 * gathering the heads into (B, H, N, D), the `attention` kernel, and merging: the same semantics
 * (scale, max-subtracted softmax, fully masked rows impossible here), with no mask, no causality.
 */
import { attention, attentionBackward } from './attention.js';
import { copyStrided } from './layout.js';

export interface QkvAttentionArgs {
  qkv: Float32Array; // (B, N, 3, H, D)
  batch: number;
  seq: number;
  heads: number;
  headDim: number;
  scale: number;
  /** (B, N, H, D), written. */
  out: Float32Array;
  /** (B, H, N, N): the probabilities, written when given (the backward needs them). */
  probs?: Float32Array;
}

export interface QkvAttentionBackwardArgs extends Omit<QkvAttentionArgs, 'out' | 'probs'> {
  /** The probabilities the forward wrote. */
  probs: Float32Array;
  /** (B, N, H, D): gradient of the loss wrt the output. */
  gradOut: Float32Array;
  /** (B, N, 3, H, D): written (overwritten) with the gradient wrt qkv. */
  gqkv: Float32Array;
}

/** Strides of (b, h, n, d) inside qkv's q, k or v part, inside the merged output, and head-major. */
function layouts(B: number, N: number, H: number, D: number) {
  const C = H * D;
  return {
    shape: [B, H, N, D],
    packed: [N * 3 * C, D, 3 * C, 1],
    merged: [N * C, D, C, 1],
    headMajor: [H * N * D, N * D, D, 1],
    C,
  };
}

export function qkvAttention(args: QkvAttentionArgs): void {
  const { qkv, batch: B, seq: N, heads: H, headDim: D } = args;
  const { shape, packed, merged, headMajor, C } = layouts(B, N, H, D);
  const part = (which: number) => {
    const t = new Float32Array(B * N * C);
    copyStrided(qkv, which * C, packed, shape, t, 0, headMajor);
    return t;
  };
  const out = new Float32Array(B * N * C);
  attention({
    q: part(0),
    k: part(1),
    v: part(2),
    out,
    batch: B,
    heads: H,
    nq: N,
    nk: N,
    d: D,
    dv: D,
    scale: args.scale,
    probs: args.probs,
  });
  copyStrided(out, 0, headMajor, shape, args.out, 0, merged);
}

export function qkvAttentionBackward(args: QkvAttentionBackwardArgs): void {
  const { qkv, batch: B, seq: N, heads: H, headDim: D } = args;
  const { shape, packed, merged, headMajor, C } = layouts(B, N, H, D);
  const part = (which: number) => {
    const t = new Float32Array(B * N * C);
    copyStrided(qkv, which * C, packed, shape, t, 0, headMajor);
    return t;
  };
  const gradOut = new Float32Array(B * N * C);
  copyStrided(args.gradOut, 0, merged, shape, gradOut, 0, headMajor);
  const grads = [new Float32Array(B * N * C), new Float32Array(B * N * C), new Float32Array(B * N * C)];
  attentionBackward({
    q: part(0),
    k: part(1),
    v: part(2),
    out: new Float32Array(0),
    batch: B,
    heads: H,
    nq: N,
    nk: N,
    d: D,
    dv: D,
    scale: args.scale,
    probs: args.probs,
    gradOut,
    gq: grads[0],
    gk: grads[1],
    gv: grads[2],
  });
  grads.forEach((g, which) => {
    copyStrided(g, 0, headMajor, shape, args.gqkv, which * C, packed);
  });
}
