/**
 * Softmax cross-entropy over the class axis of an (outer, classes, inner) view: one loss per position
 * (outer * inner of them), torch's cross_entropy before the reduction. Targets are class indices
 * (`target` has outer * inner entries, `probs` false) or class probabilities (`target` has the input's
 * size, `probs` true). Accumulation is in float64; classes are the strided axis, positions the
 * contiguous one, so (N, C, H, W) segmentation logits are read in memory order.
 */

/**
 * Writes the per-position loss and log-sum-exp (kept for the backward). With index targets, a
 * position whose target equals `ignoreIndex` gets loss 0. Label smoothing ε mixes the target with
 * the uniform distribution: (1 - ε) * nll + ε / C * (-Σ_c w_c log p_c) for indices, and
 * t'_c = (1 - ε) t_c + ε / C for probabilities; `weight` (classes,) or null scales each class.
 */
export function crossEntropy(
  x: Float32Array,
  outer: number,
  classes: number,
  inner: number,
  target: ArrayLike<number>,
  probs: boolean,
  weight: Float32Array | null,
  ignoreIndex: number,
  labelSmoothing: number,
  lse: Float64Array,
  loss: Float32Array,
): void {
  const eps = labelSmoothing;
  const maxv = new Float64Array(inner);
  const acc = new Float64Array(inner);
  const smooth = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const xo = o * classes * inner;
    const po = o * inner;
    maxv.fill(-Infinity);
    for (let c = 0; c < classes; c++) {
      const xc = xo + c * inner;
      for (let i = 0; i < inner; i++) if (x[xc + i] > maxv[i]) maxv[i] = x[xc + i];
    }
    acc.fill(0);
    for (let c = 0; c < classes; c++) {
      const xc = xo + c * inner;
      for (let i = 0; i < inner; i++) acc[i] += Math.exp(x[xc + i] - maxv[i]);
    }
    for (let i = 0; i < inner; i++) lse[po + i] = maxv[i] + Math.log(acc[i]);
    // acc now accumulates the target term, smooth the uniform term (both as -Σ w t log p)
    acc.fill(0);
    smooth.fill(0);
    for (let c = 0; c < classes; c++) {
      const xc = xo + c * inner;
      const wc = weight ? weight[c] : 1;
      for (let i = 0; i < inner; i++) {
        const logp = x[xc + i] - lse[po + i];
        if (probs) acc[i] -= wc * target[xc + i] * logp;
        if (eps > 0) smooth[i] -= wc * logp;
      }
    }
    for (let i = 0; i < inner; i++) {
      let nll = acc[i];
      if (!probs) {
        const y = target[po + i];
        if (y === ignoreIndex) {
          loss[po + i] = 0;
          continue;
        }
        nll = -(weight ? weight[y] : 1) * (x[xo + y * inner + i] - lse[po + i]);
      }
      loss[po + i] = (1 - eps) * nll + (eps / classes) * smooth[i];
    }
  }
}

/**
 * Gradients of crossEntropy given the upstream gradient per position `gLoss` (outer * inner).
 * Writes gx (the input's size) and, for probability targets, gTarget (or null when not needed).
 */
export function crossEntropyBackward(
  x: Float32Array,
  outer: number,
  classes: number,
  inner: number,
  target: ArrayLike<number>,
  probs: boolean,
  weight: Float32Array | null,
  ignoreIndex: number,
  labelSmoothing: number,
  lse: Float64Array,
  gLoss: Float32Array,
  gx: Float32Array,
  gTarget: Float32Array | null,
): void {
  const eps = labelSmoothing;
  const uniform = eps / classes;
  let weightSum = classes;
  if (weight) {
    weightSum = 0;
    for (let c = 0; c < classes; c++) weightSum += weight[c];
  }
  // Σ_c w_c t'_c per position: the total target mass that the softmax term redistributes.
  const mass = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    const xo = o * classes * inner;
    const po = o * inner;
    if (probs) {
      mass.fill(0);
      for (let c = 0; c < classes; c++) {
        const xc = xo + c * inner;
        const wc = weight ? weight[c] : 1;
        for (let i = 0; i < inner; i++) mass[i] += wc * ((1 - eps) * target[xc + i] + uniform);
      }
    }
    for (let c = 0; c < classes; c++) {
      const xc = xo + c * inner;
      const wc = weight ? weight[c] : 1;
      for (let i = 0; i < inner; i++) {
        const g = gLoss[po + i];
        const logp = x[xc + i] - lse[po + i];
        const p = Math.exp(logp);
        if (probs) {
          const t = (1 - eps) * target[xc + i] + uniform;
          gx[xc + i] = g * (p * mass[i] - wc * t);
          if (gTarget) gTarget[xc + i] = -g * (1 - eps) * wc * logp;
          continue;
        }
        const y = target[po + i];
        if (y === ignoreIndex) {
          gx[xc + i] = 0;
          continue;
        }
        const wy = weight ? weight[y] : 1;
        const hard = wy * (p - (c === y ? 1 : 0));
        gx[xc + i] = g * ((1 - eps) * hard + uniform * (weightSum * p - wc));
      }
    }
  }
}
