/**
 * The native backend: the C++ kernels of native/ (an N-API addon that `npm install` builds into
 * build/Release), behind the js kernel signatures. Importing this module registers it as 'native'
 * and makes it the active backend when the addon loads; otherwise glimpse warns once and stays on
 * js. GLIMPSE_BACKEND=js skips the addon, GLIMPSE_BACKEND=native makes a failed load an error, and
 * GLIMPSE_THREADS sets the kernel threads (default: the cores this process may use).
 *
 * Kernels the addon lacks, and calls it cannot take (non-float32 data, ops it does not implement),
 * fall through to the js kernel, which defines the semantics.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { getBackend, type Kernels, registerBackend, setBackend } from './backend.js';
import type { AttentionArgs, AttentionBackwardArgs } from './js/attention.js';
import type { Window } from './js/conv.js';
import type { BinaryOp, UnaryGradOp, UnaryOp } from './js/elementwise.js';
import type { GemmArgs } from './js/gemm.js';
import { jsKernels } from './js/index.js';
import type { ReduceOp } from './js/reduce.js';
import { markPrepacked } from './prepacked.js';
import { Linear } from '../nn/linear.js';
import { type Module, Parameter } from '../nn/module.js';
import { Tensor } from '../tensor/tensor.js';

type F32 = Float32Array;
type Num = Float32Array | Int32Array | Float64Array | Uint8Array;

interface AddonInfo {
  isa: string;
  isas: string[];
  threads: number;
  hardwareThreads: number;
}

/** The addon's functions (native/addon.cc); integer vectors travel packed in a Float64Array. */
interface Addon {
  info(): AddonInfo;
  setThreads(n: number): void;
  setIsa(isa: string): void;
  gemm(
    a: F32,
    b: F32,
    c: F32,
    bias: F32 | null,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    strideA: number,
    strideB: number,
    strideC: number,
    alpha: number,
    beta: number,
    act: number,
    packedB: F32 | null,
  ): void;
  packedBSize(k: number, n: number): number;
  packB(b: F32, k: number, n: number, transB: boolean, out: F32): void;
  unary(op: number, x: F32, out: F32): void;
  unaryGrad(op: number, x: F32, y: F32, dy: F32, out: F32): void;
  binary(op: number, a: F32, b: F32, out: F32, meta: Float64Array): void;
  softmax(x: F32, rows: number, cols: number, out: F32, log: boolean): void;
  layerNorm(
    x: F32,
    rows: number,
    cols: number,
    weight: F32 | null,
    bias: F32 | null,
    eps: number,
    out: F32,
    mean: F32,
    rstd: F32,
  ): void;
  layerNormBackward(
    x: F32,
    gy: F32,
    rows: number,
    cols: number,
    weight: F32 | null,
    mean: F32,
    rstd: F32,
    gx: F32,
    gw: F32 | null,
    gb: F32 | null,
  ): void;
  reduce(op: number, x: F32, outer: number, n: number, inner: number, out: F32): void;
  copyStrided(src: F32, dst: F32, accumulate: boolean, meta: Float64Array): void;
  attention(
    q: F32,
    k: F32,
    v: F32,
    out: F32,
    mask: F32 | null,
    probs: F32 | null,
    meta: Float64Array,
    scale: number,
  ): void;
  attentionBackward(
    q: F32,
    k: F32,
    v: F32,
    out: F32 | null,
    mask: F32 | null,
    probs: F32 | null,
    meta: Float64Array,
    scale: number,
    gradOut: F32,
    gq: F32,
    gk: F32,
    gv: F32,
  ): void;
  im2col(x: F32, channels: number, win: Float64Array, cols: F32): void;
  col2im(cols: F32, channels: number, win: Float64Array, x: F32): void;
  depthwiseConv(
    x: F32,
    weight: F32,
    bias: F32 | null,
    batch: number,
    channels: number,
    multiplier: number,
    win: Float64Array,
    out: F32,
  ): void;
  depthwiseConvBackward(
    x: F32,
    weight: F32,
    gy: F32,
    batch: number,
    channels: number,
    multiplier: number,
    win: Float64Array,
    gx: F32 | null,
    gw: F32 | null,
  ): void;
  fmaPeak(iterations: number, threads: number): number;
  // Training kernels (native/train_addon.cc); absent from an addon built before them.
  batchNormStats?(
    x: F32,
    n: number,
    channels: number,
    spatial: number,
    mean: Float64Array,
    variance: Float64Array,
  ): void;
  batchNormForward?(
    x: F32,
    n: number,
    channels: number,
    spatial: number,
    scale: Float64Array,
    shift: Float64Array,
    out: F32,
  ): void;
  batchNormBackward?(
    x: F32,
    gy: F32,
    n: number,
    channels: number,
    spatial: number,
    mean: Float64Array,
    invstd: Float64Array,
    weight: F32 | null,
    training: boolean,
    gx: F32,
    gw: F32 | null,
    gb: F32 | null,
  ): void;
  depthwiseConv2d?(
    x: F32,
    weight: F32,
    bias: F32 | null,
    batch: number,
    channels: number,
    win: Float64Array,
    out: F32,
  ): void;
  depthwiseConv2dBackward?(
    x: F32,
    weight: F32,
    gy: F32,
    batch: number,
    channels: number,
    win: Float64Array,
    gx: F32 | null,
    gw: F32 | null,
  ): void;
  im2colBatch?(x: F32, batch: number, channels: number, win: Float64Array, cols: F32): void;
  col2imBatch?(cols: F32, batch: number, channels: number, win: Float64Array, x: F32): void;
  maxPool?(x: F32, planes: number, win: Float64Array, out: F32, indices: Int32Array): void;
  tuneAllocator?(): boolean;
  qkvAttention?(
    qkv: F32,
    batch: number,
    seq: number,
    heads: number,
    headDim: number,
    scale: number,
    out: F32,
    probs: F32 | null,
  ): void;
  adamUpdate?(
    param: F32,
    grad: F32,
    expAvg: F32,
    expAvgSq: F32,
    maxExpAvgSq: F32 | null,
    scalars: Float64Array,
  ): void;
  sumOfSquares?(x: F32): number;
  qkvAttentionBackward?(
    qkv: F32,
    probs: F32,
    gradOut: F32,
    batch: number,
    seq: number,
    heads: number,
    headDim: number,
    scale: number,
    gqkv: F32,
  ): void;
}

/** The unary ops, in the order of native/kernels.h's UnaryOp codes. */
export const UNARY_OPS: readonly UnaryOp[] = [
  'neg',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'abs',
  'sign',
  'tanh',
  'erf',
  'relu',
  'gelu',
  'gelu_tanh',
  'silu',
  'sigmoid',
  'sin',
  'cos',
  'floor',
  'ceil',
  'round',
  'reciprocal',
  'square',
  'log1p',
  'expm1',
  'softplus',
];
const UNARY_CODES = new Map<UnaryOp, number>(UNARY_OPS.map((op, i) => [op, i]));
const BINARY_CODES = new Map<BinaryOp, number>(
  (['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'atan2', 'mod'] as const).map((op, i) => [
    op,
    i,
  ]),
);
const REDUCE_CODES = new Map<ReduceOp, number>([
  ['sum', 0],
  ['max', 1],
  ['min', 2],
  ['prod', 5],
]);
const ACTIVATION_CODES = { relu: 1, gelu: 2 } as const;
const MAX_DIMS = 16;

const ADDON_PATH = fileURLToPath(new URL('../../build/Release/glimpse_native.node', import.meta.url));

let addon: Addon | null = null;
let loadError: string | null = null;

function loadAddon(): Addon | null {
  if (!existsSync(ADDON_PATH)) {
    loadError = `the addon is not built (${ADDON_PATH} is missing)`;
    return null;
  }
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch (e) {
    loadError = `the addon failed to load: ${(e as Error).message.split('\n')[0]}`;
    return null;
  }
}

function threadsFromEnv(): number {
  const raw = process.env.GLIMPSE_THREADS;
  if (raw === undefined || raw === '') return availableParallelism();
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 1024) {
    console.warn(`glimpse: GLIMPSE_THREADS must be an integer in [1, 1024], got '${raw}'; using the default`);
    return availableParallelism();
  }
  return n;
}

// Reused packing buffers for shapes, strides and windows (calls are synchronous, so one suffices).
const meta = new Float64Array(1 + 3 * MAX_DIMS + 2);
const windowMeta = new Float64Array(18);
const attentionMeta = new Float64Array(10);

function packWindow(win: Window): Float64Array {
  const parts = [win.inSize, win.outSize, win.kernel, win.stride, win.padding, win.dilation];
  for (let p = 0; p < 6; p++) for (let d = 0; d < 3; d++) windowMeta[p * 3 + d] = parts[p][d];
  return windowMeta;
}

function packAttention(args: AttentionArgs): Float64Array {
  const s = args.maskStrides ?? [0, 0, args.nk];
  attentionMeta.set([
    args.batch,
    args.heads,
    args.nq,
    args.nk,
    args.d,
    args.dv,
    args.causal ? 1 : 0,
    s[0],
    s[1],
    s[2],
  ]);
  return attentionMeta;
}

const isF32 = (x: Num): x is Float32Array => x instanceof Float32Array;

/** A 2-D window with stride 1, dilation 1 and padding inside the kernel: the depthwiseConv2d fast path. */
function isPlainWindow2d(win: Window): boolean {
  if (win.inSize[0] !== 1 || win.outSize[0] !== 1 || win.kernel[0] !== 1) return false;
  for (let d = 0; d < 3; d++) if (win.stride[d] !== 1 || win.dilation[d] !== 1) return false;
  for (let d = 1; d < 3; d++) {
    const k = win.kernel[d];
    if (win.padding[d] >= k || win.outSize[d] + k - 1 > win.inSize[d] + 2 * win.padding[d]) return false;
  }
  return true;
}

const adamScalars = new Float64Array(8);

/** The optimizer's arithmetic (native/train_addon.cc), when the addon has it. */
function optimizerKernels(lib: Addon): Partial<Kernels> {
  const { adamUpdate, sumOfSquares } = lib;
  if (!adamUpdate || !sumOfSquares) return {};
  return {
    adamUpdate(a) {
      adamScalars.set([a.beta1, a.beta2, a.eps, a.l2, a.decay, a.stepSize, a.bias2Sqrt, a.maximize ? 1 : 0]);
      adamUpdate.call(lib, a.param, a.grad, a.expAvg, a.expAvgSq, a.maxExpAvgSq, adamScalars);
    },
    sumOfSquares(x, out) {
      out[0] = sumOfSquares.call(lib, x);
    },
  };
}

/** Self-attention on a fused qkv projection (native/train_addon.cc), when the addon has it. */
function qkvAttentionKernels(lib: Addon): Partial<Kernels> {
  const { qkvAttention, qkvAttentionBackward } = lib;
  if (!qkvAttention || !qkvAttentionBackward) return {};
  return {
    qkvAttention(a) {
      qkvAttention.call(lib, a.qkv, a.batch, a.seq, a.heads, a.headDim, a.scale, a.out, a.probs ?? null);
    },
    qkvAttentionBackward(a) {
      qkvAttentionBackward.call(
        lib,
        a.qkv,
        a.probs,
        a.gradOut,
        a.batch,
        a.seq,
        a.heads,
        a.headDim,
        a.scale,
        a.gqkv,
      );
    },
  };
}

/** Batch norm, batched im2col/col2im and max pooling from native/train_addon.cc, when the addon has them. */
function trainingKernels(lib: Addon): Partial<Kernels> {
  const { batchNormStats, batchNormForward, batchNormBackward, im2colBatch, col2imBatch, maxPool } = lib;
  if (!batchNormStats || !batchNormForward || !batchNormBackward || !im2colBatch || !col2imBatch || !maxPool)
    return {};
  return {
    maxPool(x, planes, win, out, indices) {
      maxPool.call(lib, x, planes, packWindow(win), out, indices);
    },
    im2colBatch(x, batch, channels, win, cols) {
      im2colBatch.call(lib, x, batch, channels, packWindow(win), cols);
    },
    col2imBatch(cols, batch, channels, win, x) {
      col2imBatch.call(lib, cols, batch, channels, packWindow(win), x);
    },
    batchNormStats(x, n, channels, spatial, mean, variance) {
      if (!isF32(x)) return jsKernels.batchNormStats(x, n, channels, spatial, mean, variance);
      batchNormStats.call(lib, x, n, channels, spatial, mean, variance);
    },
    batchNormForward(x, n, channels, spatial, scale, shift, out) {
      batchNormForward.call(lib, x, n, channels, spatial, scale, shift, out);
    },
    batchNormBackward(x, gy, n, channels, spatial, mean, invstd, weight, training, gx, gw, gb) {
      batchNormBackward.call(lib, x, gy, n, channels, spatial, mean, invstd, weight, training, gx, gw, gb);
    },
  };
}

// Opt-in reuse of packed GEMM operands (setPackedWeights): packed copies of B arrays keyed by the
// array itself, valid for one layout and instruction set.
let packWeights = false;
let activeIsa = '';
interface Packed {
  isa: string;
  transB: boolean;
  k: number;
  n: number;
  data: F32;
}
let packedCache = new WeakMap<Float32Array, Packed>();

function packedFor(lib: Addon, b: F32, k: number, n: number, transB: boolean): F32 {
  const hit = packedCache.get(b);
  if (hit && hit.isa === activeIsa && hit.transB === transB && hit.k === k && hit.n === n) return hit.data;
  const data = new Float32Array(lib.packedBSize(k, n));
  lib.packB(b, k, n, transB, data);
  packedCache.set(b, { isa: activeIsa, transB, k, n, data });
  return data;
}

// Linear weights pre-packed by prepackForInference: the weight tensor's data (a view of the packed
// panels, so that the tensor keeps its shape) -> the layout it was packed in.
interface Prepacked {
  isa: string;
  k: number;
  n: number;
  panels: F32;
}
const prepacked = new WeakMap<Float32Array, Prepacked>();

function prepackedFor(b: F32, args: GemmArgs, transB: boolean): F32 | null {
  const p = prepacked.get(b);
  if (!p) return null;
  if (!transB || args.transA || (args.batch > 1 && args.strideB !== 0) || p.k !== args.k || p.n !== args.n) {
    throw new Error(
      `gemm: operand B is a linear weight (${p.n}, ${p.k}) pre-packed for inference by prepackForInference, usable only by linear's forward; gradients, training and other uses need the model as loaded, before prepackForInference`,
    );
  }
  if (p.isa !== activeIsa) {
    throw new Error(
      `gemm: a linear weight was pre-packed for inference under the '${p.isa}' instruction set, but '${activeIsa}' is active; call setNativeIsa before prepackForInference`,
    );
  }
  return p.panels;
}

function makeKernels(lib: Addon) {
  return {
    gemm(args: GemmArgs): void {
      const { m, n, k } = args;
      const act = args.activation ? ACTIVATION_CODES[args.activation] : 0;
      const transB = args.transB ?? false;
      // Weights are the B^T operand of linear layers, shared by the whole batch.
      const packed =
        prepackedFor(args.b, args, transB) ??
        (packWeights && transB && (args.batch === 1 || args.strideB === 0)
          ? packedFor(lib, args.b, k, n, transB)
          : null);
      lib.gemm(
        args.a,
        args.b,
        args.c,
        args.bias ?? null,
        args.batch,
        m,
        n,
        k,
        args.transA ?? false,
        transB,
        args.strideA ?? m * k,
        args.strideB ?? k * n,
        args.strideC ?? m * n,
        args.alpha ?? 1,
        args.beta ?? 0,
        act,
        packed,
      );
    },

    unary(op: UnaryOp, x: F32, out: F32): void {
      const code = UNARY_CODES.get(op);
      if (code === undefined) {
        jsKernels.unary(op, x, out);
        return;
      }
      lib.unary(code, x, out);
    },

    unaryGrad(op: UnaryGradOp, x: F32, y: F32, dy: F32, out: F32): void {
      lib.unaryGrad(UNARY_CODES.get(op)!, x, y, dy, out);
    },

    binary(
      op: BinaryOp,
      a: Num,
      aStrides: readonly number[],
      b: Num,
      bStrides: readonly number[],
      out: Num,
      shape: readonly number[],
    ): void {
      const code = BINARY_CODES.get(op);
      const nd = shape.length;
      if (code === undefined || !isF32(a) || !isF32(b) || !isF32(out) || nd > MAX_DIMS) {
        jsKernels.binary(op, a, aStrides, b, bStrides, out, shape);
        return;
      }
      meta[0] = nd;
      for (let d = 0; d < nd; d++) {
        meta[1 + d] = shape[d];
        meta[1 + nd + d] = aStrides[d];
        meta[1 + 2 * nd + d] = bStrides[d];
      }
      lib.binary(code, a, b, out, meta);
    },

    reduce(op: ReduceOp, x: Num, outer: number, n: number, inner: number, out: Num): void {
      const code = REDUCE_CODES.get(op);
      if (code === undefined || !isF32(x) || !isF32(out)) {
        jsKernels.reduce(op, x, outer, n, inner, out);
        return;
      }
      lib.reduce(code, x, outer, n, inner, out);
    },

    copyStrided(
      src: Num,
      srcOffset: number,
      srcStrides: readonly number[],
      shape: readonly number[],
      dst: Num,
      dstOffset: number,
      dstStrides: readonly number[],
      accumulate = false,
    ): void {
      const nd = shape.length;
      if (!isF32(src) || !isF32(dst) || nd > MAX_DIMS) {
        jsKernels.copyStrided(src, srcOffset, srcStrides, shape, dst, dstOffset, dstStrides, accumulate);
        return;
      }
      meta[0] = nd;
      meta[1] = srcOffset;
      meta[2] = dstOffset;
      for (let d = 0; d < nd; d++) {
        meta[3 + d] = shape[d];
        meta[3 + nd + d] = srcStrides[d];
        meta[3 + 2 * nd + d] = dstStrides[d];
      }
      lib.copyStrided(src, dst, accumulate, meta);
    },

    softmax(x: F32, rows: number, cols: number, out: F32, log = false): void {
      lib.softmax(x, rows, cols, out, log);
    },

    layerNorm(
      x: F32,
      rows: number,
      cols: number,
      weight: F32 | null,
      bias: F32 | null,
      eps: number,
      out: F32,
      mean: F32,
      rstd: F32,
    ): void {
      lib.layerNorm(x, rows, cols, weight, bias, eps, out, mean, rstd);
    },

    layerNormBackward(
      x: F32,
      gy: F32,
      rows: number,
      cols: number,
      weight: F32 | null,
      mean: F32,
      rstd: F32,
      gx: F32,
      gw: F32 | null,
      gb: F32 | null,
    ): void {
      lib.layerNormBackward(x, gy, rows, cols, weight, mean, rstd, gx, gw, gb);
    },

    attention(args: AttentionArgs): void {
      lib.attention(
        args.q,
        args.k,
        args.v,
        args.out,
        args.mask ?? null,
        args.probs ?? null,
        packAttention(args),
        args.scale,
      );
    },

    attentionBackward(args: AttentionBackwardArgs): void {
      lib.attentionBackward(
        args.q,
        args.k,
        args.v,
        null,
        args.mask ?? null,
        args.probs ?? null,
        packAttention(args),
        args.scale,
        args.gradOut,
        args.gq,
        args.gk,
        args.gv,
      );
    },

    im2col(x: F32, channels: number, win: Window, cols: F32): void {
      lib.im2col(x, channels, packWindow(win), cols);
    },

    col2im(cols: F32, channels: number, win: Window, x: F32): void {
      lib.col2im(cols, channels, packWindow(win), x);
    },

    depthwiseConv(
      x: F32,
      weight: F32,
      bias: F32 | null,
      batch: number,
      channels: number,
      multiplier: number,
      win: Window,
      out: F32,
    ): void {
      if (multiplier === 1 && lib.depthwiseConv2d && isPlainWindow2d(win)) {
        lib.depthwiseConv2d(x, weight, bias, batch, channels, packWindow(win), out);
        return;
      }
      lib.depthwiseConv(x, weight, bias, batch, channels, multiplier, packWindow(win), out);
    },

    depthwiseConvBackward(
      x: F32,
      weight: F32,
      gy: F32,
      batch: number,
      channels: number,
      multiplier: number,
      win: Window,
      gx: F32 | null,
      gw: F32 | null,
    ): void {
      if (multiplier === 1 && lib.depthwiseConv2dBackward && isPlainWindow2d(win)) {
        lib.depthwiseConv2dBackward(x, weight, gy, batch, channels, packWindow(win), gx, gw);
        return;
      }
      lib.depthwiseConvBackward(x, weight, gy, batch, channels, multiplier, packWindow(win), gx, gw);
    },

    ...trainingKernels(lib),
    ...qkvAttentionKernels(lib),
    ...optimizerKernels(lib),
  } satisfies Partial<Kernels>;
}

/** The native kernels, or null when the addon is not loaded (GLIMPSE_BACKEND=js or a failed load). */
export let nativeKernels: ReturnType<typeof makeKernels> | null = null;

/** Whether the addon loaded, and if not, why. */
export function nativeStatus(): {
  loaded: boolean;
  reason?: string;
  isa?: string;
  isas?: string[];
  threads?: number;
} {
  if (!addon) return { loaded: false, reason: loadError ?? 'GLIMPSE_BACKEND=js' };
  const info = addon.info();
  return { loaded: true, isa: info.isa, isas: info.isas, threads: info.threads };
}

function requireAddon(what: string): Addon {
  if (!addon)
    throw new Error(`${what}: the native backend is not loaded (${loadError ?? 'GLIMPSE_BACKEND=js'})`);
  return addon;
}

/** Threads the native kernels may use (GLIMPSE_THREADS sets the initial value). */
export function setNativeThreads(n: number): void {
  requireAddon('setNativeThreads').setThreads(n);
}

/**
 * The machine's peak FLOP/s for the active instruction set, from a tight loop of independent FMA
 * chains on `threads` threads (best of `trials` runs of `iterations` steps).
 */
export function measurePeakFlops(threads: number, trials = 20, iterations = 2_000_000): number {
  const lib = requireAddon('measurePeakFlops');
  let best = 0;
  for (let t = 0; t < trials; t++) {
    const t0 = performance.now();
    const flops = lib.fmaPeak(iterations, threads);
    best = Math.max(best, flops / ((performance.now() - t0) / 1000));
  }
  return best;
}

/** Forces an instruction set ('avx512', 'avx2', 'scalar'); nativeStatus().isas lists those this CPU has. */
export function setNativeIsa(isa: string): void {
  const lib = requireAddon('setNativeIsa');
  lib.setIsa(isa);
  activeIsa = lib.info().isa;
}

/**
 * For inference: keep a packed copy of every linear-layer weight (the transposed B operand of a
 * GEMM) the first time it is used, and reuse it, which saves repacking the weights on every call
 * (most of the cost at batch 1). Only while the weights do not change: an optimizer step or a
 * loadStateDict that writes into the same arrays would leave stale copies, so turn it off (which
 * drops them) before training.
 */
export function setPackedWeights(enabled: boolean): void {
  requireAddon('setPackedWeights');
  packWeights = enabled;
  if (!enabled) packedCache = new WeakMap();
}

/**
 * Inference only: packs every Linear weight of `model` once into the GEMM's panel layout for the
 * active instruction set and drops the unpacked weight, as onnxruntime does with its initializers,
 * so that forwards skip repacking (most of a batch-1 GEMM's overhead, 4-7% at batch 8) while memory
 * stays at the weights' size (setPackedWeights keeps a copy instead). Weights are packed in place
 * (a new Parameter where the panels need padding, out_features not a multiple of the panel width)
 * and stop requiring grad: the weight tensors, and any tensor taken from the model before that
 * shares their storage, hold the packed panels afterwards, which only linear's forward on the native
 * backend under the same instruction set can use. A GEMM that would read them otherwise (input
 * gradients, training) and the model's stateDict, loadStateDict and train() throw. Returns the model.
 */
export function prepackForInference<M extends Module>(model: M): M {
  const lib = requireAddon('prepackForInference');
  if (getBackend() !== 'native') {
    throw new Error(
      `prepackForInference: the active backend is '${getBackend()}'; pre-packed weights need the native backend`,
    );
  }
  // Tied weights are packed once and stay tied.
  const done = new Map<Parameter, Parameter>();
  let scratch = new Float32Array(0);
  for (const [, mod] of model.namedModules()) {
    if (mod instanceof Linear) {
      const w = mod.weight;
      let frozen = done.get(w) ?? (prepacked.has(w.data as F32) ? w : undefined);
      if (!frozen) {
        if (w.dtype !== 'float32')
          throw new Error(`prepackForInference: a Linear weight is ${w.dtype}, not float32`);
        const [n, k] = w.shape;
        const size = lib.packedBSize(k, n);
        if (size === k * n) {
          // In place (out_features a multiple of the panel width), so that memory never holds both.
          if (scratch.length < size) scratch = new Float32Array(size);
          lib.packB(w.data as F32, k, n, true, scratch);
          (w.data as F32).set(scratch.subarray(0, size));
          prepacked.set(w.data as F32, { isa: activeIsa, k, n, panels: w.data as F32 });
          markPrepacked(w.data, 'native');
          w.requiresGrad = false;
          frozen = w;
        } else {
          const panels = new Float32Array(size);
          lib.packB(w.data as F32, k, n, true, panels);
          const view = panels.subarray(0, k * n);
          prepacked.set(view, { isa: activeIsa, k, n, panels });
          markPrepacked(view, 'native');
          frozen = new Parameter(new Tensor(view, w.shape), false);
        }
        done.set(w, frozen);
      }
      mod.weight = frozen;
    }
    for (const method of ['stateDict', 'loadStateDict'] as const) {
      Object.defineProperty(mod, method, {
        value: () => {
          throw new Error(
            `${method}: the model was pre-packed for inference (prepackForInference), its linear weights are no longer in their checkpoint layout; use a model as loaded`,
          );
        },
        configurable: true,
      });
    }
    const train = mod.train;
    Object.defineProperty(mod, 'train', {
      value(this: Module, mode = true) {
        if (mode) {
          throw new Error(
            'train: the model was pre-packed for inference (prepackForInference) and cannot be trained; use a model as loaded',
          );
        }
        return train.call(this, mode);
      },
      configurable: true,
    });
  }
  return model;
}

const requested = process.env.GLIMPSE_BACKEND ?? '';
if (requested !== 'js') {
  addon = loadAddon();
  if (addon) {
    addon.setThreads(threadsFromEnv());
    // Tensor-sized blocks reuse warm heap pages instead of fresh mappings (see native/train_addon.cc).
    addon.tuneAllocator?.();
    activeIsa = addon.info().isa;
    nativeKernels = makeKernels(addon);
    registerBackend({ name: 'native', kernels: nativeKernels });
    if (requested === '' || requested === 'native') setBackend('native');
  } else if (requested === 'native') {
    throw new Error(
      `GLIMPSE_BACKEND=native, but ${loadError}. Build it with \`npm run build:native\` (needs a C++17 compiler, make and python3).`,
    );
  } else {
    console.warn(
      `glimpse: native backend unavailable (${loadError}); using the slower js backend. Build it with \`npm run build:native\` (needs a C++17 compiler, make and python3), or set GLIMPSE_BACKEND=js to silence this.`,
    );
  }
}
