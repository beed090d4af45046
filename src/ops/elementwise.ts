/** Elementwise ops with broadcasting; each backward rule sits beside its forward. */
import type { BinaryOp, UnaryGradOp, UnaryOp } from '../backend/js/elementwise.js';
import { kernels } from '../backend/backend.js';
import { record } from '../tensor/autograd.js';
import { allocStorage, type DType, emptyFloat32 } from '../tensor/dtype.js';
import { broadcastShapes, broadcastStrides, fmt, type Shape, shapesEqual, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { scalar } from './creation.js';

export type Operand = Tensor | number;

export function asTensor(x: Operand, like?: Tensor): Tensor {
  if (x instanceof Tensor) return x;
  const dt: DType =
    like && like.dtype !== 'bool' && like.dtype !== 'float32' && Number.isInteger(x) ? like.dtype : 'float32';
  return scalar(x, dt);
}

function resultDType(a: Tensor, b: Tensor): DType {
  if (a.dtype === 'float32' || b.dtype === 'float32') return 'float32';
  if (a.dtype === 'int64' || b.dtype === 'int64') return 'int64';
  if (a.dtype === 'int32' || b.dtype === 'int32') return 'int32';
  return 'int64'; // bool + bool promotes like torch's arithmetic on bools
}

/** Sums `g` over the dims that broadcasting expanded, giving a tensor of `shape` (the adjoint of broadcast). */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  }
  const summed = dims.length > 0 ? sumDims(g, dims) : g;
  return new Tensor(summed.data, shape);
}

// Sum over `dims` keeping nothing; local to avoid a cycle with reduce.ts at load time.
function sumDims(g: Tensor, dims: number[]): Tensor {
  let cur = g;
  let shape = [...g.shape];
  for (const d of [...dims].sort((x, y) => y - x)) {
    const outer = sizeOf(shape.slice(0, d));
    const inner = sizeOf(shape.slice(d + 1));
    const out = new Float32Array(outer * inner);
    kernels().reduce('sum', cur.data, outer, shape[d], inner, out);
    shape = [...shape.slice(0, d), ...shape.slice(d + 1)];
    cur = new Tensor(out, shape);
  }
  return cur;
}

const COMPARISONS = new Set<BinaryOp>(['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'and', 'or']);

export function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, op);
  const dtype = COMPARISONS.has(op)
    ? 'bool'
    : op === 'div' || op === 'pow' || op === 'atan2'
      ? 'float32'
      : resultDType(a, b);
  const out = dtype === 'float32' ? emptyFloat32(sizeOf(shape)) : allocStorage(dtype, sizeOf(shape));
  kernels().binary(
    op,
    a.data,
    broadcastStrides(a.shape, shape),
    b.data,
    broadcastStrides(b.shape, shape),
    out,
    shape,
  );
  return new Tensor(out, shape);
}

export function add(a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair(a, b);
  return record(binaryRaw('add', ta, tb), 'add', [ta, tb], (g) => [
    sumToShape(g, ta.shape),
    sumToShape(g, tb.shape),
  ]);
}

export function sub(a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair(a, b);
  return record(binaryRaw('sub', ta, tb), 'sub', [ta, tb], (g) => [
    sumToShape(g, ta.shape),
    tb.requiresGrad ? sumToShape(neg(g), tb.shape) : null,
  ]);
}

export function mul(a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair(a, b);
  return record(binaryRaw('mul', ta, tb), 'mul', [ta, tb], (g) => [
    ta.requiresGrad ? sumToShape(binaryRaw('mul', g, tb), ta.shape) : null,
    tb.requiresGrad ? sumToShape(binaryRaw('mul', g, ta), tb.shape) : null,
  ]);
}

export function div(a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair(a, b);
  const out = binaryRaw('div', ta, tb);
  return record(out, 'div', [ta, tb], (g) => {
    const ga = binaryRaw('div', g, tb);
    return [
      ta.requiresGrad ? sumToShape(ga, ta.shape) : null,
      tb.requiresGrad ? sumToShape(neg(binaryRaw('mul', ga, out)), tb.shape) : null,
    ];
  });
}

export function pow(a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair(a, b);
  const out = binaryRaw('pow', ta, tb);
  return record(out, 'pow', [ta, tb], (g) => [
    ta.requiresGrad
      ? sumToShape(
          binaryRaw('mul', g, binaryRaw('mul', tb, binaryRaw('pow', ta, binaryRaw('sub', tb, scalar(1))))),
          ta.shape,
        )
      : null,
    tb.requiresGrad
      ? sumToShape(binaryRaw('mul', g, binaryRaw('mul', out, unaryRaw('log', ta))), tb.shape)
      : null,
  ]);
}

function minMax(op: 'maximum' | 'minimum', a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair(a, b);
  const out = binaryRaw(op, ta, tb);
  return record(out, op, [ta, tb], (g) => {
    // Ties split the gradient evenly, as torch does.
    const eq = binaryRaw('eq', ta, tb);
    const half = binaryRaw('mul', g, where(eq, scalar(0.5), scalar(1)));
    const aWins = binaryRaw(op === 'maximum' ? 'ge' : 'le', ta, tb);
    const bWins = binaryRaw(op === 'maximum' ? 'ge' : 'le', tb, ta);
    return [
      sumToShape(binaryRaw('mul', half, aWins), ta.shape),
      sumToShape(binaryRaw('mul', half, bWins), tb.shape),
    ];
  });
}

export function maximum(a: Operand, b: Operand): Tensor {
  return minMax('maximum', a, b);
}

export function minimum(a: Operand, b: Operand): Tensor {
  return minMax('minimum', a, b);
}

export function compare(
  op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge' | 'and' | 'or',
  a: Operand,
  b: Operand,
): Tensor {
  const [ta, tb] = pair(a, b);
  return binaryRaw(op, ta, tb);
}

export const eq = (a: Operand, b: Operand) => compare('eq', a, b);
export const ne = (a: Operand, b: Operand) => compare('ne', a, b);
export const lt = (a: Operand, b: Operand) => compare('lt', a, b);
export const le = (a: Operand, b: Operand) => compare('le', a, b);
export const gt = (a: Operand, b: Operand) => compare('gt', a, b);
export const ge = (a: Operand, b: Operand) => compare('ge', a, b);
export const logicalAnd = (a: Operand, b: Operand) => compare('and', a, b);
export const logicalOr = (a: Operand, b: Operand) => compare('or', a, b);

/** Python's floor-mod (torch.remainder). Not differentiable. */
export function remainder(a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair(a, b);
  return binaryRaw('mod', ta, tb);
}

export function atan2(a: Operand, b: Operand): Tensor {
  const [ta, tb] = pair(a, b);
  const out = binaryRaw('atan2', ta, tb);
  return record(out, 'atan2', [ta, tb], (g) => {
    const den = binaryRaw('add', binaryRaw('mul', ta, ta), binaryRaw('mul', tb, tb));
    return [
      sumToShape(binaryRaw('div', binaryRaw('mul', g, tb), den), ta.shape),
      sumToShape(neg(binaryRaw('div', binaryRaw('mul', g, ta), den)), tb.shape),
    ];
  });
}

function pair(a: Operand, b: Operand): [Tensor, Tensor] {
  const ta = asTensor(a, b instanceof Tensor ? b : undefined);
  const tb = asTensor(b, ta);
  return [ta, tb];
}

function floatInput(x: Tensor): Tensor {
  return x.dtype === 'float32' ? x : new Tensor(Float32Array.from(x.data), x.shape);
}

export function unaryRaw(op: UnaryOp, x: Tensor): Tensor {
  const xf = floatInput(x);
  const out = emptyFloat32(xf.size);
  kernels().unary(op, xf.data as Float32Array, out);
  return new Tensor(out, x.shape);
}

function unaryGradRaw(op: UnaryGradOp, x: Tensor, y: Tensor, g: Tensor): Tensor {
  const out = emptyFloat32(x.size);
  kernels().unaryGrad(op, x.data as Float32Array, y.data as Float32Array, g.data as Float32Array, out);
  return new Tensor(out, x.shape);
}

/** Unary op whose derivative is a fused kernel (activations). */
function activation(op: UnaryOp & UnaryGradOp, x: Tensor): Tensor {
  const y = unaryRaw(op, x);
  return record(y, op, [x], (g) => [unaryGradRaw(op, x, y, g)]);
}

export const relu = (x: Tensor) => activation('relu', x);
export const sigmoid = (x: Tensor) => activation('sigmoid', x);
export const tanh = (x: Tensor) => activation('tanh', x);
export const silu = (x: Tensor) => activation('silu', x);
export const erf = (x: Tensor) => activation('erf', x);
export const softplus = (x: Tensor) => activation('softplus', x);

/** GELU; approximate 'tanh' matches torch's `gelu(x, approximate='tanh')`. */
export function gelu(x: Tensor, options: { approximate?: 'none' | 'tanh' } = {}): Tensor {
  return activation(options.approximate === 'tanh' ? 'gelu_tanh' : 'gelu', x);
}

export function neg(x: Tensor): Tensor {
  return record(unaryRaw('neg', x), 'neg', [x], (g) => [unaryRaw('neg', g)]);
}

export function exp(x: Tensor): Tensor {
  const y = unaryRaw('exp', x);
  return record(y, 'exp', [x], (g) => [binaryRaw('mul', g, y)]);
}

export function expm1(x: Tensor): Tensor {
  const y = unaryRaw('expm1', x);
  return record(y, 'expm1', [x], (g) => [binaryRaw('mul', g, binaryRaw('add', y, scalar(1)))]);
}

export function log(x: Tensor): Tensor {
  return record(unaryRaw('log', x), 'log', [x], (g) => [binaryRaw('div', g, x)]);
}

export function log1p(x: Tensor): Tensor {
  return record(unaryRaw('log1p', x), 'log1p', [x], (g) => [
    binaryRaw('div', g, binaryRaw('add', x, scalar(1))),
  ]);
}

export function sqrt(x: Tensor): Tensor {
  const y = unaryRaw('sqrt', x);
  return record(y, 'sqrt', [x], (g) => [binaryRaw('div', binaryRaw('mul', g, scalar(0.5)), y)]);
}

export function rsqrt(x: Tensor): Tensor {
  const y = unaryRaw('rsqrt', x);
  return record(y, 'rsqrt', [x], (g) => [
    binaryRaw('mul', g, binaryRaw('mul', scalar(-0.5), binaryRaw('mul', y, binaryRaw('mul', y, y)))),
  ]);
}

export function abs(x: Tensor): Tensor {
  return record(unaryRaw('abs', x), 'abs', [x], (g) => [binaryRaw('mul', g, unaryRaw('sign', x))]);
}

export function square(x: Tensor): Tensor {
  return record(unaryRaw('square', x), 'square', [x], (g) => [
    binaryRaw('mul', g, binaryRaw('mul', x, scalar(2))),
  ]);
}

export function reciprocal(x: Tensor): Tensor {
  const y = unaryRaw('reciprocal', x);
  return record(y, 'reciprocal', [x], (g) => [neg(binaryRaw('mul', g, binaryRaw('mul', y, y)))]);
}

export function sin(x: Tensor): Tensor {
  return record(unaryRaw('sin', x), 'sin', [x], (g) => [binaryRaw('mul', g, unaryRaw('cos', x))]);
}

export function cos(x: Tensor): Tensor {
  return record(unaryRaw('cos', x), 'cos', [x], (g) => [neg(binaryRaw('mul', g, unaryRaw('sin', x)))]);
}

/** Piecewise-constant maps: no gradient flows (torch gives zeros). */
export const sign = (x: Tensor) => unaryRaw('sign', x);
export const floor = (x: Tensor) => unaryRaw('floor', x);
export const ceil = (x: Tensor) => unaryRaw('ceil', x);
export const round = (x: Tensor) => unaryRaw('round', x);

/**
 * LeakyReLU; float32 in one pass each way (composing where(gt(x, 0), x, x·slope) makes four
 * full-size tensors forward and four more backward, as costly as a 3D conv's im2col at full
 * resolution in UNETR), other dtypes by that composition.
 */
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  if (x.dtype !== 'float32') return where(gt(x, 0), x, mul(x, negativeSlope));
  const xd = x.data as Float32Array;
  const n = xd.length;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const v = xd[i];
    out[i] = v > 0 ? v : v * negativeSlope;
  }
  return record(new Tensor(out, x.shape), 'leakyRelu', [x], (g) => {
    const gd = g.data as Float32Array;
    const gx = new Float32Array(n);
    for (let i = 0; i < n; i++) gx[i] = xd[i] > 0 ? gd[i] : gd[i] * negativeSlope;
    return [new Tensor(gx, x.shape)];
  });
}

export function clamp(x: Tensor, min?: number | null, max?: number | null): Tensor {
  let y = x;
  if (min !== undefined && min !== null) y = where(lt(y, min), scalar(min), y);
  if (max !== undefined && max !== null) y = where(gt(y, max), scalar(max), y);
  return y;
}

/** cond ? a : b with broadcasting; gradients flow to the chosen side. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  if (cond.dtype !== 'bool') throw new Error(`where: condition must be a bool tensor, got ${cond.dtype}`);
  const [ta, tb] = pair(a, b);
  const shape = broadcastShapes(broadcastShapes(cond.shape, ta.shape, 'where'), tb.shape, 'where');
  const out = allocStorage(resultDType(ta, tb), sizeOf(shape));
  kernels().where(
    cond.data as Uint8Array,
    broadcastStrides(cond.shape, shape),
    ta.data,
    broadcastStrides(ta.shape, shape),
    tb.data,
    broadcastStrides(tb.shape, shape),
    out,
    shape,
  );
  const zero = scalar(0);
  return record(new Tensor(out, shape), 'where', [ta, tb], (g) => [
    ta.requiresGrad ? sumToShape(whereRaw(cond, g, zero), ta.shape) : null,
    tb.requiresGrad ? sumToShape(whereRaw(cond, zero, g), tb.shape) : null,
  ]);
}

function whereRaw(cond: Tensor, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
  const out = new Float32Array(sizeOf(shape));
  kernels().where(
    cond.data as Uint8Array,
    broadcastStrides(cond.shape, shape),
    a.data,
    broadcastStrides(a.shape, shape),
    b.data,
    broadcastStrides(b.shape, shape),
    out,
    shape,
  );
  return new Tensor(out, shape);
}

/** x with `value` where mask is true (mask broadcasts to x). */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  if (mask.dtype !== 'bool') throw new Error(`maskedFill: mask must be a bool tensor, got ${mask.dtype}`);
  broadcastShapes(x.shape, mask.shape, 'maskedFill');
  const y = where(mask, scalar(value, x.dtype === 'float32' ? 'float32' : x.dtype), x);
  if (!shapesEqual(y.shape, x.shape)) {
    throw new Error(`maskedFill: mask ${fmt(mask.shape)} would grow the input ${fmt(x.shape)}`);
  }
  return y;
}

/** dtype conversion; float→int truncates toward zero like torch. */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  const out = allocStorage(dtype, x.size);
  if (dtype === 'bool') for (let i = 0; i < x.size; i++) out[i] = x.data[i] !== 0 ? 1 : 0;
  else if (dtype === 'float32') out.set(x.data);
  else for (let i = 0; i < x.size; i++) out[i] = Math.trunc(x.data[i]);
  const y = new Tensor(out, x.shape);
  if (dtype === 'float32') return record(y, 'cast', [x], (g) => [g]);
  return y;
}
