/**
 * Scaled dot-product attention, row by row: the reference every fused backend is checked against.
 *
 * Semantics (those of torch >= 2.5 `F.scaled_dot_product_attention`):
 * - scores(b, h, i, j) = scale * q_i · k_j + mask(b, h, i, j), and -inf where `causal` and j > i;
 * - probabilities = softmax over j, computed with the row maximum subtracted;
 * - a row whose scores are all -inf (every key masked) has probabilities 0 and output 0, as torch's
 *   `_safe_softmax` in SDPA (plain softmax would give NaN); its gradients are 0 too.
 */

export interface AttentionArgs {
  q: Float32Array; // (B, H, Nq, D) contiguous
  k: Float32Array; // (B, H, Nk, D)
  v: Float32Array; // (B, H, Nk, Dv)
  out: Float32Array; // (B, H, Nq, Dv), written
  batch: number;
  heads: number;
  nq: number;
  nk: number;
  d: number;
  dv: number;
  scale: number;
  /** Optional additive float mask; element (b, h, i, j) is at b*maskStrides[0] + h*maskStrides[1] + i*maskStrides[2] + j (strides may be 0 to broadcast). */
  mask?: Float32Array;
  /** Defaults to [0, 0, nk]: one (Nq, Nk) mask shared by every batch and head. */
  maskStrides?: [number, number, number];
  /** Causal (torch is_causal, top-left aligned): key j is masked for query i when j > i. */
  causal?: boolean;
  /** When given, the post-softmax probabilities (B, H, Nq, Nk) are written here. */
  probs?: Float32Array;
}

export interface AttentionBackwardArgs extends AttentionArgs {
  /** (B, H, Nq, Dv): gradient of the loss wrt `out`. */
  gradOut: Float32Array;
  /** Written (overwritten, not accumulated): gradients wrt q, k, v in their layouts. */
  gq: Float32Array;
  gk: Float32Array;
  gv: Float32Array;
}

/**
 * Writes the probabilities of query row (b, h, i) into `row` (length nk). Returns false when every
 * key is masked (the row is then all zeros).
 */
function probabilityRow(args: AttentionArgs, b: number, h: number, i: number, row: Float32Array): boolean {
  const { q, k, nk, d, scale, mask, causal } = args;
  const bh = b * args.heads + h;
  const qo = (bh * args.nq + i) * d;
  const kBase = bh * nk * d;
  const limit = causal ? Math.min(nk, i + 1) : nk;
  let mo = 0;
  if (mask) {
    const s = args.maskStrides ?? [0, 0, nk];
    mo = b * s[0] + h * s[1] + i * s[2];
  }
  let max = -Infinity;
  for (let j = 0; j < limit; j++) {
    const ko = kBase + j * d;
    let dot = 0;
    for (let c = 0; c < d; c++) dot += q[qo + c] * k[ko + c];
    const s = mask ? dot * scale + mask[mo + j] : dot * scale;
    row[j] = s;
    if (s > max) max = s;
  }
  if (max === -Infinity) {
    row.fill(0);
    return false;
  }
  let sum = 0;
  for (let j = 0; j < limit; j++) {
    const e = Math.exp(row[j] - max);
    row[j] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let j = 0; j < limit; j++) row[j] *= inv;
  for (let j = limit; j < nk; j++) row[j] = 0;
  return true;
}

export function attention(args: AttentionArgs): void {
  const { v, out, batch, heads, nq, nk, dv, probs, causal } = args;
  const row = new Float32Array(nk);
  const acc = new Float64Array(dv);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const bh = b * heads + h;
      const vBase = bh * nk * dv;
      for (let i = 0; i < nq; i++) {
        const live = probabilityRow(args, b, h, i, row);
        if (probs) probs.set(row, (bh * nq + i) * nk);
        const oo = (bh * nq + i) * dv;
        if (!live) {
          out.fill(0, oo, oo + dv);
          continue;
        }
        acc.fill(0);
        const limit = causal ? Math.min(nk, i + 1) : nk;
        for (let j = 0; j < limit; j++) {
          const p = row[j];
          if (p === 0) continue;
          const vo = vBase + j * dv;
          for (let c = 0; c < dv; c++) acc[c] += p * v[vo + c];
        }
        for (let c = 0; c < dv; c++) out[oo + c] = acc[c];
      }
    }
  }
}

/**
 * Gradients of `attention` wrt q, k, v. The probabilities are read from `args.probs` when given
 * (as written by the forward with the same inputs), otherwise recomputed; `args.out` is not read.
 * With dS = P ∘ (dP - rowsum(P ∘ dP)) and dP = dO V^T: dQ = scale dS K, dK = scale dS^T Q, dV = P^T dO.
 */
export function attentionBackward(args: AttentionBackwardArgs): void {
  const { q, k, v, batch, heads, nq, nk, d, dv, scale, probs, gradOut, gq, gk, gv } = args;
  gk.fill(0);
  gv.fill(0);
  const row = new Float32Array(nk);
  const dS = new Float64Array(nk);
  const accQ = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const bh = b * heads + h;
      const kBase = bh * nk * d;
      const vBase = bh * nk * dv;
      for (let i = 0; i < nq; i++) {
        const qo = (bh * nq + i) * d;
        const oo = (bh * nq + i) * dv;
        let live: boolean;
        if (probs) {
          const po = (bh * nq + i) * nk;
          for (let j = 0; j < nk; j++) row[j] = probs[po + j];
          live = row.some((p) => p !== 0);
        } else live = probabilityRow(args, b, h, i, row);
        if (!live) {
          gq.fill(0, qo, qo + d);
          continue;
        }
        let rowDot = 0;
        for (let j = 0; j < nk; j++) {
          const p = row[j];
          if (p === 0) {
            dS[j] = 0;
            continue;
          }
          const vo = vBase + j * dv;
          let dp = 0;
          for (let c = 0; c < dv; c++) {
            dp += gradOut[oo + c] * v[vo + c];
            gv[vo + c] += p * gradOut[oo + c];
          }
          dS[j] = dp;
          rowDot += p * dp;
        }
        accQ.fill(0);
        for (let j = 0; j < nk; j++) {
          const p = row[j];
          if (p === 0) continue;
          const ds = p * (dS[j] - rowDot) * scale;
          const ko = kBase + j * d;
          for (let c = 0; c < d; c++) {
            accQ[c] += ds * k[ko + c];
            gk[ko + c] += ds * q[qo + c];
          }
        }
        for (let c = 0; c < d; c++) gq[qo + c] = accQ[c];
      }
    }
  }
}
