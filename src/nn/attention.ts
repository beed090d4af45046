/** torch.nn.MultiheadAttention with torch's parameter names, mask conventions and defaults. */
import { scaledDotProductAttention } from '../ops/attention.js';
import { zeros } from '../ops/creation.js';
import { add } from '../ops/elementwise.js';
import { linear } from '../ops/matmul.js';
import { mean } from '../ops/reduce.js';
import { permute, reshape, slice, squeeze, unbind, unsqueeze } from '../ops/shape.js';
import { noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { xavierUniform_, zeros_ } from './init.js';
import { Linear } from './linear.js';
import { Module, Parameter } from './module.js';

export interface MultiheadAttentionOptions {
  /** Dropout on the attention probabilities in training mode. */
  dropout?: number;
  bias?: boolean;
  /** Feature size of key / value when it differs from embedDim (then q/k/v projections are separate). */
  kdim?: number;
  vdim?: number;
  /** Inputs and output are (B, L, E) instead of torch's default (L, B, E). */
  batchFirst?: boolean;
}

export interface MultiheadAttentionForwardOptions {
  /** (B, S), or (S) for unbatched input: bool true = ignore that key; float is added to the scores. */
  keyPaddingMask?: Tensor | null;
  /** (L, S) or (B*numHeads, L, S): bool true = NOT allowed to attend; float is added to the scores. */
  attnMask?: Tensor | null;
  /** Return the attention probabilities (default true, as torch). */
  needWeights?: boolean;
  /** Average the returned weights over heads (default true, as torch); false gives (B, H, L, S). */
  averageAttnWeights?: boolean;
  /** Causal self-attention. With attnMask given it is a hint (torch) and attnMask is used as is. */
  isCausal?: boolean;
}

export interface MultiheadAttentionOutput {
  /** Same layout as the query: (B, L, E) batch-first, (L, B, E) otherwise, (L, E) unbatched. */
  output: Tensor;
  /**
   * Post-softmax probabilities before dropout: (B, L, S) averaged over heads or (B, H, L, S) per head;
   * null unless needWeights. A query with every key masked gets zero weights (torch's need_weights path
   * gives NaN there).
   */
  weights: Tensor | null;
}

/** Masks with torch MHA's convention (bool true = excluded) as additive float masks. */
function excludedToAdditive(mask: Tensor, what: string): Tensor {
  if (mask.dtype === 'bool') {
    const data = new Float32Array(mask.size);
    for (let i = 0; i < data.length; i++) if (mask.data[i] !== 0) data[i] = -Infinity;
    return new Tensor(data, mask.shape);
  }
  if (mask.dtype !== 'float32') {
    throw new Error(
      `MultiheadAttention: ${what} must be bool (true = masked) or float (additive), got ${mask.dtype}; cast it with .to('bool')`,
    );
  }
  return mask.detach();
}

export class MultiheadAttention extends Module {
  in_proj_weight: Parameter | null;
  q_proj_weight: Parameter | null;
  k_proj_weight: Parameter | null;
  v_proj_weight: Parameter | null;
  in_proj_bias: Parameter | null;
  out_proj: Linear;
  readonly headDim: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly dropout: number;
  readonly batchFirst: boolean;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    options: MultiheadAttentionOptions = {},
  ) {
    super();
    if (embedDim % numHeads !== 0) {
      throw new Error(`MultiheadAttention: embedDim ${embedDim} must be divisible by numHeads ${numHeads}`);
    }
    this.headDim = embedDim / numHeads;
    this.kdim = options.kdim ?? embedDim;
    this.vdim = options.vdim ?? embedDim;
    this.dropout = options.dropout ?? 0;
    this.batchFirst = options.batchFirst ?? false;
    const packed = this.kdim === embedDim && this.vdim === embedDim;
    this.in_proj_weight = packed ? new Parameter(xavierUniform_(zeros([3 * embedDim, embedDim]))) : null;
    this.q_proj_weight = packed ? null : new Parameter(xavierUniform_(zeros([embedDim, embedDim])));
    this.k_proj_weight = packed ? null : new Parameter(xavierUniform_(zeros([embedDim, this.kdim])));
    this.v_proj_weight = packed ? null : new Parameter(xavierUniform_(zeros([embedDim, this.vdim])));
    const bias = options.bias ?? true;
    this.in_proj_bias = bias ? new Parameter(zeros([3 * embedDim])) : null;
    this.out_proj = new Linear(embedDim, embedDim, { bias });
    if (this.out_proj.bias) zeros_(this.out_proj.bias);
  }

  forward(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    options: MultiheadAttentionForwardOptions = {},
  ): MultiheadAttentionOutput {
    const E = this.embedDim;
    const H = this.numHeads;
    const unbatched = query.ndim === 2;
    if (!(query.ndim === 3 || unbatched) || key.ndim !== query.ndim || value.ndim !== query.ndim) {
      throw new Error(
        `MultiheadAttention: expected query/key/value all 3-D (batched) or all 2-D (unbatched), got ${fmt(query.shape)}, ${fmt(key.shape)}, ${fmt(value.shape)}`,
      );
    }
    // Unbatched inputs get a batch dim in the position the layout expects.
    const batchDim = unbatched || this.batchFirst ? 0 : 1;
    const seqDim = 1 - batchDim;
    const [q3, k3, v3] = unbatched ? [query, key, value].map((t) => unsqueeze(t, 0)) : [query, key, value];
    const B = q3.shape[batchDim];
    const L = q3.shape[seqDim];
    const S = k3.shape[seqDim];
    if (q3.shape[2] !== E || k3.shape[2] !== this.kdim || v3.shape[2] !== this.vdim) {
      throw new Error(
        `MultiheadAttention: feature sizes ${q3.shape[2]}, ${k3.shape[2]}, ${v3.shape[2]} do not match embedDim ${E}, kdim ${this.kdim}, vdim ${this.vdim}`,
      );
    }
    if (k3.shape[batchDim] !== B || v3.shape[batchDim] !== B || v3.shape[seqDim] !== S) {
      throw new Error(
        `MultiheadAttention: query ${fmt(query.shape)}, key ${fmt(key.shape)} and value ${fmt(value.shape)} disagree on batch or key length`,
      );
    }

    // (B, H, len, hd) from a projected (B, len, E) or (len, B, E)
    const toHeads = (x: Tensor, len: number): Tensor =>
      this.batchFirst || unbatched
        ? permute(reshape(x, [B, len, H, this.headDim]), [0, 2, 1, 3])
        : permute(reshape(x, [len, B, H, this.headDim]), [1, 2, 0, 3]);
    const [q, k, v] = this.project(query, key, value, q3, k3, v3).map((x, i) => toHeads(x, i === 0 ? L : S));

    const mask = noGrad(() => this.combinedMask(options, B, L, S, unbatched));
    const sdpaOptions = {
      attnMask: mask,
      dropoutP: this.training ? this.dropout : 0,
      isCausal: (options.isCausal ?? false) && !options.attnMask,
    };
    // Only a caller that asks for the weights pays for them.
    let heads: Tensor; // (B, H, L, hd)
    let weights: Tensor | null = null; // (B, H, L, S)
    if (options.needWeights ?? true) {
      const r = scaledDotProductAttention(q, k, v, { ...sdpaOptions, returnProbs: true });
      heads = r.output;
      weights = r.probs;
      if (options.averageAttnWeights ?? true) weights = mean(weights, 1);
    } else heads = scaledDotProductAttention(q, k, v, sdpaOptions);
    // (B, H, L, hd) → the query's layout
    const merged =
      this.batchFirst || unbatched
        ? reshape(permute(heads, [0, 2, 1, 3]), [B, L, E])
        : reshape(permute(heads, [2, 0, 1, 3]), [L, B, E]);
    const out = this.out_proj.forward(merged);
    return {
      output: unbatched ? squeeze(out, 0) : out,
      weights: weights && unbatched ? squeeze(weights, 0) : weights,
    };
  }

  /** The three input projections; self-attention runs one packed GEMM as torch does. */
  private project(query: Tensor, key: Tensor, value: Tensor, q3: Tensor, k3: Tensor, v3: Tensor): Tensor[] {
    const E = this.embedDim;
    const b = this.in_proj_bias;
    const bias = (i: number) => (b ? slice(b, 0, i * E, (i + 1) * E) : null);
    const w = this.in_proj_weight;
    if (!w) {
      return [
        linear(q3, this.q_proj_weight as Parameter, bias(0)),
        linear(k3, this.k_proj_weight as Parameter, bias(1)),
        linear(v3, this.v_proj_weight as Parameter, bias(2)),
      ];
    }
    if (query === key && key === value) {
      const qkv = linear(q3, w, b); // (..., 3E)
      return unbind(reshape(qkv, [...qkv.shape.slice(0, -1), 3, E]), -2);
    }
    const weight = (i: number, n: number) => slice(w, 0, i * E, (i + n) * E);
    const q = linear(q3, weight(0, 1), bias(0));
    if (key === value) {
      const kv = linear(k3, weight(1, 2), b ? slice(b, 0, E, 3 * E) : null); // (..., 2E)
      const [k, v] = unbind(reshape(kv, [...kv.shape.slice(0, -1), 2, E]), -2);
      return [q, k, v];
    }
    return [q, linear(k3, weight(1, 1), bias(1)), linear(v3, weight(2, 1), bias(2))];
  }

  /** attnMask and keyPaddingMask merged into one additive mask broadcastable to (B, H, L, S). */
  private combinedMask(
    options: MultiheadAttentionForwardOptions,
    B: number,
    L: number,
    S: number,
    unbatched: boolean,
  ): Tensor | null {
    let mask: Tensor | null = null;
    if (options.attnMask) {
      const m = excludedToAdditive(options.attnMask, 'attnMask');
      if (m.ndim === 2 && m.shape[0] === L && m.shape[1] === S) mask = m;
      else if (m.ndim === 3 && m.shape[0] === B * this.numHeads && m.shape[1] === L && m.shape[2] === S) {
        mask = reshape(m, [B, this.numHeads, L, S]);
      } else {
        throw new Error(
          `MultiheadAttention: attnMask ${fmt(m.shape)} must be (L, S) = (${L}, ${S}) or (B*numHeads, L, S) = (${B * this.numHeads}, ${L}, ${S})`,
        );
      }
    }
    if (options.keyPaddingMask) {
      const kp = excludedToAdditive(options.keyPaddingMask, 'keyPaddingMask');
      const expected = unbatched ? [S] : [B, S];
      if (kp.ndim !== expected.length || kp.shape.some((s, i) => s !== expected[i])) {
        throw new Error(`MultiheadAttention: keyPaddingMask ${fmt(kp.shape)} must be ${fmt(expected)}`);
      }
      const padding = reshape(kp, [B, 1, 1, S]);
      mask = mask ? add(mask, padding) : padding;
    }
    return mask;
  }
}
