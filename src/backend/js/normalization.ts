/** Row-wise softmax and layer norm over the last axis of a (rows, cols) view. */

export function softmax(x: Float32Array, rows: number, cols: number, out: Float32Array, log = false): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (x[o + j] > max) max = x[o + j];
    if (max === -Infinity) max = 0; // a fully masked row: exp(-inf - 0) = 0, then 0/0 = NaN as torch
    let sum = 0;
    if (log) {
      for (let j = 0; j < cols; j++) sum += Math.exp(x[o + j] - max);
      const lse = max + Math.log(sum);
      for (let j = 0; j < cols; j++) out[o + j] = x[o + j] - lse;
    } else {
      for (let j = 0; j < cols; j++) {
        const e = Math.exp(x[o + j] - max);
        out[o + j] = e;
        sum += e;
      }
      const inv = 1 / sum;
      for (let j = 0; j < cols; j++) out[o + j] *= inv;
    }
  }
}

/**
 * y = (x - mean) * rstd * weight + bias per row; writes mean and rstd (rows,) for the backward.
 * weight/bias may be null (no affine).
 */
export function layerNorm(
  x: Float32Array,
  rows: number,
  cols: number,
  weight: Float32Array | null,
  bias: Float32Array | null,
  eps: number,
  out: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let j = 0; j < cols; j++) s += x[o + j];
    const mu = s / cols;
    let v = 0;
    for (let j = 0; j < cols; j++) {
      const d = x[o + j] - mu;
      v += d * d;
    }
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let j = 0; j < cols; j++) {
      let y = (x[o + j] - mu) * rs;
      if (weight) y *= weight[j];
      if (bias) y += bias[j];
      out[o + j] = y;
    }
  }
}

/** Gradients of layerNorm given the saved mean and rstd; gw/gb may be null. */
export function layerNormBackward(
  x: Float32Array,
  gy: Float32Array,
  rows: number,
  cols: number,
  weight: Float32Array | null,
  mean: Float32Array,
  rstd: Float32Array,
  gx: Float32Array,
  gw: Float32Array | null,
  gb: Float32Array | null,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const mu = mean[r];
    const rs = rstd[r];
    let sumG = 0;
    let sumGX = 0;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[o + j] - mu) * rs;
      const g = gy[o + j] * (weight ? weight[j] : 1);
      sumG += g;
      sumGX += g * xhat;
      if (gw) gw[j] += gy[o + j] * xhat;
      if (gb) gb[j] += gy[o + j];
    }
    const mG = sumG / cols;
    const mGX = sumGX / cols;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[o + j] - mu) * rs;
      const g = gy[o + j] * (weight ? weight[j] : 1);
      gx[o + j] = rs * (g - mG - xhat * mGX);
    }
  }
}
