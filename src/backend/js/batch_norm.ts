/**
 * Per-channel normalization of an (n, channels, spatial) view (BatchNorm over N and the spatial
 * dims). Loops run n outer, channel, then the contiguous spatial run, so (N, C) and (N, C, H, W)
 * inputs are both read in memory order. Statistics accumulate in float64.
 */

/** Per-channel mean and biased variance (two passes, for accuracy on inputs with a large mean). */
export function batchNormStats(
  x: Float32Array,
  n: number,
  channels: number,
  spatial: number,
  mean: Float64Array,
  variance: Float64Array,
): void {
  const count = n * spatial;
  mean.fill(0);
  variance.fill(0);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < channels; c++) {
      const o = (b * channels + c) * spatial;
      let s = 0;
      for (let j = 0; j < spatial; j++) s += x[o + j];
      mean[c] += s;
    }
  }
  for (let c = 0; c < channels; c++) mean[c] /= count;
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < channels; c++) {
      const o = (b * channels + c) * spatial;
      const mu = mean[c];
      let s = 0;
      for (let j = 0; j < spatial; j++) {
        const d = x[o + j] - mu;
        s += d * d;
      }
      variance[c] += s;
    }
  }
  for (let c = 0; c < channels; c++) variance[c] /= count;
}

/**
 * out = x * scale[c] + shift[c]: batch norm with the statistics and the affine folded per channel
 * (scale = weight * invstd, shift = bias - mean * scale), the same form as torchvision's
 * FrozenBatchNorm2d. scale/shift are float64 so the fold adds no rounding of its own.
 */
export function batchNormForward(
  x: Float32Array,
  n: number,
  channels: number,
  spatial: number,
  scale: Float64Array,
  shift: Float64Array,
  out: Float32Array,
): void {
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < channels; c++) {
      const o = (b * channels + c) * spatial;
      const k = scale[c];
      const t = shift[c];
      for (let j = 0; j < spatial; j++) out[o + j] = x[o + j] * k + t;
    }
  }
}

/**
 * Gradients of batch norm. With `training` the statistics came from this batch, so the mean and
 * variance terms flow back into gx; otherwise they were constants (running stats). gw and gb
 * (channels,) may be null; weight null means 1.
 */
export function batchNormBackward(
  x: Float32Array,
  gy: Float32Array,
  n: number,
  channels: number,
  spatial: number,
  mean: Float64Array,
  invstd: Float64Array,
  weight: Float32Array | null,
  training: boolean,
  gx: Float32Array,
  gw: Float32Array | null,
  gb: Float32Array | null,
): void {
  const count = n * spatial;
  const sumG = new Float64Array(channels);
  const sumGX = new Float64Array(channels);
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < channels; c++) {
      const o = (b * channels + c) * spatial;
      const mu = mean[c];
      const rs = invstd[c];
      let sg = 0;
      let sgx = 0;
      for (let j = 0; j < spatial; j++) {
        sg += gy[o + j];
        sgx += gy[o + j] * (x[o + j] - mu) * rs;
      }
      sumG[c] += sg;
      sumGX[c] += sgx;
    }
  }
  if (gw) for (let c = 0; c < channels; c++) gw[c] = sumGX[c];
  if (gb) for (let c = 0; c < channels; c++) gb[c] = sumG[c];
  for (let b = 0; b < n; b++) {
    for (let c = 0; c < channels; c++) {
      const o = (b * channels + c) * spatial;
      const mu = mean[c];
      const rs = invstd[c];
      const k = (weight ? weight[c] : 1) * rs;
      if (!training) {
        for (let j = 0; j < spatial; j++) gx[o + j] = gy[o + j] * k;
        continue;
      }
      const mg = sumG[c] / count;
      const mgx = sumGX[c] / count;
      for (let j = 0; j < spatial; j++) {
        const xhat = (x[o + j] - mu) * rs;
        gx[o + j] = k * (gy[o + j] - mg - xhat * mgx);
      }
    }
  }
}
