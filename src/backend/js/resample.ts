/**
 * Resampling kernels. Interpolation (nearest, linear, cubic, antialiased, adaptive average) is
 * separable, so one kernel applies a precomputed 1-D filter along one axis; the op computes the taps
 * and chains one pass per spatial axis. Grid sampling follows torch's grid_sampler_2d.
 */

/**
 * A 1-D filter along the middle axis of an (outer, inLen, inner) view:
 * out[o, j, i] = sum_t weight[j * taps + t] * x[o, index[j * taps + t], i] for j < outLen.
 * index entries lie in [0, inLen); unused taps carry weight 0. out (outer, outLen, inner) is fully
 * written; the taps are summed in order t = 0, 1, ... (this fixes the rounding).
 */
export function resampleAxis(
  x: Float32Array,
  outer: number,
  inLen: number,
  inner: number,
  outLen: number,
  taps: number,
  index: Int32Array,
  weight: Float32Array,
  out: Float32Array,
): void {
  if (inner === 1) {
    for (let o = 0; o < outer; o++) {
      const xo = o * inLen;
      const yo = o * outLen;
      for (let j = 0, t0 = 0; j < outLen; j++, t0 += taps) {
        let acc = 0;
        for (let t = 0; t < taps; t++) acc += weight[t0 + t] * x[xo + index[t0 + t]];
        out[yo + j] = acc;
      }
    }
    return;
  }
  for (let o = 0; o < outer; o++) {
    for (let j = 0, t0 = 0; j < outLen; j++, t0 += taps) {
      const dst = (o * outLen + j) * inner;
      out.fill(0, dst, dst + inner);
      for (let t = 0; t < taps; t++) {
        const w = weight[t0 + t];
        const src = (o * inLen + index[t0 + t]) * inner;
        for (let i = 0; i < inner; i++) out[dst + i] += w * x[src + i];
      }
    }
  }
}

/** The adjoint of resampleAxis: gx (outer, inLen, inner) += the transposed filter applied to gy. */
export function resampleAxisBackward(
  gy: Float32Array,
  outer: number,
  inLen: number,
  inner: number,
  outLen: number,
  taps: number,
  index: Int32Array,
  weight: Float32Array,
  gx: Float32Array,
): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0, t0 = 0; j < outLen; j++, t0 += taps) {
      const src = (o * outLen + j) * inner;
      for (let t = 0; t < taps; t++) {
        const w = weight[t0 + t];
        if (w === 0) continue;
        const dst = (o * inLen + index[t0 + t]) * inner;
        for (let i = 0; i < inner; i++) gx[dst + i] += w * gy[src + i];
      }
    }
  }
}

export type GridSampleMode = 'bilinear' | 'nearest';
export type GridPaddingMode = 'zeros' | 'border' | 'reflection';

/** Grid coordinate in [-1, 1] -> source pixel coordinate, with d(source)/d(coordinate) in `slot[0]`. */
function sourceIndex(
  coord: number,
  size: number,
  padding: GridPaddingMode,
  alignCorners: boolean,
  slot: Float64Array,
): number {
  let c: number;
  let grad: number;
  if (alignCorners) {
    c = ((coord + 1) / 2) * (size - 1);
    grad = (size - 1) / 2;
  } else {
    c = ((coord + 1) * size - 1) / 2;
    grad = size / 2;
  }
  if (padding === 'reflection') {
    const [twiceLow, twiceHigh] = alignCorners ? [0, 2 * (size - 1)] : [-1, 2 * size - 1];
    if (twiceLow === twiceHigh) {
      c = 0;
      grad = 0;
    } else {
      const min = twiceLow / 2;
      const span = (twiceHigh - twiceLow) / 2;
      let v = c - min;
      let sign = 1;
      if (v < 0) {
        sign = -1;
        v = -v;
      }
      const extra = v % span;
      const flips = Math.floor(v / span);
      if (flips % 2 === 0) {
        c = extra + min;
        grad *= sign;
      } else {
        c = span - extra + min;
        grad *= -sign;
      }
    }
  }
  if (padding !== 'zeros') {
    if (c <= 0) {
      c = 0;
      grad = 0;
    } else if (c >= size - 1) {
      c = size - 1;
      grad = 0;
    }
  }
  slot[0] = grad;
  return c;
}

function inBounds(y: number, x: number, h: number, w: number): boolean {
  return y >= 0 && y < h && x >= 0 && x < w;
}

/** Round half to even (C's nearbyint), which torch's nearest grid sampling uses. */
function nearbyint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * torch.nn.functional.grid_sample for 4-D input: x (batch, channels, inH, inW), grid (batch, outH,
 * outW, 2) holding (x, y) in [-1, 1] -> out (batch, channels, outH, outW), fully written.
 */
export function gridSample2d(
  x: Float32Array,
  grid: Float32Array,
  batch: number,
  channels: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  mode: GridSampleMode,
  padding: GridPaddingMode,
  alignCorners: boolean,
  out: Float32Array,
): void {
  gridSample2dApply(
    x,
    grid,
    null,
    batch,
    channels,
    inH,
    inW,
    outH,
    outW,
    mode,
    padding,
    alignCorners,
    out,
    null,
  );
}

/**
 * Gradients of gridSample2d given gy (batch, channels, outH, outW): accumulates into gx (shape of x)
 * and writes ggrid (shape of grid; zero for 'nearest'). Either output may be null.
 */
export function gridSample2dBackward(
  x: Float32Array,
  grid: Float32Array,
  gy: Float32Array,
  batch: number,
  channels: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  mode: GridSampleMode,
  padding: GridPaddingMode,
  alignCorners: boolean,
  gx: Float32Array | null,
  ggrid: Float32Array | null,
): void {
  gridSample2dApply(
    x,
    grid,
    gy,
    batch,
    channels,
    inH,
    inW,
    outH,
    outW,
    mode,
    padding,
    alignCorners,
    gx,
    ggrid,
  );
}

// One walk over the grid serves the forward (gy null: writes `a` = out) and the backward (gy given:
// `a` = gx accumulates, ggrid written).
function gridSample2dApply(
  x: Float32Array,
  grid: Float32Array,
  gy: Float32Array | null,
  batch: number,
  channels: number,
  inH: number,
  inW: number,
  outH: number,
  outW: number,
  mode: GridSampleMode,
  padding: GridPaddingMode,
  alignCorners: boolean,
  a: Float32Array | null,
  ggrid: Float32Array | null,
): void {
  const inPlane = inH * inW;
  const outPlane = outH * outW;
  const slot = new Float64Array(1);
  for (let n = 0; n < batch; n++) {
    const xn = n * channels * inPlane;
    const yn = n * channels * outPlane;
    for (let p = 0; p < outPlane; p++) {
      const gp = (n * outPlane + p) * 2;
      const ix = sourceIndex(grid[gp], inW, padding, alignCorners, slot);
      const gxMult = slot[0];
      const iy = sourceIndex(grid[gp + 1], inH, padding, alignCorners, slot);
      const gyMult = slot[0];
      if (mode === 'nearest') {
        const nx = nearbyint(ix);
        const ny = nearbyint(iy);
        const ok = inBounds(ny, nx, inH, inW);
        const at = ny * inW + nx;
        for (let c = 0; c < channels; c++) {
          const o = yn + c * outPlane + p;
          if (!gy) {
            if (a) a[o] = ok ? x[xn + c * inPlane + at] : 0;
          } else if (a && ok) a[xn + c * inPlane + at] += gy[o];
        }
        if (ggrid) {
          ggrid[gp] = 0;
          ggrid[gp + 1] = 0;
        }
        continue;
      }
      const x0 = Math.floor(ix);
      const y0 = Math.floor(iy);
      const x1 = x0 + 1;
      const y1 = y0 + 1;
      const wNW = (x1 - ix) * (y1 - iy);
      const wNE = (ix - x0) * (y1 - iy);
      const wSW = (x1 - ix) * (iy - y0);
      const wSE = (ix - x0) * (iy - y0);
      const okNW = inBounds(y0, x0, inH, inW);
      const okNE = inBounds(y0, x1, inH, inW);
      const okSW = inBounds(y1, x0, inH, inW);
      const okSE = inBounds(y1, x1, inH, inW);
      const aNW = y0 * inW + x0;
      const aNE = y0 * inW + x1;
      const aSW = y1 * inW + x0;
      const aSE = y1 * inW + x1;
      let gix = 0;
      let giy = 0;
      for (let c = 0; c < channels; c++) {
        const xc = xn + c * inPlane;
        const o = yn + c * outPlane + p;
        const vNW = okNW ? x[xc + aNW] : 0;
        const vNE = okNE ? x[xc + aNE] : 0;
        const vSW = okSW ? x[xc + aSW] : 0;
        const vSE = okSE ? x[xc + aSE] : 0;
        if (!gy) {
          if (a) a[o] = vNW * wNW + vNE * wNE + vSW * wSW + vSE * wSE;
          continue;
        }
        const g = gy[o];
        if (a) {
          if (okNW) a[xc + aNW] += wNW * g;
          if (okNE) a[xc + aNE] += wNE * g;
          if (okSW) a[xc + aSW] += wSW * g;
          if (okSE) a[xc + aSE] += wSE * g;
        }
        gix += (-vNW * (y1 - iy) + vNE * (y1 - iy) - vSW * (iy - y0) + vSE * (iy - y0)) * g;
        giy += (-vNW * (x1 - ix) - vNE * (ix - x0) + vSW * (x1 - ix) + vSE * (ix - x0)) * g;
      }
      if (ggrid) {
        ggrid[gp] = gxMult * gix;
        ggrid[gp + 1] = gyMult * giy;
      }
    }
  }
}
