/**
 * Pooling over 1, 2 and 3 spatial dims with torch.nn.functional semantics: max and average pooling
 * (padding, dilation for max, ceil mode, countIncludePad, divisorOverride) and adaptive pooling.
 * Max pooling saves the argmax indices; its backward scatters through them (`scatterAdd`).
 */
import { kernels } from '../backend/backend.js';
import { record } from '../tensor/autograd.js';
import { fmt, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { type IntOrTuple, tupleOf, window3 } from './conv.js';
import { adaptiveAvgFilter, applyAxisFilters } from './resample.js';
import { squeeze, unsqueeze } from './shape.js';

export interface MaxPoolOptions {
  /** Defaults to kernelSize. */
  stride?: IntOrTuple | null;
  padding?: IntOrTuple;
  dilation?: IntOrTuple;
  ceilMode?: boolean;
}

export interface AvgPoolOptions {
  /** Defaults to kernelSize. */
  stride?: IntOrTuple | null;
  padding?: IntOrTuple;
  ceilMode?: boolean;
  countIncludePad?: boolean;
  divisorOverride?: number | null;
}

/** (N, C, *spatial) or unbatched (C, *spatial) -> a (N, C, *spatial) view and how to undo it. */
function batched(x: Tensor, nd: number, op: string): [Tensor, (y: Tensor) => Tensor] {
  if (x.dtype !== 'float32') throw new Error(`${op}: input must be float32, got ${x.dtype}`);
  if (x.ndim === nd + 2) return [x, (y) => y];
  if (x.ndim === nd + 1) return [unsqueeze(x, 0), (y) => squeeze(y, 0)];
  const dims = ['L', 'H, W', 'D, H, W'][nd - 1];
  throw new Error(`${op}: expected input (N, C, ${dims}) or unbatched (C, ${dims}), got ${fmt(x.shape)}`);
}

/** torch's pooling_output_shape, with its checks. */
function poolGeometry(
  op: string,
  x: Tensor,
  nd: number,
  kernelSize: IntOrTuple,
  strideOpt: IntOrTuple | null | undefined,
  paddingOpt: IntOrTuple | undefined,
  dilationOpt: IntOrTuple | undefined,
  ceilMode: boolean,
) {
  const inSize = x.shape.slice(2);
  const kernel = tupleOf(kernelSize, nd, 'kernelSize', op, 1);
  const stride = strideOpt == null ? kernel : tupleOf(strideOpt, nd, 'stride', op, 1);
  const padding = tupleOf(paddingOpt ?? 0, nd, 'padding', op);
  const dilation = tupleOf(dilationOpt ?? 1, nd, 'dilation', op, 1);
  padding.forEach((p, i) => {
    if (p > Math.floor(kernel[i] / 2)) {
      throw new Error(`${op}: padding ${fmt(padding)} must be at most half of kernelSize ${fmt(kernel)}`);
    }
  });
  const outSize = inSize.map((s, i) => {
    const span = s + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1 + (ceilMode ? stride[i] - 1 : 0);
    let o = Math.floor(span / stride[i]) + 1;
    // In ceil mode the last window must start inside the input or its leading padding.
    if (ceilMode && (o - 1) * stride[i] >= s + padding[i]) o--;
    return o;
  });
  if (outSize.some((s) => s <= 0)) {
    throw new Error(
      `${op}: kernelSize ${fmt(kernel)} (dilation ${fmt(dilation)}) is larger than the padded input ${fmt(inSize.map((s, i) => s + 2 * padding[i]))} of input ${fmt(x.shape)}`,
    );
  }
  return { win: window3(inSize, outSize, kernel, stride, padding, dilation), outSize };
}

/** Output (planes, ...) from a max over windows with saved flat in-plane indices. */
function maxWithIndices(
  op: string,
  x: Tensor,
  outSize: readonly number[],
  fill: (xd: Float32Array, planes: number, out: Float32Array, indices: Int32Array) => void,
): Tensor {
  const [N, C] = x.shape;
  const planes = N * C;
  const inPlane = sizeOf(x.shape.slice(2));
  const outPlane = sizeOf(outSize);
  const out = new Float32Array(planes * outPlane);
  const indices = new Int32Array(planes * outPlane);
  fill(x.data as Float32Array, planes, out, indices);
  return record(new Tensor(out, [N, C, ...outSize]), op, [x], (g) => {
    const gx = new Float32Array(x.size);
    kernels().scatterAdd(g.data as Float32Array, planes, inPlane, 1, indices, outPlane, gx);
    return [new Tensor(gx, x.shape)];
  });
}

function maxPoolNd(
  nd: number,
  op: string,
  input: Tensor,
  kernelSize: IntOrTuple,
  options: MaxPoolOptions,
): Tensor {
  const [x, unbatch] = batched(input, nd, op);
  const { win, outSize } = poolGeometry(
    op,
    x,
    nd,
    kernelSize,
    options.stride,
    options.padding,
    options.dilation,
    options.ceilMode ?? false,
  );
  return unbatch(
    maxWithIndices(op, x, outSize, (xd, planes, out, indices) =>
      kernels().maxPool(xd, planes, win, out, indices),
    ),
  );
}

/** F.max_pool1d on (N, C, L). */
export function maxPool1d(x: Tensor, kernelSize: IntOrTuple, options: MaxPoolOptions = {}): Tensor {
  return maxPoolNd(1, 'maxPool1d', x, kernelSize, options);
}

/** F.max_pool2d on (N, C, H, W). */
export function maxPool2d(x: Tensor, kernelSize: IntOrTuple, options: MaxPoolOptions = {}): Tensor {
  return maxPoolNd(2, 'maxPool2d', x, kernelSize, options);
}

/** F.max_pool3d on (N, C, D, H, W). */
export function maxPool3d(x: Tensor, kernelSize: IntOrTuple, options: MaxPoolOptions = {}): Tensor {
  return maxPoolNd(3, 'maxPool3d', x, kernelSize, options);
}

function avgPoolNd(
  nd: number,
  op: string,
  input: Tensor,
  kernelSize: IntOrTuple,
  options: AvgPoolOptions,
): Tensor {
  const [x, unbatch] = batched(input, nd, op);
  const { win, outSize } = poolGeometry(
    op,
    x,
    nd,
    kernelSize,
    options.stride,
    options.padding,
    1,
    options.ceilMode ?? false,
  );
  const divisor = options.divisorOverride ?? 0;
  if (divisor !== 0 && !(Number.isInteger(divisor) && divisor > 0)) {
    throw new Error(`${op}: divisorOverride must be a positive int, got ${divisor}`);
  }
  const countIncludePad = options.countIncludePad ?? true;
  const [N, C] = x.shape;
  const planes = N * C;
  const out = new Float32Array(planes * sizeOf(outSize));
  kernels().avgPool(x.data as Float32Array, planes, win, countIncludePad, divisor, out);
  const y = record(new Tensor(out, [N, C, ...outSize]), op, [x], (g) => {
    const gx = new Float32Array(x.size);
    kernels().avgPoolBackward(g.data as Float32Array, planes, win, countIncludePad, divisor, gx);
    return [new Tensor(gx, x.shape)];
  });
  return unbatch(y);
}

/** F.avg_pool1d on (N, C, L). */
export function avgPool1d(x: Tensor, kernelSize: IntOrTuple, options: AvgPoolOptions = {}): Tensor {
  return avgPoolNd(1, 'avgPool1d', x, kernelSize, options);
}

/** F.avg_pool2d on (N, C, H, W). */
export function avgPool2d(x: Tensor, kernelSize: IntOrTuple, options: AvgPoolOptions = {}): Tensor {
  return avgPoolNd(2, 'avgPool2d', x, kernelSize, options);
}

/** F.avg_pool3d on (N, C, D, H, W). */
export function avgPool3d(x: Tensor, kernelSize: IntOrTuple, options: AvgPoolOptions = {}): Tensor {
  return avgPoolNd(3, 'avgPool3d', x, kernelSize, options);
}

/** Adaptive output sizes: a number repeats; null keeps that input dim (torch's None). */
export type AdaptiveSize = number | ReadonlyArray<number | null>;

function adaptiveOut(op: string, x: Tensor, nd: number, outputSize: AdaptiveSize): number[] {
  const inSize = x.shape.slice(2);
  const given = typeof outputSize === 'number' ? new Array<number>(nd).fill(outputSize) : [...outputSize];
  if (given.length !== nd)
    throw new Error(`${op}: outputSize ${JSON.stringify(outputSize)} needs ${nd} entries`);
  const out = given.map((s, i) => (s === null ? inSize[i] : s));
  if (out.some((s) => !Number.isInteger(s) || s <= 0) || inSize.some((s) => s <= 0)) {
    throw new Error(
      `${op}: outputSize ${JSON.stringify(outputSize)} must be positive ints for input ${fmt(x.shape)}`,
    );
  }
  return out;
}

function adaptiveAvgPoolNd(nd: number, op: string, input: Tensor, outputSize: AdaptiveSize): Tensor {
  const [x, unbatch] = batched(input, nd, op);
  const out = adaptiveOut(op, x, nd, outputSize);
  // Averaging a box is separable: average along each axis in turn.
  const filters = x.shape.slice(2).map((s, i) => (s === out[i] ? null : adaptiveAvgFilter(s, out[i])));
  return unbatch(applyAxisFilters(x, filters, op));
}

/** F.adaptive_avg_pool1d on (N, C, L). */
export function adaptiveAvgPool1d(x: Tensor, outputSize: AdaptiveSize): Tensor {
  return adaptiveAvgPoolNd(1, 'adaptiveAvgPool1d', x, outputSize);
}

/** F.adaptive_avg_pool2d on (N, C, H, W). */
export function adaptiveAvgPool2d(x: Tensor, outputSize: AdaptiveSize): Tensor {
  return adaptiveAvgPoolNd(2, 'adaptiveAvgPool2d', x, outputSize);
}

/** F.adaptive_avg_pool3d on (N, C, D, H, W). */
export function adaptiveAvgPool3d(x: Tensor, outputSize: AdaptiveSize): Tensor {
  return adaptiveAvgPoolNd(3, 'adaptiveAvgPool3d', x, outputSize);
}

function adaptiveMaxPoolNd(nd: number, op: string, input: Tensor, outputSize: AdaptiveSize): Tensor {
  const [x, unbatch] = batched(input, nd, op);
  const out = adaptiveOut(op, x, nd, outputSize);
  const lead = new Array<number>(3 - nd).fill(1);
  const in3 = [...lead, ...x.shape.slice(2)];
  const out3 = [...lead, ...out];
  return unbatch(
    maxWithIndices(op, x, out, (xd, planes, o, indices) =>
      kernels().adaptiveMaxPool(xd, planes, in3, out3, o, indices),
    ),
  );
}

/** F.adaptive_max_pool1d on (N, C, L). */
export function adaptiveMaxPool1d(x: Tensor, outputSize: AdaptiveSize): Tensor {
  return adaptiveMaxPoolNd(1, 'adaptiveMaxPool1d', x, outputSize);
}

/** F.adaptive_max_pool2d on (N, C, H, W). */
export function adaptiveMaxPool2d(x: Tensor, outputSize: AdaptiveSize): Tensor {
  return adaptiveMaxPoolNd(2, 'adaptiveMaxPool2d', x, outputSize);
}

/** F.adaptive_max_pool3d on (N, C, D, H, W). */
export function adaptiveMaxPool3d(x: Tensor, outputSize: AdaptiveSize): Tensor {
  return adaptiveMaxPoolNd(3, 'adaptiveMaxPool3d', x, outputSize);
}
