/**
 * Multi-head self-attention straight from a fused qkv projection: (B, N, 3 * C) in timm's layout
 * (q, k, v, each H heads of D = C / H) to the heads merged back into (B, N, C). One graph node and one
 * kernel (`qkvAttention`) instead of reshape → permute → unbind → attention → transpose, and the
 * backward writes one (B, N, 3 * C) gradient instead of three full-size ones that would then be summed.
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
  const headDim = C / numHeads;
  const shape = {
    qkv: qkv.data as Float32Array,
    batch: B,
    seq: N,
    heads: numHeads,
    headDim,
    scale: options.scale ?? 1 / Math.sqrt(headDim),
  };
  // Kept for the backward, which then skips recomputing the scores.
  const probs = isGradEnabled() && qkv.requiresGrad ? emptyFloat32(B * numHeads * N * N) : undefined;
  const out = emptyFloat32(B * N * C);
  kernels().qkvAttention({ ...shape, out, probs });
  return record(new Tensor(out, [B, N, C]), 'qkvAttention', [qkv], (g) => {
    const gqkv = emptyFloat32(qkv.size);
    kernels().qkvAttentionBackward({
      ...shape,
      probs: probs as Float32Array,
      gradOut: g.data as Float32Array,
      gqkv,
    });
    return [new Tensor(gqkv, qkv.shape)];
  });
}
