/**
 * Convolutions over 1, 2 and 3 spatial dims (torch.nn.functional semantics): conv as im2col + GEMM
 * (one GEMM per image covering all groups, no im2col at all for 1x1 stride-1 convs), a direct kernel
 * for depthwise convs, transposed conv as GEMM + col2im, and unfold/fold/pixelShuffle.
 */
import { kernels } from '../backend/backend.js';
import type { Window } from '../backend/js/conv.js';
import { record } from '../tensor/autograd.js';
import { emptyFloat32 } from '../tensor/dtype.js';
import { fmt, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { permute, reshape, squeeze, unsqueeze } from './shape.js';

export type IntOrTuple = number | readonly number[];

export interface ConvOptions {
  stride?: IntOrTuple;
  /** Zero padding on both sides per dim, or 'same' (stride 1 only) / 'valid' (no padding). */
  padding?: IntOrTuple | 'same' | 'valid';
  dilation?: IntOrTuple;
  groups?: number;
}

export interface ConvTransposeOptions {
  stride?: IntOrTuple;
  padding?: IntOrTuple;
  outputPadding?: IntOrTuple;
  dilation?: IntOrTuple;
  groups?: number;
}

/** `v` as `n` ints (a single number repeats), checked against `min`. */
export function tupleOf(v: IntOrTuple, n: number, what: string, op: string, min = 0): number[] {
  const t = typeof v === 'number' ? new Array<number>(n).fill(v) : [...v];
  if (t.length !== n || t.some((x) => !Number.isInteger(x) || x < min)) {
    throw new Error(`${op}: ${what} must be an int >= ${min} or ${n} of them, got ${JSON.stringify(v)}`);
  }
  return t;
}

/** Pads per-dim geometry to the kernels' three spatial dims (leading dims of size 1). */
export function window3(
  inSize: readonly number[],
  outSize: readonly number[],
  kernel: readonly number[],
  stride: readonly number[],
  padding: readonly number[],
  dilation: readonly number[],
): Window {
  const lead = 3 - inSize.length;
  const pad = (a: readonly number[], fill: number) => [...new Array<number>(lead).fill(fill), ...a];
  return {
    inSize: pad(inSize, 1),
    outSize: pad(outSize, 1),
    kernel: pad(kernel, 1),
    stride: pad(stride, 1),
    padding: pad(padding, 0),
    dilation: pad(dilation, 1),
  };
}

function requireFloat(t: Tensor, name: string, op: string): void {
  if (t.dtype !== 'float32') throw new Error(`${op}: ${name} must be float32, got ${t.dtype}`);
}

/** Accepts (N, C, *spatial) or unbatched (C, *spatial); returns the batched view and how to undo it. */
function batched(x: Tensor, nd: number, op: string): [Tensor, (y: Tensor) => Tensor] {
  if (x.ndim === nd + 2) return [x, (y) => y];
  if (x.ndim === nd + 1) return [unsqueeze(x, 0), (y) => squeeze(y, 0)];
  const dims = ['L', 'H, W', 'D, H, W'][nd - 1];
  throw new Error(`${op}: expected input (N, C, ${dims}) or unbatched (C, ${dims}), got ${fmt(x.shape)}`);
}

function addBiasPlanes(
  out: Float32Array,
  bias: Float32Array,
  batch: number,
  channels: number,
  plane: number,
): void {
  const shape = [batch, channels, plane];
  kernels().binary('add', out, [channels * plane, plane, 1], bias, [0, 1, 0], out, shape);
}

/** d(loss)/d(bias) of a conv: gy (N, C, L) summed over N and L. */
function biasGrad(gy: Float32Array, batch: number, channels: number, plane: number): Tensor {
  const perImage = new Float32Array(batch * channels);
  kernels().reduce('sum', gy, batch * channels, plane, 1, perImage);
  const gb = new Float32Array(channels);
  kernels().reduce('sum', perImage, 1, batch, channels, gb);
  return new Tensor(gb, [channels]);
}

/** Images per chunk of the wide conv path, so its column buffers stay under ~64 MB. */
const WIDE_CHUNK_FLOATS = 1 << 24;

/**
 * A groups=1 convolution as one GEMM over a chunk of images: the columns of every image side by side
 * (im2colBatch), (K, n*L) with K = Cin * prod(kernel), so small feature maps (L = 1..49 in a ResNet's later stages)
 * still make one well-shaped GEMM instead of one tiny GEMM per image. The backward reuses the forward's
 * columns when one chunk holds the whole batch, and recomputes them per chunk otherwise (so memory stays
 * bounded by one chunk).
 */
function convWide(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  win: Window,
  outShape: number[],
  parents: Tensor[],
  op: string,
): Tensor {
  const [N, Cin] = x.shape;
  const Cout = weight.shape[0];
  const taps = sizeOf(weight.shape.slice(2));
  const K = Cin * taps;
  const L = sizeOf(win.outSize);
  const Lin = sizeOf(win.inSize);
  const pointwise = taps === 1 && win.stride.every((v) => v === 1) && win.padding.every((v) => v === 0);
  const xd = x.data as Float32Array;
  const wd = weight.data as Float32Array;
  const chunk = Math.max(1, Math.min(N, Math.floor(WIDE_CHUNK_FLOATS / Math.max(1, (K + Cout) * L))));
  const k = kernels();
  // (n, K, L) <-> (K, n, L): the layout change between per-image blocks and one wide matrix.
  const toWide = (src: Float32Array, rows: number, n: number, dst: Float32Array) =>
    k.copyStrided(src, 0, [L, rows * L, 1], [rows, n, L], dst, 0, [n * L, L, 1]);
  const fromWide = (src: Float32Array, rows: number, n: number, dst: Float32Array, dstOffset: number) =>
    k.copyStrided(src, 0, [n * L, L, 1], [rows, n, L], dst, dstOffset, [L, rows * L, 1]);
  // Columns of images [n0, n0 + n) as a (K, n*L) matrix.
  const wideColumns = (n0: number, n: number, wide: Float32Array) => {
    const xs = xd.subarray(n0 * Cin * Lin, (n0 + n) * Cin * Lin);
    if (pointwise) toWide(xs, K, n, wide);
    else k.im2colBatch(xs, n, Cin, win, wide);
  };
  const wide = emptyFloat32(chunk * K * L);
  const outWide = emptyFloat32(chunk * Cout * L);
  const out = emptyFloat32(N * Cout * L);
  for (let n0 = 0; n0 < N; n0 += chunk) {
    const n = Math.min(chunk, N - n0);
    wideColumns(n0, n, wide);
    // (Cout, n*L) = (Cout, K) @ (K, n*L)
    k.gemm({ a: wd, b: wide, c: outWide, batch: 1, m: Cout, n: n * L, k: K });
    fromWide(outWide, Cout, n, out, n0 * Cout * L);
  }
  if (bias) addBiasPlanes(out, bias.data as Float32Array, N, Cout, L);
  return record(new Tensor(out, outShape), op, parents, (g) => {
    const gyd = g.data as Float32Array;
    // gx accumulates (col2imBatch); the rest is written in full.
    const gw = weight.requiresGrad ? emptyFloat32(weight.size) : null;
    const gx = x.requiresGrad ? new Float32Array(x.size) : null;
    const gyWide = emptyFloat32(chunk * Cout * L);
    const gWide = gx ? emptyFloat32(chunk * K * L) : null;
    for (let n0 = 0; n0 < N; n0 += chunk) {
      const n = Math.min(chunk, N - n0);
      toWide(gyd.subarray(n0 * Cout * L, (n0 + n) * Cout * L), Cout, n, gyWide);
      if (gw) {
        // One chunk holds the whole batch: the forward's columns are still in `wide`.
        if (chunk < N) wideColumns(n0, n, wide);
        // (Cout, K) += (Cout, n*L) @ (K, n*L)^T
        k.gemm({
          a: gyWide,
          b: wide,
          c: gw,
          batch: 1,
          m: Cout,
          n: K,
          k: n * L,
          transB: true,
          beta: n0 === 0 ? 0 : 1,
        });
      }
      if (gx && gWide) {
        // (K, n*L) = (Cout, K)^T @ (Cout, n*L)
        k.gemm({ a: wd, b: gyWide, c: gWide, batch: 1, m: K, n: n * L, k: Cout, transA: true });
        if (pointwise) fromWide(gWide, K, n, gx, n0 * Cin * Lin);
        else k.col2imBatch(gWide, n, Cin, win, gx.subarray(n0 * Cin * Lin, (n0 + n) * Cin * Lin));
      }
    }
    return [
      gx ? new Tensor(gx, x.shape) : null,
      gw ? new Tensor(gw, weight.shape) : null,
      bias?.requiresGrad ? biasGrad(gyd, N, Cout, L) : null,
    ];
  });
}

function convNd(
  nd: number,
  op: string,
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  options: ConvOptions,
): Tensor {
  const [x, unbatch] = batched(input, nd, op);
  requireFloat(x, 'input', op);
  requireFloat(weight, 'weight', op);
  const groups = options.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1)
    throw new Error(`${op}: groups must be a positive int, got ${groups}`);
  if (weight.ndim !== nd + 2) {
    throw new Error(`${op}: weight must be (Cout, Cin/groups${', k'.repeat(nd)}), got ${fmt(weight.shape)}`);
  }
  const [N, Cin] = x.shape;
  const [Cout, CinG] = weight.shape;
  if (CinG * groups !== Cin) {
    throw new Error(
      `${op}: input ${fmt(x.shape)} has ${Cin} channels but weight ${fmt(weight.shape)} with groups=${groups} expects ${CinG * groups}`,
    );
  }
  if (Cout % groups !== 0) {
    throw new Error(
      `${op}: weight ${fmt(weight.shape)} has ${Cout} output channels, not divisible by groups=${groups}`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== Cout)) {
    throw new Error(
      `${op}: bias ${fmt(bias.shape)} does not match ${Cout} output channels of weight ${fmt(weight.shape)}`,
    );
  }
  const inSize = x.shape.slice(2);
  const kernel = weight.shape.slice(2);
  const stride = tupleOf(options.stride ?? 1, nd, 'stride', op, 1);
  const dilation = tupleOf(options.dilation ?? 1, nd, 'dilation', op, 1);
  const padOpt = options.padding ?? 0;
  let padding: number[];
  let outSize: number[];
  if (padOpt === 'same') {
    if (stride.some((s) => s !== 1))
      throw new Error(`${op}: padding='same' needs stride 1, got stride ${fmt(stride)}`);
    // torch puts the odd unit of padding on the trailing side.
    padding = kernel.map((k, i) => Math.floor((dilation[i] * (k - 1)) / 2));
    outSize = [...inSize];
  } else {
    padding = padOpt === 'valid' ? new Array<number>(nd).fill(0) : tupleOf(padOpt, nd, 'padding', op);
    outSize = inSize.map(
      (s, i) => Math.floor((s + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i]) + 1,
    );
  }
  if (outSize.some((s) => s <= 0)) {
    throw new Error(
      `${op}: kernel ${fmt(kernel)} (dilation ${fmt(dilation)}) is larger than the padded input ${fmt(inSize.map((s, i) => s + 2 * padding[i]))} of input ${fmt(x.shape)}`,
    );
  }
  const win = window3(inSize, outSize, kernel, stride, padding, dilation);
  const L = sizeOf(outSize);
  const Lin = sizeOf(inSize);
  const xd = x.data as Float32Array;
  const wd = weight.data as Float32Array;
  const bd = bias ? (bias.data as Float32Array) : null;
  const outShape = [N, Cout, ...outSize];
  const parents = bias ? [x, weight, bias] : [x, weight];

  if (groups === Cin && groups > 1) {
    const multiplier = Cout / Cin;
    const out = emptyFloat32(N * Cout * L);
    kernels().depthwiseConv(xd, wd, bd, N, Cin, multiplier, win, out);
    const y = record(new Tensor(out, outShape), op, parents, (g) => {
      const gyd = g.data as Float32Array;
      const gx = x.requiresGrad ? new Float32Array(x.size) : null;
      const gw = weight.requiresGrad ? new Float32Array(weight.size) : null;
      kernels().depthwiseConvBackward(xd, wd, gyd, N, Cin, multiplier, win, gx, gw);
      return [
        gx ? new Tensor(gx, x.shape) : null,
        gw ? new Tensor(gw, weight.shape) : null,
        bias?.requiresGrad ? biasGrad(gyd, N, Cout, L) : null,
      ];
    });
    return unbatch(y);
  }

  if (groups === 1) return unbatch(convWide(x, weight, bias, win, outShape, parents, op));

  const CoutG = Cout / groups;
  const K = CinG * sizeOf(kernel); // GEMM depth per group
  // A 1x1 stride-1 unpadded conv reads the input itself as its column matrix.
  const pointwise =
    kernel.every((k) => k === 1) && stride.every((s) => s === 1) && padding.every((p) => p === 0);
  const cols = pointwise ? null : new Float32Array(Cin * sizeOf(kernel) * L);
  const columnsOf = (n: number): Float32Array => {
    const xn = xd.subarray(n * Cin * Lin, (n + 1) * Cin * Lin);
    if (!cols) return xn;
    kernels().im2col(xn, Cin, win, cols);
    return cols;
  };
  const out = new Float32Array(N * Cout * L);
  if (bd) addBiasPlanes(out, bd, N, Cout, L);
  for (let n = 0; n < N; n++) {
    // (G, CoutG, L) = (G, CoutG, K) @ (G, K, L)
    kernels().gemm({
      a: wd,
      b: columnsOf(n),
      c: out.subarray(n * Cout * L, (n + 1) * Cout * L),
      batch: groups,
      m: CoutG,
      n: L,
      k: K,
      strideA: CoutG * K,
      strideB: K * L,
      strideC: CoutG * L,
      beta: bd ? 1 : 0,
    });
  }
  const y = record(new Tensor(out, outShape), op, parents, (g) => {
    const gyd = g.data as Float32Array;
    const gw = weight.requiresGrad ? new Float32Array(weight.size) : null;
    const gx = x.requiresGrad ? new Float32Array(x.size) : null;
    const gcols = gx && cols ? new Float32Array(cols.length) : null;
    for (let n = 0; n < N; n++) {
      const gyn = gyd.subarray(n * Cout * L, (n + 1) * Cout * L);
      if (gw) {
        // (G, CoutG, K) += (G, CoutG, L) @ (G, K, L)^T
        kernels().gemm({
          a: gyn,
          b: columnsOf(n),
          c: gw,
          batch: groups,
          m: CoutG,
          n: K,
          k: L,
          transB: true,
          strideA: CoutG * L,
          strideB: K * L,
          strideC: CoutG * K,
          beta: n === 0 ? 0 : 1,
        });
      }
      if (gx) {
        const gxn = gx.subarray(n * Cin * Lin, (n + 1) * Cin * Lin);
        // (G, K, L) = (G, CoutG, K)^T @ (G, CoutG, L)
        kernels().gemm({
          a: wd,
          b: gyn,
          c: gcols ?? gxn,
          batch: groups,
          m: K,
          n: L,
          k: CoutG,
          transA: true,
          strideA: CoutG * K,
          strideB: CoutG * L,
          strideC: K * L,
        });
        if (gcols) kernels().col2im(gcols, Cin, win, gxn);
      }
    }
    return [
      gx ? new Tensor(gx, x.shape) : null,
      gw ? new Tensor(gw, weight.shape) : null,
      bias?.requiresGrad ? biasGrad(gyd, N, Cout, L) : null,
    ];
  });
  return unbatch(y);
}

/** F.conv1d: x (N, Cin, L), weight (Cout, Cin/groups, k). */
export function conv1d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvOptions = {}): Tensor {
  return convNd(1, 'conv1d', x, weight, bias, options);
}

/** F.conv2d: x (N, Cin, H, W), weight (Cout, Cin/groups, kH, kW). */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvOptions = {}): Tensor {
  return convNd(2, 'conv2d', x, weight, bias, options);
}

/** F.conv3d: x (N, Cin, D, H, W), weight (Cout, Cin/groups, kD, kH, kW). */
export function conv3d(x: Tensor, weight: Tensor, bias?: Tensor | null, options: ConvOptions = {}): Tensor {
  return convNd(3, 'conv3d', x, weight, bias, options);
}

function convTransposeNd(
  nd: number,
  op: string,
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null | undefined,
  options: ConvTransposeOptions,
): Tensor {
  const [x, unbatch] = batched(input, nd, op);
  requireFloat(x, 'input', op);
  requireFloat(weight, 'weight', op);
  const groups = options.groups ?? 1;
  if (!Number.isInteger(groups) || groups < 1)
    throw new Error(`${op}: groups must be a positive int, got ${groups}`);
  if (weight.ndim !== nd + 2) {
    throw new Error(`${op}: weight must be (Cin, Cout/groups${', k'.repeat(nd)}), got ${fmt(weight.shape)}`);
  }
  const [N, Cin] = x.shape;
  if (weight.shape[0] !== Cin) {
    throw new Error(
      `${op}: input ${fmt(x.shape)} has ${Cin} channels but weight ${fmt(weight.shape)} expects ${weight.shape[0]}`,
    );
  }
  if (Cin % groups !== 0) {
    throw new Error(`${op}: ${Cin} input channels of ${fmt(x.shape)} are not divisible by groups=${groups}`);
  }
  const CoutG = weight.shape[1];
  const Cout = CoutG * groups;
  const CinG = Cin / groups;
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== Cout)) {
    throw new Error(
      `${op}: bias ${fmt(bias.shape)} does not match ${Cout} output channels (weight ${fmt(weight.shape)}, groups=${groups})`,
    );
  }
  const inSize = x.shape.slice(2);
  const kernel = weight.shape.slice(2);
  const stride = tupleOf(options.stride ?? 1, nd, 'stride', op, 1);
  const padding = tupleOf(options.padding ?? 0, nd, 'padding', op);
  const dilation = tupleOf(options.dilation ?? 1, nd, 'dilation', op, 1);
  const outputPadding = tupleOf(options.outputPadding ?? 0, nd, 'outputPadding', op);
  outputPadding.forEach((p, i) => {
    if (p >= Math.max(stride[i], dilation[i])) {
      throw new Error(
        `${op}: outputPadding ${fmt(outputPadding)} must be smaller than stride ${fmt(stride)} or dilation ${fmt(dilation)}`,
      );
    }
  });
  const outSize = inSize.map(
    (s, i) => (s - 1) * stride[i] - 2 * padding[i] + dilation[i] * (kernel[i] - 1) + outputPadding[i] + 1,
  );
  if (outSize.some((s) => s <= 0)) {
    throw new Error(
      `${op}: padding ${fmt(padding)} leaves no output for input ${fmt(x.shape)} and weight ${fmt(weight.shape)}`,
    );
  }
  // The transposed conv is the adjoint of a conv from the output grid to the input grid.
  const win = window3(outSize, inSize, kernel, stride, padding, dilation);
  const Lin = sizeOf(inSize);
  const Lout = sizeOf(outSize);
  const K = CoutG * sizeOf(kernel);
  const xd = x.data as Float32Array;
  const wd = weight.data as Float32Array;
  const cols = new Float32Array(Cout * sizeOf(kernel) * Lin);
  const out = new Float32Array(N * Cout * Lout);
  if (bias) addBiasPlanes(out, bias.data as Float32Array, N, Cout, Lout);
  for (let n = 0; n < N; n++) {
    // (G, K, Lin) = (G, CinG, K)^T @ (G, CinG, Lin)
    kernels().gemm({
      a: wd,
      b: xd.subarray(n * Cin * Lin, (n + 1) * Cin * Lin),
      c: cols,
      batch: groups,
      m: K,
      n: Lin,
      k: CinG,
      transA: true,
      strideA: CinG * K,
      strideB: CinG * Lin,
      strideC: K * Lin,
    });
    kernels().col2im(cols, Cout, win, out.subarray(n * Cout * Lout, (n + 1) * Cout * Lout));
  }
  const parents = bias ? [x, weight, bias] : [x, weight];
  const y = record(new Tensor(out, [N, Cout, ...outSize]), op, parents, (g) => {
    const gyd = g.data as Float32Array;
    const gx = x.requiresGrad ? new Float32Array(x.size) : null;
    const gw = weight.requiresGrad ? new Float32Array(weight.size) : null;
    const gcols = new Float32Array(cols.length);
    for (let n = 0; n < N; n++) {
      kernels().im2col(gyd.subarray(n * Cout * Lout, (n + 1) * Cout * Lout), Cout, win, gcols);
      if (gx) {
        // (G, CinG, Lin) = (G, CinG, K) @ (G, K, Lin)
        kernels().gemm({
          a: wd,
          b: gcols,
          c: gx.subarray(n * Cin * Lin, (n + 1) * Cin * Lin),
          batch: groups,
          m: CinG,
          n: Lin,
          k: K,
          strideA: CinG * K,
          strideB: K * Lin,
          strideC: CinG * Lin,
        });
      }
      if (gw) {
        // (G, CinG, K) += (G, CinG, Lin) @ (G, K, Lin)^T
        kernels().gemm({
          a: xd.subarray(n * Cin * Lin, (n + 1) * Cin * Lin),
          b: gcols,
          c: gw,
          batch: groups,
          m: CinG,
          n: K,
          k: Lin,
          transB: true,
          strideA: CinG * Lin,
          strideB: K * Lin,
          strideC: CinG * K,
          beta: n === 0 ? 0 : 1,
        });
      }
    }
    return [
      gx ? new Tensor(gx, x.shape) : null,
      gw ? new Tensor(gw, weight.shape) : null,
      bias?.requiresGrad ? biasGrad(gyd, N, Cout, Lout) : null,
    ];
  });
  return unbatch(y);
}

/** F.conv_transpose1d: x (N, Cin, L), weight (Cin, Cout/groups, k). */
export function convTranspose1d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  options: ConvTransposeOptions = {},
): Tensor {
  return convTransposeNd(1, 'convTranspose1d', x, weight, bias, options);
}

/** F.conv_transpose2d: x (N, Cin, H, W), weight (Cin, Cout/groups, kH, kW). */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  options: ConvTransposeOptions = {},
): Tensor {
  return convTransposeNd(2, 'convTranspose2d', x, weight, bias, options);
}

/** F.conv_transpose3d: x (N, Cin, D, H, W), weight (Cin, Cout/groups, kD, kH, kW). */
export function convTranspose3d(
  x: Tensor,
  weight: Tensor,
  bias?: Tensor | null,
  options: ConvTransposeOptions = {},
): Tensor {
  return convTransposeNd(3, 'convTranspose3d', x, weight, bias, options);
}

export interface UnfoldOptions {
  dilation?: IntOrTuple;
  padding?: IntOrTuple;
  stride?: IntOrTuple;
}

/** F.unfold (im2col): x (N, C, H, W) -> (N, C * kH * kW, L) sliding blocks. */
export function unfold(x: Tensor, kernelSize: IntOrTuple, options: UnfoldOptions = {}): Tensor {
  const op = 'unfold';
  if (x.ndim !== 4) throw new Error(`${op}: expected input (N, C, H, W), got ${fmt(x.shape)}`);
  requireFloat(x, 'input', op);
  const [N, C, H, W] = x.shape;
  const kernel = tupleOf(kernelSize, 2, 'kernelSize', op, 1);
  const stride = tupleOf(options.stride ?? 1, 2, 'stride', op, 1);
  const padding = tupleOf(options.padding ?? 0, 2, 'padding', op);
  const dilation = tupleOf(options.dilation ?? 1, 2, 'dilation', op, 1);
  const outSize = [H, W].map(
    (s, i) => Math.floor((s + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i]) + 1,
  );
  if (outSize.some((s) => s <= 0)) {
    throw new Error(`${op}: kernel ${fmt(kernel)} is larger than the padded input of ${fmt(x.shape)}`);
  }
  const win = window3([H, W], outSize, kernel, stride, padding, dilation);
  const rows = C * kernel[0] * kernel[1];
  const L = outSize[0] * outSize[1];
  const xd = x.data as Float32Array;
  const out = new Float32Array(N * rows * L);
  for (let n = 0; n < N; n++) {
    kernels().im2col(
      xd.subarray(n * C * H * W, (n + 1) * C * H * W),
      C,
      win,
      out.subarray(n * rows * L, (n + 1) * rows * L),
    );
  }
  return record(new Tensor(out, [N, rows, L]), op, [x], (g) => {
    const gd = g.data as Float32Array;
    const gx = new Float32Array(x.size);
    for (let n = 0; n < N; n++) {
      kernels().col2im(
        gd.subarray(n * rows * L, (n + 1) * rows * L),
        C,
        win,
        gx.subarray(n * C * H * W, (n + 1) * C * H * W),
      );
    }
    return [new Tensor(gx, x.shape)];
  });
}

/** F.fold (col2im, summing overlaps): x (N, C * kH * kW, L) -> (N, C, outputSize[0], outputSize[1]). */
export function fold(
  x: Tensor,
  outputSize: IntOrTuple,
  kernelSize: IntOrTuple,
  options: UnfoldOptions = {},
): Tensor {
  const op = 'fold';
  if (x.ndim !== 3) throw new Error(`${op}: expected input (N, C * kH * kW, L), got ${fmt(x.shape)}`);
  requireFloat(x, 'input', op);
  const [N, rows, L] = x.shape;
  const size = tupleOf(outputSize, 2, 'outputSize', op, 1);
  const kernel = tupleOf(kernelSize, 2, 'kernelSize', op, 1);
  const stride = tupleOf(options.stride ?? 1, 2, 'stride', op, 1);
  const padding = tupleOf(options.padding ?? 0, 2, 'padding', op);
  const dilation = tupleOf(options.dilation ?? 1, 2, 'dilation', op, 1);
  const K = kernel[0] * kernel[1];
  const blocks = size.map(
    (s, i) => Math.floor((s + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i]) + 1,
  );
  if (rows % K !== 0 || blocks[0] * blocks[1] !== L || blocks.some((b) => b <= 0)) {
    throw new Error(
      `${op}: input ${fmt(x.shape)} does not hold C * ${K} rows and ${blocks[0]} x ${blocks[1]} blocks for output ${fmt(size)} with kernel ${fmt(kernel)}`,
    );
  }
  const C = rows / K;
  const win = window3(size, blocks, kernel, stride, padding, dilation);
  const plane = size[0] * size[1];
  const xd = x.data as Float32Array;
  const out = new Float32Array(N * C * plane);
  for (let n = 0; n < N; n++) {
    kernels().col2im(
      xd.subarray(n * rows * L, (n + 1) * rows * L),
      C,
      win,
      out.subarray(n * C * plane, (n + 1) * C * plane),
    );
  }
  return record(new Tensor(out, [N, C, ...size]), op, [x], (g) => {
    const gd = g.data as Float32Array;
    const gx = new Float32Array(x.size);
    for (let n = 0; n < N; n++) {
      kernels().im2col(
        gd.subarray(n * C * plane, (n + 1) * C * plane),
        C,
        win,
        gx.subarray(n * rows * L, (n + 1) * rows * L),
      );
    }
    return [new Tensor(gx, x.shape)];
  });
}

/** F.pixel_shuffle: (N, C * r^2, H, W) -> (N, C, H * r, W * r). */
export function pixelShuffle(x: Tensor, upscaleFactor: number): Tensor {
  const r = upscaleFactor;
  const [N, Cr, H, W] = x.shape;
  if (x.ndim !== 4 || !Number.isInteger(r) || r < 1 || Cr % (r * r) !== 0) {
    throw new Error(
      `pixelShuffle: input ${fmt(x.shape)} needs (N, C * ${r}^2, H, W) with a positive int factor`,
    );
  }
  const C = Cr / (r * r);
  const t = permute(reshape(x, [N, C, r, r, H, W]), [0, 1, 4, 2, 5, 3]); // (N, C, H, r, W, r)
  return reshape(t, [N, C, H * r, W * r]);
}

/** F.pixel_unshuffle: (N, C, H * r, W * r) -> (N, C * r^2, H, W). */
export function pixelUnshuffle(x: Tensor, downscaleFactor: number): Tensor {
  const r = downscaleFactor;
  const [N, C, Hr, Wr] = x.shape;
  if (x.ndim !== 4 || !Number.isInteger(r) || r < 1 || Hr % r !== 0 || Wr % r !== 0) {
    throw new Error(
      `pixelUnshuffle: input ${fmt(x.shape)} needs (N, C, H * ${r}, W * ${r}) with a positive int factor`,
    );
  }
  const t = permute(reshape(x, [N, C, Hr / r, r, Wr / r, r]), [0, 1, 3, 5, 2, 4]); // (N, C, r, r, H, W)
  return reshape(t, [N, C * r * r, Hr / r, Wr / r]);
}
