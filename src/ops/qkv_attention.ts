/**
 * Multi-head self-attention straight from a fused qkv projection: (B, N, 3 * C) in timm's layout
 * (q, k, v, each H heads of D = C / H) to the heads merged back into (B, N, C). One graph node
 * instead of reshape → permute → unbind → attention → transpose: the heads are gathered by strided
 * copies into the fused attention kernel's layout, and the backward writes one (B, N, 3 * C)
 * gradient instead of three full-size ones that would then be summed.
 */
import { kernels } from '../backend/backend.js';
import { isGradEnabled, record } from '../tensor/autograd.js';
import { emptyFloat32 } from '../tensor/dtype.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export interface QkvAttentionOptions {
  /** Defaults to 1/sqrt(D). */
  scale?: number;
}

/** qkv (B, N, 3 * C) → attention output with heads merged (B, N, C); no dropout, no mask. */
export function qkvAttention(qkv: Tensor, numHeads: number, options: QkvAttentionOptions = {}): Tensor {
  if (qkv.dtype !== 'float32' || qkv.ndim !== 3 || qkv.shape[2] % (3 * numHeads) !== 0) {
    throw new Error(
      `qkvAttention: expected float32 qkv (B, N, 3 * heads * D) for ${numHeads} heads, got ${qkv.dtype} ${fmt(qkv.shape)}`,
    );
  }
  const [B, N, C3] = qkv.shape;
  const C = C3 / 3;
  const H = numHeads;
  const D = C / H;
  const k = kernels();
  const headShape = [B, H, N, D];
  const headStrides = [H * N * D, N * D, D, 1];
  // Element (b, h, n, d) of q, k or v inside qkv (B, N, 3, H, D).
  const packedStrides = [N * C3, D, C3, 1];
  const gather = (offset: number) => {
    const out = emptyFloat32(B * N * C);
    k.copyStrided(qkv.data, offset, packedStrides, headShape, out, 0, headStrides);
    return out;
  };
  const recording = isGradEnabled() && qkv.requiresGrad;
  const args = {
    q: gather(0),
    k: gather(C),
    v: gather(2 * C),
    out: emptyFloat32(B * N * C),
    batch: B,
    heads: H,
    nq: N,
    nk: N,
    d: D,
    dv: D,
    scale: options.scale ?? 1 / Math.sqrt(D),
    // Kept for the backward, which then skips recomputing the scores.
    probs: recording ? emptyFloat32(B * H * N * N) : undefined,
  };
  k.attention(args);
  // (B, H, N, D) → (B, N, H, D) = (B, N, C)
  const mergedStrides = [N * C, D, C, 1];
  const merged = emptyFloat32(B * N * C);
  k.copyStrided(args.out, 0, headStrides, headShape, merged, 0, mergedStrides);
  return record(new Tensor(merged, [B, N, C]), 'qkvAttention', [qkv], (g) => {
    const gradOut = emptyFloat32(B * N * C);
    k.copyStrided(g.data, 0, mergedStrides, headShape, gradOut, 0, headStrides);
    const grads = {
      gq: emptyFloat32(B * N * C),
      gk: emptyFloat32(B * N * C),
      gv: emptyFloat32(B * N * C),
    };
    k.attentionBackward({ ...args, gradOut, ...grads });
    const gqkv = emptyFloat32(qkv.size);
    [grads.gq, grads.gk, grads.gv].forEach((src, i) => {
      k.copyStrided(src, 0, headStrides, headShape, gqkv, i * C, packedStrides);
    });
    return [new Tensor(gqkv, qkv.shape)];
  });
}
