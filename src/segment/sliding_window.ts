/**
 * Sliding-window inference (MONAI's sliding_window_inference) for 2D and 3D inputs larger than the
 * size a model was trained at: the input is padded symmetrically up to the window where it is
 * smaller, windows start every roi·(1 - overlap) pixels with the last one flush with the far edge,
 * the predictor sees swBatchSize windows at a time, and the outputs are blended with an importance
 * map (constant, or a Gaussian of sigma = sigmaScale · roi centred on the window) and divided by the
 * summed importance. One difference: the Gaussian is centred at (roi - 1) / 2, symmetric for even
 * windows too (MONAI centres it on pixel roi / 2).
 */
import { noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export interface SlidingWindowOptions {
  /** Spatial window size (what the model takes). */
  roiSize: readonly number[];
  /** Windows per predictor call (default 1). */
  swBatchSize?: number;
  /** Fraction of a window shared with its neighbour, in [0, 1) (default 0.25). */
  overlap?: number;
  /** Importance of each output pixel in the blend (default 'constant'). */
  mode?: 'constant' | 'gaussian';
  sigmaScale?: number;
  /** Value of the padding where the input is smaller than the window (default 0). */
  padValue?: number;
}

/** Window start offsets along one axis (MONAI's dense_patch_slices). */
export function windowStarts(size: number, roi: number, overlap: number): number[] {
  const interval = roi === size ? roi : Math.max(1, Math.floor(roi * (1 - overlap)));
  const starts: number[] = [];
  for (let s = 0; ; s += interval) {
    starts.push(Math.min(s, size - roi));
    if (s + roi >= size) break;
  }
  return starts;
}

/** The blending weights of one window, (roi...) row-major, max 1, min clamped to 1e-3 (as MONAI). */
export function importanceMap(
  roi: readonly number[],
  mode: 'constant' | 'gaussian',
  sigmaScale = 0.125,
): Float32Array {
  const size = roi.reduce((a, b) => a * b, 1);
  const map = new Float32Array(size);
  if (mode === 'constant') return map.fill(1);
  if (mode !== 'gaussian')
    throw new Error(`importanceMap: mode must be 'constant' or 'gaussian', got '${mode}'`);
  const axes = roi.map((n) => {
    const sigma = sigmaScale * n;
    const c = (n - 1) / 2;
    return Float64Array.from({ length: n }, (_, i) => Math.exp(-((i - c) ** 2) / (2 * sigma * sigma)));
  });
  let max = 0;
  for (let i = 0; i < size; i++) {
    let rest = i;
    let w = 1;
    for (let a = roi.length - 1; a >= 0; a--) {
      w *= axes[a][rest % roi[a]];
      rest = Math.floor(rest / roi[a]);
    }
    map[i] = w;
    max = Math.max(max, w);
  }
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < size; i++) {
    map[i] /= max;
    min = Math.min(min, map[i]);
  }
  const floor = Math.max(min, 1e-3);
  for (let i = 0; i < size; i++) map[i] = Math.max(map[i], floor);
  return map;
}

/**
 * Calls fn(offset, row) for each row (run along the last axis) of the box at `start` of size `extent`
 * inside a row-major array of `shape`; `row` counts the box's rows in row-major order.
 */
function forEachRow(
  shape: readonly number[],
  start: readonly number[],
  extent: readonly number[],
  fn: (offset: number, row: number) => void,
): void {
  const nd = shape.length;
  const rows = extent.slice(0, nd - 1).reduce((a, b) => a * b, 1);
  for (let r = 0; r < rows; r++) {
    let rest = r;
    let offset = start[nd - 1];
    let stride = shape[nd - 1];
    for (let a = nd - 2; a >= 0; a--) {
      offset += (start[a] + (rest % extent[a])) * stride;
      rest = Math.floor(rest / extent[a]);
      stride *= shape[a];
    }
    fn(offset, r);
  }
}

/**
 * Runs `predictor` over windows of `input` (N, C, ...spatial; 2 or 3 spatial dims) and blends its
 * (n, K, ...roi) outputs into (N, K, ...spatial). Runs without recording gradients.
 */
export function slidingWindowInference(
  input: Tensor,
  predictor: (windows: Tensor) => Tensor,
  options: SlidingWindowOptions,
): Tensor {
  const op = 'slidingWindowInference';
  const {
    roiSize,
    swBatchSize = 1,
    overlap = 0.25,
    mode = 'constant',
    sigmaScale = 0.125,
    padValue = 0,
  } = options;
  const nd = input.ndim - 2;
  if (input.dtype !== 'float32' || nd < 2 || nd > 3) {
    throw new Error(
      `${op}: input must be float32 (N, C, H, W) or (N, C, D, H, W), got ${input.dtype} ${fmt(input.shape)}`,
    );
  }
  if (roiSize.length !== nd || roiSize.some((r) => !Number.isInteger(r) || r < 1)) {
    throw new Error(
      `${op}: roiSize must be ${nd} positive ints for input ${fmt(input.shape)}, got [${roiSize}]`,
    );
  }
  if (!(overlap >= 0 && overlap < 1)) throw new Error(`${op}: overlap must be in [0, 1), got ${overlap}`);
  if (!(Number.isInteger(swBatchSize) && swBatchSize >= 1)) {
    throw new Error(`${op}: swBatchSize must be a positive integer, got ${swBatchSize}`);
  }
  const [N, C, ...spatial] = input.shape;
  const last = spatial[nd - 1];
  const inPlane = spatial.reduce((a, b) => a * b, 1);
  // Symmetric padding up to the window where the input is smaller.
  const padBefore = spatial.map((s, i) => Math.floor(Math.max(roiSize[i] - s, 0) / 2));
  const padded = spatial.map((s, i) => Math.max(s, roiSize[i]));
  const paddedPlane = padded.reduce((a, b) => a * b, 1);
  const roiVolume = roiSize.reduce((a, b) => a * b, 1);
  const rowLen = roiSize[nd - 1];
  let windows: number[][] = [[]];
  for (const [i, s] of padded.entries()) {
    windows = windows.flatMap((w) => windowStarts(s, roiSize[i], overlap).map((start) => [...w, start]));
  }
  const importance = importanceMap(roiSize, mode, sigmaScale);

  return noGrad(() => {
    const src = input.data as Float32Array;
    const source = new Float32Array(N * C * paddedPlane).fill(padValue);
    for (let nc = 0; nc < N * C; nc++) {
      forEachRow(padded, padBefore, spatial, (offset, row) => {
        source.set(
          src.subarray(nc * inPlane + row * last, nc * inPlane + (row + 1) * last),
          nc * paddedPlane + offset,
        );
      });
    }
    const weight = new Float32Array(paddedPlane);
    for (const start of windows) {
      forEachRow(padded, start, roiSize, (offset, row) => {
        for (let j = 0; j < rowLen; j++) weight[offset + j] += importance[row * rowLen + j];
      });
    }
    let K = -1;
    let out = new Float32Array(0);
    for (let n = 0; n < N; n++) {
      for (let w0 = 0; w0 < windows.length; w0 += swBatchSize) {
        const group = windows.slice(w0, w0 + swBatchSize);
        const batch = new Float32Array(group.length * C * roiVolume);
        group.forEach((start, g) => {
          for (let c = 0; c < C; c++) {
            const plane = (n * C + c) * paddedPlane;
            const base = (g * C + c) * roiVolume;
            forEachRow(padded, start, roiSize, (offset, row) => {
              batch.set(source.subarray(plane + offset, plane + offset + rowLen), base + row * rowLen);
            });
          }
        });
        const pred = predictor(new Tensor(batch, [group.length, C, ...roiSize]));
        const expected = [group.length, pred.shape[1], ...roiSize];
        if (
          pred.dtype !== 'float32' ||
          pred.ndim !== nd + 2 ||
          pred.shape.some((s, i) => s !== expected[i])
        ) {
          throw new Error(
            `${op}: the predictor must return float32 (${group.length}, K, ${roiSize.join(', ')}) for ${group.length} windows, got ${pred.dtype} ${fmt(pred.shape)}`,
          );
        }
        if (K < 0) {
          K = pred.shape[1];
          out = new Float32Array(N * K * paddedPlane);
        } else if (pred.shape[1] !== K) {
          throw new Error(`${op}: the predictor returned ${pred.shape[1]} channels after ${K}`);
        }
        const pd = pred.data as Float32Array;
        group.forEach((start, g) => {
          for (let k = 0; k < K; k++) {
            const base = (g * K + k) * roiVolume;
            const dst = (n * K + k) * paddedPlane;
            forEachRow(padded, start, roiSize, (offset, row) => {
              for (let j = 0; j < rowLen; j++) {
                out[dst + offset + j] += pd[base + row * rowLen + j] * importance[row * rowLen + j];
              }
            });
          }
        });
      }
    }
    // Divide by the summed importance and crop the padding away.
    const result = new Float32Array(N * K * inPlane);
    for (let nk = 0; nk < N * K; nk++) {
      forEachRow(padded, padBefore, spatial, (offset, row) => {
        for (let j = 0; j < last; j++) {
          result[nk * inPlane + row * last + j] = out[nk * paddedPlane + offset + j] / weight[offset + j];
        }
      });
    }
    return new Tensor(result, [N, K, ...spatial]);
  });
}
