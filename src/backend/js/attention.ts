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

/** Writes the probabilities of query row (b, h, i) into `row` (length nk); all zeros when every key is masked. */
function probabilityRow(args: AttentionArgs, b: number, h: number, i: number, row: Float64Array): void {
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
  // Four keys at a time: independent sums instead of one serial dependency chain.
  let j = 0;
  for (; j + 4 <= limit; j += 4) {
    const k0 = kBase + j * d;
    const k1 = k0 + d;
    const k2 = k1 + d;
    const k3 = k2 + d;
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let c = 0; c < d; c++) {
      const qc = q[qo + c];
      s0 += qc * k[k0 + c];
      s1 += qc * k[k1 + c];
      s2 += qc * k[k2 + c];
      s3 += qc * k[k3 + c];
    }
    row[j] = s0 * scale;
    row[j + 1] = s1 * scale;
    row[j + 2] = s2 * scale;
    row[j + 3] = s3 * scale;
  }
  for (; j < limit; j++) {
    const ko = kBase + j * d;
    let dot = 0;
    for (let c = 0; c < d; c++) dot += q[qo + c] * k[ko + c];
    row[j] = dot * scale;
  }
  let max = -Infinity;
  for (let j = 0; j < limit; j++) {
    if (mask) row[j] += mask[mo + j];
    if (row[j] > max) max = row[j];
  }
  if (max === -Infinity) {
    row.fill(0);
    return;
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
}

export function attention(args: AttentionArgs): void {
  const { v, out, batch, heads, nq, nk, dv, probs, causal } = args;
  const row = new Float64Array(nk);
  const acc = new Float64Array(dv);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const bh = b * heads + h;
      const vBase = bh * nk * dv;
      for (let i = 0; i < nq; i++) {
        probabilityRow(args, b, h, i, row);
        if (probs) probs.set(row, (bh * nq + i) * nk);
        const oo = (bh * nq + i) * dv;
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
  const { q, k, v, batch, heads, nq, nk, d, dv, scale, probs, causal, gradOut, gq, gk, gv } = args;
  const row = new Float64Array(nk);
  const dP = new Float64Array(nk);
  const accQ = new Float64Array(d);
  // One head's dK and dV summed over its queries in float64, then written out.
  const accK = new Float64Array(nk * d);
  const accV = new Float64Array(nk * dv);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const bh = b * heads + h;
      const kBase = bh * nk * d;
      const vBase = bh * nk * dv;
      accK.fill(0);
      accV.fill(0);
      for (let i = 0; i < nq; i++) {
        const qo = (bh * nq + i) * d;
        const oo = (bh * nq + i) * dv;
        // A fully masked row has P = 0 and so contributes nothing below.
        let p: Float32Array | Float64Array = row;
        if (probs) p = probs.subarray((bh * nq + i) * nk, (bh * nq + i + 1) * nk);
        else probabilityRow(args, b, h, i, row);
        const limit = causal ? Math.min(nk, i + 1) : nk;
        // dP_j = dO_i · v_j, four keys at a time
        let j = 0;
        for (; j + 4 <= limit; j += 4) {
          const v0 = vBase + j * dv;
          const v1 = v0 + dv;
          const v2 = v1 + dv;
          const v3 = v2 + dv;
          let s0 = 0;
          let s1 = 0;
          let s2 = 0;
          let s3 = 0;
          for (let c = 0; c < dv; c++) {
            const g = gradOut[oo + c];
            s0 += g * v[v0 + c];
            s1 += g * v[v1 + c];
            s2 += g * v[v2 + c];
            s3 += g * v[v3 + c];
          }
          dP[j] = s0;
          dP[j + 1] = s1;
          dP[j + 2] = s2;
          dP[j + 3] = s3;
        }
        for (; j < limit; j++) {
          const vo = vBase + j * dv;
          let s0 = 0;
          for (let c = 0; c < dv; c++) s0 += gradOut[oo + c] * v[vo + c];
          dP[j] = s0;
        }
        let rowDot = 0;
        for (let j = 0; j < limit; j++) rowDot += p[j] * dP[j];
        accQ.fill(0);
        for (let j = 0; j < limit; j++) {
          const pj = p[j];
          if (pj === 0) continue;
          const vo = j * dv;
          for (let c = 0; c < dv; c++) accV[vo + c] += pj * gradOut[oo + c];
          const ds = pj * (dP[j] - rowDot) * scale;
          const ko = j * d;
          for (let c = 0; c < d; c++) {
            accQ[c] += ds * k[kBase + ko + c];
            accK[ko + c] += ds * q[qo + c];
          }
        }
        for (let c = 0; c < d; c++) gq[qo + c] = accQ[c];
      }
      gk.set(accK, kBase);
      gv.set(accV, vBase);
    }
  }
}
