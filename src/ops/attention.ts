/**
 * F.scaledDotProductAttention with torch's semantics. The fast path runs the fused `attention`
 * kernel (its backward kernel beside it); the composed path (matmul, softmax, dropout, matmul) runs
 * when dropout is on, when the probabilities are asked for while recording the graph (so that they
 * are a node of the graph whose gradient a caller can retain: gradient-weighted attention maps), and
 * when a float mask requires grad (a learned bias such as Swin's relative position bias).
 */
import { kernels } from '../backend/backend.js';
import { isGradEnabled, noGrad, record } from '../tensor/autograd.js';
import { emptyFloat32 } from '../tensor/dtype.js';
import { broadcastShapes, broadcastStrides, fmt, shapesEqual, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { dropout } from './dropout.js';
import { add, mul, where } from './elementwise.js';
import { matmul } from './matmul.js';
import { softmax } from './normalization.js';
import { expand, transpose } from './shape.js';

export interface ScaledDotProductAttentionOptions {
  /**
   * Broadcastable to (..., Nq, Nk). bool: true = take part in attention (torch's SDPA convention);
   * float: added to the scores (-inf excludes), and differentiable when it requires grad.
   */
  attnMask?: Tensor | null;
  /** Dropout on the probabilities (applied whenever > 0, as torch's F.scaled_dot_product_attention). */
  dropoutP?: number;
  /** Top-left aligned causal mask: query i sees keys j <= i. Combines with attnMask when both are given. */
  isCausal?: boolean;
  /** Defaults to 1/sqrt(D). */
  scale?: number;
  /** Also return the post-softmax probabilities (..., Nq, Nk), taken before dropout. */
  returnProbs?: boolean;
}

export interface AttentionResult {
  output: Tensor;
  probs: Tensor;
}

/** (nq, nk) additive mask: -inf where key j comes after query i (j > i), 0 elsewhere. */
export function causalMask(nq: number, nk: number = nq): Tensor {
  const data = new Float32Array(nq * nk);
  for (let i = 0; i < nq; i++) data.fill(-Infinity, i * nk + Math.min(i + 1, nk), (i + 1) * nk);
  return new Tensor(data, [nq, nk]);
}

/** bool (true = keep) becomes 0 / -inf; float masks pass through. */
function additiveMask(mask: Tensor, op: string): Tensor {
  if (mask.dtype === 'bool') {
    const data = new Float32Array(mask.size);
    for (let i = 0; i < data.length; i++) if (mask.data[i] === 0) data[i] = -Infinity;
    return new Tensor(data, mask.shape);
  }
  if (mask.dtype !== 'float32') {
    throw new Error(`${op}: attnMask must be bool (true = attend) or float (additive), got ${mask.dtype}`);
  }
  return mask;
}

/**
 * Attention over the last two dims: q (..., Nq, D), k (..., Nk, D), v (..., Nk, Dv) → (..., Nq, Dv).
 * Leading dims broadcast. A query whose keys are all masked gets zero probabilities and a zero output
 * (torch's SDPA since 2.5; plain softmax would give NaN).
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: ScaledDotProductAttentionOptions & { returnProbs: true },
): AttentionResult;
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options?: ScaledDotProductAttentionOptions,
): Tensor;
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: ScaledDotProductAttentionOptions = {},
): Tensor | AttentionResult {
  const op = 'scaledDotProductAttention';
  for (const [name, t] of [
    ['query', q],
    ['key', k],
    ['value', v],
  ] as const) {
    if (t.dtype !== 'float32' || t.ndim < 2) {
      throw new Error(`${op}: ${name} must be float32 with at least 2 dims, got ${t.dtype} ${fmt(t.shape)}`);
    }
  }
  const [nq, d] = q.shape.slice(-2);
  const [nk, dk] = k.shape.slice(-2);
  const [nv, dv] = v.shape.slice(-2);
  if (dk !== d || nv !== nk) {
    throw new Error(
      `${op}: expected q (..., Nq, D), k (..., Nk, D), v (..., Nk, Dv); got ${fmt(q.shape)}, ${fmt(k.shape)}, ${fmt(v.shape)}`,
    );
  }
  const lead = broadcastShapes(
    broadcastShapes(q.shape.slice(0, -2), k.shape.slice(0, -2), op),
    v.shape.slice(0, -2),
    op,
  );
  const qf = shapesEqual(q.shape.slice(0, -2), lead) ? q : expand(q, [...lead, nq, d]);
  const kf = shapesEqual(k.shape.slice(0, -2), lead) ? k : expand(k, [...lead, nk, d]);
  const vf = shapesEqual(v.shape.slice(0, -2), lead) ? v : expand(v, [...lead, nk, dv]);
  const scale = options.scale ?? 1 / Math.sqrt(d);
  const dropoutP = options.dropoutP ?? 0;
  const scoresShape = [...lead, nq, nk];
  let mask: Tensor | null = null;
  if (options.attnMask) {
    mask = additiveMask(options.attnMask, op);
    const lag = scoresShape.length - mask.ndim;
    if (lag < 0 || mask.shape.some((s, i) => s !== 1 && s !== scoresShape[i + lag])) {
      throw new Error(
        `${op}: attnMask ${fmt(mask.shape)} does not broadcast to the scores ${fmt(scoresShape)}`,
      );
    }
  }
  const grad = isGradEnabled();
  const recording = grad && (q.requiresGrad || k.requiresGrad || v.requiresGrad);
  if (dropoutP > 0 || (options.returnProbs && recording) || (grad && mask?.requiresGrad)) {
    return composed(qf, kf, vf, mask, scale, dropoutP, options);
  }
  return fused(qf, kf, vf, lead, mask, scale, options, recording);
}

function fused(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  lead: number[],
  mask: Tensor | null,
  scale: number,
  options: ScaledDotProductAttentionOptions,
  recording: boolean,
): Tensor | AttentionResult {
  const [nq, d] = q.shape.slice(-2);
  const [nk, dv] = v.shape.slice(-2);
  // Leading dims fold into (batch, heads): contiguous tensors make that a free relabeling.
  const heads = lead.length > 0 ? lead[lead.length - 1] : 1;
  const batch = sizeOf(lead) / Math.max(heads, 1);
  let maskData: Float32Array | undefined;
  let maskStrides: [number, number, number] | undefined;
  if (mask) {
    const full4 = [batch, heads, nq, nk];
    let m = mask;
    let strides = broadcastStrides(m.shape, [...lead, nq, nk]);
    // The kernel reads mask rows contiguously and has two leading strides: materialize otherwise.
    if (lead.length > 2 || (nk > 1 && strides[strides.length - 1] !== 1)) {
      m = noGrad(() => expand(m, [...lead, nq, nk]));
      strides = broadcastStrides(full4, full4);
    } else {
      strides = [...new Array<number>(2 - lead.length).fill(0), ...strides];
    }
    maskData = m.data as Float32Array;
    maskStrides = [strides[0], strides[1], strides[2]];
  }
  const args = {
    q: q.data as Float32Array,
    k: k.data as Float32Array,
    v: v.data as Float32Array,
    out: emptyFloat32(batch * heads * nq * dv),
    batch,
    heads,
    nq,
    nk,
    d,
    dv,
    scale,
    mask: maskData,
    maskStrides,
    causal: options.isCausal ?? false,
    // Kept for the backward when recording: it then skips recomputing the scores.
    probs: options.returnProbs || recording ? emptyFloat32(batch * heads * nq * nk) : undefined,
  };
  kernels().attention(args);
  const output = record(
    new Tensor(args.out, [...lead, nq, dv]),
    'scaledDotProductAttention',
    [q, k, v],
    (g) => {
      const gq = emptyFloat32(q.size);
      const gk = emptyFloat32(k.size);
      const gv = emptyFloat32(v.size);
      kernels().attentionBackward({ ...args, gradOut: g.data as Float32Array, gq, gk, gv });
      return [new Tensor(gq, q.shape), new Tensor(gk, k.shape), new Tensor(gv, v.shape)];
    },
  );
  if (!options.returnProbs) return output;
  return { output, probs: new Tensor(args.probs as Float32Array, [...lead, nq, nk]) };
}

function composed(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  scale: number,
  dropoutP: number,
  options: ScaledDotProductAttentionOptions,
): Tensor | AttentionResult {
  const [nq] = q.shape.slice(-2);
  const nk = k.shape[k.ndim - 2];
  let scores = mul(matmul(q, transpose(k, -2, -1)), scale); // (..., Nq, Nk)
  if (mask) scores = add(scores, mask);
  if (options.isCausal) scores = add(scores, causalMask(nq, nk));
  const dead = fullyMaskedRows(scores);
  // Rows without a single key would softmax to NaN (and NaN gradients): give them zeros as torch's SDPA.
  if (dead) scores = where(dead, 0, scores);
  let probs = softmax(scores, -1);
  if (dead) probs = where(dead, 0, probs);
  const output = matmul(dropoutP > 0 ? dropout(probs, dropoutP, true) : probs, v);
  return options.returnProbs ? { output, probs } : output;
}

/** bool (..., Nq, 1): rows whose scores are all -inf, or null when there are none. */
function fullyMaskedRows(scores: Tensor): Tensor | null {
  const nk = scores.shape[scores.ndim - 1];
  const rows = scores.size / Math.max(nk, 1);
  const dead = new Uint8Array(rows);
  let any = false;
  for (let r = 0; r < rows; r++) {
    let all = true;
    for (let j = 0; j < nk && all; j++) if (scores.data[r * nk + j] !== -Infinity) all = false;
    if (all) {
      dead[r] = 1;
      any = true;
    }
  }
  return any ? new Tensor(dead, [...scores.shape.slice(0, -1), 1]) : null;
}
