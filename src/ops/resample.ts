/**
 * Resampling with torch.nn.functional semantics: interpolate (nearest, nearest-exact, linear,
 * bilinear, bicubic, trilinear, area; antialiased bilinear/bicubic), affineGrid and gridSample.
 * Interpolation is separable: each mode builds one 1-D filter per spatial axis (an index and a
 * weight per tap, computed like torch's kernels compute them, in float32), and the `resampleAxis`
 * kernel applies them from the last axis to the first, the order torch sums in.
 */
import { kernels } from '../backend/backend.js';
import type { GridPaddingMode, GridSampleMode } from '../backend/js/resample.js';
import { record } from '../tensor/autograd.js';
import { fmt, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { tensor } from './creation.js';
import { matmul } from './matmul.js';
import { reshape, transpose } from './shape.js';

const f32 = Math.fround;

/** A 1-D filter along one axis: out[j] = sum_t weight[j * taps + t] * in[index[j * taps + t]]. */
export interface AxisFilter {
  inLen: number;
  outLen: number;
  taps: number;
  index: Int32Array;
  weight: Float32Array;
}

function makeFilter(inLen: number, outLen: number, taps: number): AxisFilter {
  return {
    inLen,
    outLen,
    taps,
    index: new Int32Array(outLen * taps),
    weight: new Float32Array(outLen * taps),
  };
}

/**
 * Applies one filter per spatial axis of x (N, C, *spatial) (null leaves an axis as is), last axis
 * first, as one differentiable op.
 */
export function applyAxisFilters(x: Tensor, filters: ReadonlyArray<AxisFilter | null>, op: string): Tensor {
  const nd = filters.length;
  const lead = x.ndim - nd;
  const steps: Array<{ axis: number; filter: AxisFilter; outer: number; inner: number }> = [];
  const shape = [...x.shape];
  for (let i = nd - 1; i >= 0; i--) {
    const filter = filters[i];
    if (!filter) continue;
    const axis = lead + i;
    steps.push({
      axis,
      filter,
      outer: sizeOf(shape.slice(0, axis)),
      inner: sizeOf(shape.slice(axis + 1)),
    });
    shape[axis] = filter.outLen;
  }
  let data = x.data as Float32Array;
  for (const { filter: f, outer, inner } of steps) {
    const out = new Float32Array(outer * f.outLen * inner);
    kernels().resampleAxis(data, outer, f.inLen, inner, f.outLen, f.taps, f.index, f.weight, out);
    data = out;
  }
  if (steps.length === 0) data = data.slice();
  return record(new Tensor(data, shape), op, [x], (g) => {
    let gd = g.data as Float32Array;
    for (let s = steps.length - 1; s >= 0; s--) {
      const { filter: f, outer, inner } = steps[s];
      const gx = new Float32Array(outer * f.inLen * inner);
      kernels().resampleAxisBackward(gd, outer, f.inLen, inner, f.outLen, f.taps, f.index, f.weight, gx);
      gd = gx;
    }
    return [new Tensor(steps.length === 0 ? gd.slice() : gd, x.shape)];
  });
}

/** Adaptive average pooling along one axis: cell o averages [floor(o*in/out), ceil((o+1)*in/out)). */
export function adaptiveAvgFilter(inLen: number, outLen: number): AxisFilter {
  let taps = 1;
  for (let o = 0; o < outLen; o++) {
    taps = Math.max(taps, Math.ceil(((o + 1) * inLen) / outLen) - Math.floor((o * inLen) / outLen));
  }
  const f = makeFilter(inLen, outLen, taps);
  for (let o = 0; o < outLen; o++) {
    const start = Math.floor((o * inLen) / outLen);
    const len = Math.ceil(((o + 1) * inLen) / outLen) - start;
    for (let t = 0; t < taps; t++) {
      f.index[o * taps + t] = t < len ? start + t : start;
      f.weight[o * taps + t] = t < len ? 1 / len : 0;
    }
  }
  return f;
}

export type InterpolateMode =
  | 'nearest'
  | 'nearest-exact'
  | 'linear'
  | 'bilinear'
  | 'bicubic'
  | 'trilinear'
  | 'area';

export interface InterpolateOptions {
  size?: number | readonly number[];
  scaleFactor?: number | readonly number[];
  mode?: InterpolateMode;
  alignCorners?: boolean;
  recomputeScaleFactor?: boolean;
  antialias?: boolean;
}

// torch's compute_scales_value / area_pixel_compute_scale, in float32 like its float kernels.
function scaleOf(inLen: number, outLen: number, scale: number | undefined): number {
  return scale !== undefined && scale > 0 ? f32(1 / scale) : f32(inLen / outLen);
}

function areaScale(inLen: number, outLen: number, alignCorners: boolean, scale: number | undefined): number {
  if (alignCorners) return outLen > 1 ? f32((inLen - 1) / (outLen - 1)) : 0;
  return scaleOf(inLen, outLen, scale);
}

function sourceIndex(scale: number, j: number, alignCorners: boolean, cubic: boolean): number {
  if (alignCorners) return f32(scale * j);
  const s = f32(f32(scale * f32(j + 0.5)) - 0.5);
  return !cubic && s < 0 ? 0 : s;
}

function nearestFilter(inLen: number, outLen: number, scale: number | undefined, exact: boolean): AxisFilter {
  const f = makeFilter(inLen, outLen, 1);
  const s = scaleOf(inLen, outLen, scale);
  for (let j = 0; j < outLen; j++) {
    let src: number;
    if (exact) src = Math.floor(f32(f32(j + 0.5) * s));
    else if (outLen === inLen) src = j;
    else if (outLen === 2 * inLen) src = j >> 1;
    else src = Math.floor(f32(j * s));
    f.index[j] = Math.min(src, inLen - 1);
    f.weight[j] = 1;
  }
  return f;
}

function linearFilter(
  inLen: number,
  outLen: number,
  alignCorners: boolean,
  scale: number | undefined,
): AxisFilter {
  const f = makeFilter(inLen, outLen, 2);
  const s = areaScale(inLen, outLen, alignCorners, scale);
  for (let j = 0; j < outLen; j++) {
    const src = sourceIndex(s, j, alignCorners, false);
    const i0 = Math.min(Math.floor(src), inLen - 1);
    const lambda = Math.min(Math.max(f32(src - i0), 0), 1);
    f.index[2 * j] = i0;
    f.index[2 * j + 1] = i0 + (i0 < inLen - 1 ? 1 : 0);
    f.weight[2 * j] = f32(1 - lambda);
    f.weight[2 * j + 1] = lambda;
  }
  return f;
}

function cubicConvolution1(x: number, a: number): number {
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}

function cubicConvolution2(x: number, a: number): number {
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

/** Keys' cubic with A = -0.75 (torch's bicubic), taps clamped at the borders. */
function cubicFilter(
  inLen: number,
  outLen: number,
  alignCorners: boolean,
  scale: number | undefined,
): AxisFilter {
  const A = -0.75;
  const f = makeFilter(inLen, outLen, 4);
  const s = areaScale(inLen, outLen, alignCorners, scale);
  for (let j = 0; j < outLen; j++) {
    const src = sourceIndex(s, j, alignCorners, true);
    const i = Math.floor(src);
    const t = Math.min(Math.max(f32(src - i), 0), 1);
    const w = [
      cubicConvolution2(t + 1, A),
      cubicConvolution1(t, A),
      cubicConvolution1(1 - t, A),
      cubicConvolution2(2 - t, A),
    ];
    for (let k = 0; k < 4; k++) {
      f.index[4 * j + k] = Math.min(Math.max(i - 1 + k, 0), inLen - 1);
      f.weight[4 * j + k] = w[k];
    }
  }
  return f;
}

/**
 * torch's antialiased resampling (_upsample_bilinear2d_aa / _upsample_bicubic2d_aa): a triangle or
 * Keys cubic (A = -0.5, as PIL) filter stretched by the scale when downsampling, each output's
 * weights normalized to sum 1 over the taps inside the input.
 */
function antialiasFilter(
  inLen: number,
  outLen: number,
  cubic: boolean,
  alignCorners: boolean,
  scale: number | undefined,
): AxisFilter {
  const interpSize = cubic ? 4 : 2;
  const s = areaScale(inLen, outLen, alignCorners, scale);
  const support = s >= 1 ? interpSize * 0.5 * s : interpSize * 0.5;
  const invScale = s >= 1 ? 1 / s : 1;
  const filter = (x: number): number => {
    const ax = Math.abs(x);
    if (!cubic) return ax < 1 ? 1 - ax : 0;
    if (ax < 1) return cubicConvolution1(ax, -0.5);
    if (ax < 2) return cubicConvolution2(ax, -0.5);
    return 0;
  };
  // torch truncates toward zero here (static_cast<int64_t>), not floor.
  const ranges = Array.from({ length: outLen }, (_, j) => {
    const center = s * (j + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    return { center, xmin, xsize: Math.min(Math.trunc(center + support + 0.5), inLen) - xmin };
  });
  const taps = ranges.reduce((m, r) => Math.max(m, r.xsize), 1);
  const f = makeFilter(inLen, outLen, taps);
  ranges.forEach(({ center, xmin, xsize }, j) => {
    const ws: number[] = [];
    let total = 0;
    for (let t = 0; t < xsize; t++) {
      const w = filter((t + xmin - center + 0.5) * invScale);
      ws.push(w);
      total += w;
    }
    for (let t = 0; t < taps; t++) {
      const inRange = t < xsize;
      f.index[j * taps + t] = inRange ? xmin + t : Math.min(xmin, inLen - 1);
      f.weight[j * taps + t] = inRange ? (total !== 0 ? ws[t] / total : ws[t]) : 0;
    }
  });
  return f;
}

const MODE_RANK: Record<InterpolateMode, number | null> = {
  nearest: null,
  'nearest-exact': null,
  area: null,
  linear: 1,
  bilinear: 2,
  bicubic: 2,
  trilinear: 3,
};

/** F.interpolate on (N, C, *spatial) with 1 to 3 spatial dims, torch's defaults (mode 'nearest'). */
export function interpolate(x: Tensor, options: InterpolateOptions): Tensor {
  const op = 'interpolate';
  const mode = options.mode ?? 'nearest';
  if (!(mode in MODE_RANK)) throw new Error(`${op}: unknown mode '${mode}'`);
  if (x.dtype !== 'float32') throw new Error(`${op}: input must be float32, got ${x.dtype}`);
  const nd = x.ndim - 2;
  if (nd < 1 || nd > 3)
    throw new Error(`${op}: expected input (N, C, *spatial) with 1 to 3 spatial dims, got ${fmt(x.shape)}`);
  const rank = MODE_RANK[mode];
  if (rank !== null && rank !== nd) {
    throw new Error(
      `${op}: mode '${mode}' needs ${rank} spatial dims (a ${rank + 2}-D input), got ${fmt(x.shape)}`,
    );
  }
  const linearish = mode === 'linear' || mode === 'bilinear' || mode === 'bicubic' || mode === 'trilinear';
  if (options.alignCorners !== undefined && !linearish) {
    throw new Error(
      `${op}: alignCorners only applies to linear, bilinear, bicubic and trilinear modes, not '${mode}'`,
    );
  }
  const antialias = options.antialias ?? false;
  if (antialias && mode !== 'bilinear' && mode !== 'bicubic') {
    throw new Error(`${op}: antialias needs mode 'bilinear' or 'bicubic', got '${mode}'`);
  }
  const alignCorners = options.alignCorners ?? false;
  const inSize = x.shape.slice(2);
  if ((options.size === undefined) === (options.scaleFactor === undefined)) {
    throw new Error(`${op}: give exactly one of size and scaleFactor`);
  }
  let outSize: number[];
  let scales: Array<number | undefined> = new Array(nd).fill(undefined);
  if (options.size !== undefined) {
    const s = options.size;
    outSize = typeof s === 'number' ? new Array<number>(nd).fill(s) : [...s];
    if (outSize.length !== nd || outSize.some((v) => !Number.isInteger(v) || v <= 0)) {
      throw new Error(
        `${op}: size ${JSON.stringify(s)} must be ${nd} positive ints for input ${fmt(x.shape)}`,
      );
    }
  } else {
    const sf = options.scaleFactor as number | readonly number[];
    const factors = typeof sf === 'number' ? new Array<number>(nd).fill(sf) : [...sf];
    if (factors.length !== nd || factors.some((v) => !(v > 0))) {
      throw new Error(
        `${op}: scaleFactor ${JSON.stringify(sf)} must be ${nd} positive numbers for input ${fmt(x.shape)}`,
      );
    }
    outSize = inSize.map((s, i) => Math.floor(s * factors[i]));
    if (outSize.some((v) => v <= 0)) {
      throw new Error(
        `${op}: scaleFactor ${JSON.stringify(sf)} gives an empty output for input ${fmt(x.shape)}`,
      );
    }
    // torch keeps the given factor for the source coordinates unless asked to recompute it.
    if (!options.recomputeScaleFactor) scales = factors;
  }
  const filters = inSize.map((inLen, i) => {
    const outLen = outSize[i];
    const scale = scales[i];
    if (antialias) return antialiasFilter(inLen, outLen, mode === 'bicubic', alignCorners, scale);
    if (outLen === inLen && (mode === 'nearest' || mode === 'nearest-exact' || mode === 'area')) return null;
    switch (mode) {
      case 'nearest':
      case 'nearest-exact':
        return nearestFilter(inLen, outLen, scale, mode === 'nearest-exact');
      case 'area':
        return adaptiveAvgFilter(inLen, outLen);
      case 'bicubic':
        return cubicFilter(inLen, outLen, alignCorners, scale);
      default:
        return linearFilter(inLen, outLen, alignCorners, scale);
    }
  });
  return applyAxisFilters(x, filters, op);
}

/** Grid coordinates of torch's affine_grid: n points spanning [-1, 1] (pixel centers unless aligned). */
function baseCoords(n: number, alignCorners: boolean): number[] {
  if (n <= 1) return [0];
  return Array.from({ length: n }, (_, i) => {
    const v = -1 + (2 * i) / (n - 1);
    return alignCorners ? v : (v * (n - 1)) / n;
  });
}

/**
 * F.affine_grid: theta (N, 2, 3) with size [N, C, H, W] -> grid (N, H, W, 2), or theta (N, 3, 4) with
 * size [N, C, D, H, W] -> grid (N, D, H, W, 3). Differentiable in theta.
 */
export function affineGrid(
  theta: Tensor,
  size: readonly number[],
  options: { alignCorners?: boolean } = {},
): Tensor {
  const op = 'affineGrid';
  const alignCorners = options.alignCorners ?? false;
  const nd = size.length - 2;
  if (nd !== 2 && nd !== 3)
    throw new Error(`${op}: size must be [N, C, H, W] or [N, C, D, H, W], got ${fmt(size)}`);
  const N = size[0];
  if (theta.ndim !== 3 || theta.shape[0] !== N || theta.shape[1] !== nd || theta.shape[2] !== nd + 1) {
    throw new Error(
      `${op}: theta must be (${N}, ${nd}, ${nd + 1}) for size ${fmt(size)}, got ${fmt(theta.shape)}`,
    );
  }
  const spatial = size.slice(2);
  const axes = spatial.map((n) => baseCoords(n, alignCorners));
  // Homogeneous points (x, y[, z], 1) in row-major order of the spatial dims; x runs along the last dim.
  const points = sizeOf(spatial);
  const base = new Float32Array(points * (nd + 1));
  for (let p = 0; p < points; p++) {
    let rem = p;
    const coords = new Array<number>(nd);
    for (let d = nd - 1; d >= 0; d--) {
      coords[d] = axes[d][rem % spatial[d]];
      rem = Math.floor(rem / spatial[d]);
    }
    for (let k = 0; k < nd; k++) base[p * (nd + 1) + k] = coords[nd - 1 - k];
    base[p * (nd + 1) + nd] = 1;
  }
  const grid = matmul(tensor(base, [points, nd + 1]), transpose(theta, 1, 2)); // (N, points, nd)
  return reshape(grid, [N, ...spatial, nd]);
}

export interface GridSampleOptions {
  mode?: GridSampleMode;
  paddingMode?: GridPaddingMode;
  alignCorners?: boolean;
}

/**
 * F.grid_sample for 4-D input: x (N, C, H, W) sampled at grid (N, Ho, Wo, 2) of (x, y) in [-1, 1]
 * -> (N, C, Ho, Wo). Differentiable in x and in grid (bilinear).
 */
export function gridSample(x: Tensor, grid: Tensor, options: GridSampleOptions = {}): Tensor {
  const op = 'gridSample';
  const mode = options.mode ?? 'bilinear';
  const padding = options.paddingMode ?? 'zeros';
  const alignCorners = options.alignCorners ?? false;
  if (mode !== 'bilinear' && mode !== 'nearest')
    throw new Error(`${op}: mode must be 'bilinear' or 'nearest', got '${mode}'`);
  if (padding !== 'zeros' && padding !== 'border' && padding !== 'reflection') {
    throw new Error(`${op}: paddingMode must be 'zeros', 'border' or 'reflection', got '${padding}'`);
  }
  if (x.ndim !== 4) throw new Error(`${op}: expected input (N, C, H, W), got ${fmt(x.shape)}`);
  if (x.dtype !== 'float32' || grid.dtype !== 'float32')
    throw new Error(`${op}: input and grid must be float32`);
  const [N, C, H, W] = x.shape;
  if (grid.ndim !== 4 || grid.shape[0] !== N || grid.shape[3] !== 2) {
    throw new Error(
      `${op}: grid must be (${N}, Ho, Wo, 2) for input ${fmt(x.shape)}, got ${fmt(grid.shape)}`,
    );
  }
  const [, Ho, Wo] = grid.shape;
  const xd = x.data as Float32Array;
  const gd = grid.data as Float32Array;
  const out = new Float32Array(N * C * Ho * Wo);
  kernels().gridSample2d(xd, gd, N, C, H, W, Ho, Wo, mode, padding, alignCorners, out);
  return record(new Tensor(out, [N, C, Ho, Wo]), op, [x, grid], (g) => {
    const gx = x.requiresGrad ? new Float32Array(x.size) : null;
    const gg = grid.requiresGrad ? new Float32Array(grid.size) : null;
    kernels().gridSample2dBackward(
      xd,
      gd,
      g.data as Float32Array,
      N,
      C,
      H,
      W,
      Ho,
      Wo,
      mode,
      padding,
      alignCorners,
      gx,
      gg,
    );
    return [gx ? new Tensor(gx, x.shape) : null, gg ? new Tensor(gg, grid.shape) : null];
  });
}
