/**
 * Convolution kernels: im2col / col2im (the GEMM path) and a direct depthwise convolution.
 *
 * Every spatial kernel works on three spatial dims (depth, height, width). 1-D and 2-D callers pass
 * leading dims of size 1 with kernel 1, stride 1, padding 0, dilation 1, so one implementation serves
 * all ranks. Tensors are contiguous row-major; "plane" means one (D, H, W) block of one channel.
 */

/**
 * A sliding window over three spatial dims. All arrays have length 3, ordered (D, H, W).
 * Input position of output o and tap k along a dim: o * stride - padding + k * dilation; positions
 * outside [0, inSize) read as zero (or are skipped). `outSize` is given (not derived) so that callers
 * own ceil mode and output padding.
 */
export interface Window {
  inSize: readonly number[];
  outSize: readonly number[];
  kernel: readonly number[];
  stride: readonly number[];
  /** Leading padding per dim; the trailing side is implied by outSize. */
  padding: readonly number[];
  dilation: readonly number[];
}

/**
 * The outputs o in [lo, hi) whose input position o * stride + offset lies in [0, size). Outside that
 * range a tap falls into padding, so inner loops run over a contiguous, bounds-free range.
 */
export function validRange(offset: number, stride: number, size: number, outLen: number): [number, number] {
  const lo = offset >= 0 ? 0 : Math.ceil(-offset / stride);
  const last = size - 1 - offset;
  const hi = last < 0 ? 0 : Math.min(outLen, Math.floor(last / stride) + 1);
  return [Math.min(lo, outLen), Math.max(hi, Math.min(lo, outLen))];
}

/**
 * im2col for one image: x (channels, D, H, W) -> cols (channels * kD * kH * kW, oD * oH * oW), rows
 * ordered (channel, kd, kh, kw) as torch's unfold and as a (Cout, Cin, kD, kH, kW) weight flattens.
 * Every element of cols is written (zeros where the window covers padding).
 */
export function im2col(x: Float32Array, channels: number, win: Window, cols: Float32Array): void {
  const [D, H, W] = win.inSize;
  const [OD, OH, OW] = win.outSize;
  const [KD, KH, KW] = win.kernel;
  const [sd, sh, sw] = win.stride;
  const [pd, ph, pw] = win.padding;
  const [dd, dh, dw] = win.dilation;
  const L = OD * OH * OW;
  let row = 0;
  for (let c = 0; c < channels; c++) {
    const xc = c * D * H * W;
    for (let kd = 0; kd < KD; kd++) {
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++, row++) {
          const offW = kw * dw - pw;
          const [lo, hi] = validRange(offW, sw, W, OW);
          let dst = row * L;
          for (let od = 0; od < OD; od++) {
            const id = od * sd - pd + kd * dd;
            for (let oh = 0; oh < OH; oh++, dst += OW) {
              const ih = oh * sh - ph + kh * dh;
              if (id < 0 || id >= D || ih < 0 || ih >= H) {
                cols.fill(0, dst, dst + OW);
                continue;
              }
              const src = xc + (id * H + ih) * W + offW;
              for (let ow = 0; ow < lo; ow++) cols[dst + ow] = 0;
              if (sw === 1) for (let ow = lo; ow < hi; ow++) cols[dst + ow] = x[src + ow];
              else for (let ow = lo; ow < hi; ow++) cols[dst + ow] = x[src + ow * sw];
              for (let ow = hi; ow < OW; ow++) cols[dst + ow] = 0;
            }
          }
        }
      }
    }
  }
}

/**
 * The adjoint of im2col for one image: x (channels, D, H, W) += fold(cols). Accumulates, so callers
 * pass a zeroed x (or one to add into); taps over padding are dropped.
 */
export function col2im(cols: Float32Array, channels: number, win: Window, x: Float32Array): void {
  const [D, H, W] = win.inSize;
  const [OD, OH, OW] = win.outSize;
  const [KD, KH, KW] = win.kernel;
  const [sd, sh, sw] = win.stride;
  const [pd, ph, pw] = win.padding;
  const [dd, dh, dw] = win.dilation;
  const L = OD * OH * OW;
  let row = 0;
  for (let c = 0; c < channels; c++) {
    const xc = c * D * H * W;
    for (let kd = 0; kd < KD; kd++) {
      for (let kh = 0; kh < KH; kh++) {
        for (let kw = 0; kw < KW; kw++, row++) {
          const offW = kw * dw - pw;
          const [lo, hi] = validRange(offW, sw, W, OW);
          let src = row * L;
          for (let od = 0; od < OD; od++) {
            const id = od * sd - pd + kd * dd;
            for (let oh = 0; oh < OH; oh++, src += OW) {
              const ih = oh * sh - ph + kh * dh;
              if (id < 0 || id >= D || ih < 0 || ih >= H) continue;
              const dst = xc + (id * H + ih) * W + offW;
              if (sw === 1) for (let ow = lo; ow < hi; ow++) x[dst + ow] += cols[src + ow];
              else for (let ow = lo; ow < hi; ow++) x[dst + ow * sw] += cols[src + ow];
            }
          }
        }
      }
    }
  }
}

/**
 * Direct depthwise convolution (groups == channels, `multiplier` output channels per input channel):
 * x (batch, channels, D, H, W), weight (channels * multiplier, 1, kD, kH, kW), bias (channels *
 * multiplier) or null -> out (batch, channels * multiplier, oD, oH, oW), fully written.
 */
export function depthwiseConv(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array | null,
  batch: number,
  channels: number,
  multiplier: number,
  win: Window,
  out: Float32Array,
): void {
  const [D, H, W] = win.inSize;
  const [OD, OH, OW] = win.outSize;
  const [KD, KH, KW] = win.kernel;
  const [sd, sh, sw] = win.stride;
  const [pd, ph, pw] = win.padding;
  const [dd, dh, dw] = win.dilation;
  const inPlane = D * H * W;
  const L = OD * OH * OW;
  const taps = KD * KH * KW;
  const outChannels = channels * multiplier;
  for (let n = 0; n < batch; n++) {
    for (let oc = 0; oc < outChannels; oc++) {
      const xp = (n * channels + Math.floor(oc / multiplier)) * inPlane;
      const op = (n * outChannels + oc) * L;
      out.fill(bias ? bias[oc] : 0, op, op + L);
      // Tap-outer order: each tap streams over the output plane, which stays in cache.
      let wi = oc * taps;
      for (let kd = 0; kd < KD; kd++) {
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++, wi++) {
            const wv = weight[wi];
            const offW = kw * dw - pw;
            const [lo, hi] = validRange(offW, sw, W, OW);
            if (lo >= hi) continue;
            for (let od = 0; od < OD; od++) {
              const id = od * sd - pd + kd * dd;
              if (id < 0 || id >= D) continue;
              for (let oh = 0; oh < OH; oh++) {
                const ih = oh * sh - ph + kh * dh;
                if (ih < 0 || ih >= H) continue;
                const src = xp + (id * H + ih) * W + offW;
                const dst = op + (od * OH + oh) * OW;
                if (sw === 1) for (let ow = lo; ow < hi; ow++) out[dst + ow] += wv * x[src + ow];
                else for (let ow = lo; ow < hi; ow++) out[dst + ow] += wv * x[src + ow * sw];
              }
            }
          }
        }
      }
    }
  }
}

/**
 * Gradients of depthwiseConv given gy (batch, channels * multiplier, oD, oH, oW). Accumulates into gx
 * (shape of x) and gw (shape of weight); either may be null when not needed. The bias gradient is a
 * plain sum of gy and is left to the caller.
 */
export function depthwiseConvBackward(
  x: Float32Array,
  weight: Float32Array,
  gy: Float32Array,
  batch: number,
  channels: number,
  multiplier: number,
  win: Window,
  gx: Float32Array | null,
  gw: Float32Array | null,
): void {
  const [D, H, W] = win.inSize;
  const [OD, OH, OW] = win.outSize;
  const [KD, KH, KW] = win.kernel;
  const [sd, sh, sw] = win.stride;
  const [pd, ph, pw] = win.padding;
  const [dd, dh, dw] = win.dilation;
  const inPlane = D * H * W;
  const L = OD * OH * OW;
  const taps = KD * KH * KW;
  const outChannels = channels * multiplier;
  for (let n = 0; n < batch; n++) {
    for (let oc = 0; oc < outChannels; oc++) {
      const xp = (n * channels + Math.floor(oc / multiplier)) * inPlane;
      const op = (n * outChannels + oc) * L;
      let wi = oc * taps;
      for (let kd = 0; kd < KD; kd++) {
        for (let kh = 0; kh < KH; kh++) {
          for (let kw = 0; kw < KW; kw++, wi++) {
            const wv = weight[wi];
            const offW = kw * dw - pw;
            const [lo, hi] = validRange(offW, sw, W, OW);
            if (lo >= hi) continue;
            let acc = 0;
            for (let od = 0; od < OD; od++) {
              const id = od * sd - pd + kd * dd;
              if (id < 0 || id >= D) continue;
              for (let oh = 0; oh < OH; oh++) {
                const ih = oh * sh - ph + kh * dh;
                if (ih < 0 || ih >= H) continue;
                const src = xp + (id * H + ih) * W + offW;
                const g = op + (od * OH + oh) * OW;
                if (gx) for (let ow = lo; ow < hi; ow++) gx[src + ow * sw] += wv * gy[g + ow];
                if (gw) for (let ow = lo; ow < hi; ow++) acc += gy[g + ow] * x[src + ow * sw];
              }
            }
            if (gw) gw[wi] += acc;
          }
        }
      }
    }
  }
}

/**
 * im2col for a batch, images side by side: x (batch, channels, D, H, W) -> cols (channels * kD * kH *
 * kW, batch * L), so that one GEMM with the (Cout, K) weight convolves every image. Column n * L + l
 * is image n's column l of `im2col`.
 */
export function im2colBatch(
  x: Float32Array,
  batch: number,
  channels: number,
  win: Window,
  cols: Float32Array,
): void {
  const L = win.outSize[0] * win.outSize[1] * win.outSize[2];
  const K = channels * win.kernel[0] * win.kernel[1] * win.kernel[2];
  const inImage = channels * win.inSize[0] * win.inSize[1] * win.inSize[2];
  const one = new Float32Array(K * L);
  for (let n = 0; n < batch; n++) {
    im2col(x.subarray(n * inImage, (n + 1) * inImage), channels, win, one);
    for (let r = 0; r < K; r++) cols.set(one.subarray(r * L, (r + 1) * L), (r * batch + n) * L);
  }
}

/** The adjoint of im2colBatch: x (batch, channels, D, H, W) += fold(cols) per image; accumulates. */
export function col2imBatch(
  cols: Float32Array,
  batch: number,
  channels: number,
  win: Window,
  x: Float32Array,
): void {
  const L = win.outSize[0] * win.outSize[1] * win.outSize[2];
  const K = channels * win.kernel[0] * win.kernel[1] * win.kernel[2];
  const inImage = channels * win.inSize[0] * win.inSize[1] * win.inSize[2];
  const one = new Float32Array(K * L);
  for (let n = 0; n < batch; n++) {
    for (let r = 0; r < K; r++) one.set(cols.subarray((r * batch + n) * L, (r * batch + n + 1) * L), r * L);
    col2im(one, channels, win, x.subarray(n * inImage, (n + 1) * inImage));
  }
}
