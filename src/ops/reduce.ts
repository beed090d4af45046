/** Reductions: sum/mean/var/std, max/min (values, with the gradient to the arg position), argmax/argmin. */
import type { ReduceOp } from '../backend/js/reduce.js';
import { kernels } from '../backend/backend.js';
import { record } from '../tensor/autograd.js';
import { allocStorage, type DType } from '../tensor/dtype.js';
import { normalizeAxis, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { binaryRaw, mul, sub } from './elementwise.js';
import { scalar } from './creation.js';
import { expand, reshape } from './shape.js';

type Dims = number | readonly number[] | undefined;

function normDims(x: Tensor, dim: Dims, op: string): number[] {
  if (dim === undefined) return x.shape.map((_, i) => i);
  const ds = typeof dim === 'number' ? [dim] : [...dim];
  return [...new Set(ds.map((d) => normalizeAxis(d, x.ndim, op)))].sort((a, b) => a - b);
}

function keptShape(x: Tensor, dims: number[]): number[] {
  return x.shape.map((s, i) => (dims.includes(i) ? 1 : s));
}

function outShape(x: Tensor, dims: number[], keepdim: boolean): number[] {
  return keepdim ? keptShape(x, dims) : x.shape.filter((_, i) => !dims.includes(i));
}

/** Reduces one axis at a time (from the last), returning the keepdim-shaped result. */
function reduceRaw(op: ReduceOp, x: Tensor, dims: number[], dtype: DType): Tensor {
  let data = x.data;
  let shape = [...x.shape];
  for (const d of [...dims].reverse()) {
    const outer = sizeOf(shape.slice(0, d));
    const inner = sizeOf(shape.slice(d + 1));
    const out = allocStorage(dtype, outer * inner);
    kernels().reduce(op, data, outer, shape[d], inner, out);
    data = out;
    shape = [...shape];
    shape[d] = 1;
  }
  if (dims.length === 0) data = data.slice();
  return new Tensor(data, shape);
}

export function sum(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = normDims(x, dim, 'sum');
  const kept = reduceRaw('sum', x, dims, x.dtype === 'float32' ? 'float32' : 'int64');
  const out = new Tensor(kept.data, outShape(x, dims, keepdim));
  return record(out, 'sum', [x], (g) => [expand(new Tensor(g.data, kept.shape), x.shape)]);
}

export function mean(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = normDims(x, dim, 'mean');
  const count = dims.reduce((acc, d) => acc * x.shape[d], 1);
  return mul(sum(x, dims, keepdim), 1 / count);
}

/** Variance with Bessel's correction by default (torch.var: correction = 1). */
export function variance(
  x: Tensor,
  dim?: Dims,
  options: { keepdim?: boolean; correction?: number } = {},
): Tensor {
  const dims = normDims(x, dim, 'var');
  const count = dims.reduce((acc, d) => acc * x.shape[d], 1);
  const centered = sub(x, mean(x, dims, true));
  const ss = sum(mul(centered, centered), dims, options.keepdim ?? false);
  return mul(ss, 1 / Math.max(count - (options.correction ?? 1), 0));
}

export function std(x: Tensor, dim?: Dims, options: { keepdim?: boolean; correction?: number } = {}): Tensor {
  const v = variance(x, dim, options);
  const y = new Tensor(Float32Array.from(v.data, Math.sqrt), v.shape);
  return record(y, 'std', [v], (g) => [binaryRaw('div', binaryRaw('mul', g, scalar(0.5)), y)]);
}

function extremum(op: 'max' | 'min', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  if (x.size === 0) throw new Error(`${op}: cannot reduce an empty tensor`);
  if (dim === undefined) {
    const flat = new Tensor(x.data, [x.size]);
    const v = extremum(op, flat, 0, false);
    return record(new Tensor(v.data, []), op, [x], (g) => {
      // torch spreads the gradient evenly over ties for a full reduction
      const ties = binaryRaw('eq', x, new Tensor(v.data, []));
      let n = 0;
      for (let i = 0; i < ties.size; i++) n += ties.data[i];
      return [binaryRaw('mul', binaryRaw('mul', ties, g), scalar(1 / n))];
    });
  }
  const d = normalizeAxis(dim, x.ndim, op);
  const vals = reduceRaw(op, x, [d], x.dtype);
  const idx = reduceRaw(op === 'max' ? 'argmax' : 'argmin', x, [d], 'int64');
  const out = new Tensor(vals.data, outShape(x, [d], keepdim));
  return record(out, op, [x], (g) => {
    const outer = sizeOf(x.shape.slice(0, d));
    const inner = sizeOf(x.shape.slice(d + 1));
    const gx = new Float32Array(x.size);
    kernels().scatterAdd(g.data as Float32Array, outer, x.shape[d], inner, idx.data, 1, gx);
    return [new Tensor(gx, x.shape)];
  });
}

export function max(x: Tensor, dim?: number, keepdim = false): Tensor {
  return extremum('max', x, dim, keepdim);
}

export function min(x: Tensor, dim?: number, keepdim = false): Tensor {
  return extremum('min', x, dim, keepdim);
}

/** max over several dims (torch.amax), gradient split evenly over ties. */
export function amax(x: Tensor, dim?: Dims, keepdim = false): Tensor {
  const dims = normDims(x, dim, 'amax');
  const kept = reduceRaw('max', x, dims, x.dtype);
  const out = new Tensor(kept.data, outShape(x, dims, keepdim));
  return record(out, 'amax', [x], (g) => {
    const ties = binaryRaw('eq', x, kept);
    const count = reduceRaw('sum', ties, dims, 'float32');
    return [binaryRaw('mul', ties, binaryRaw('div', new Tensor(g.data, kept.shape), count))];
  });
}

function argExt(op: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, keepdim: boolean): Tensor {
  if (dim === undefined) {
    const r = reduceRaw(op, new Tensor(x.data, [x.size]), [0], 'int64');
    return new Tensor(r.data, []);
  }
  const d = normalizeAxis(dim, x.ndim, op);
  const r = reduceRaw(op, x, [d], 'int64');
  return new Tensor(r.data, outShape(x, [d], keepdim));
}

export function argmax(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argExt('argmax', x, dim, keepdim);
}

export function argmin(x: Tensor, dim?: number, keepdim = false): Tensor {
  return argExt('argmin', x, dim, keepdim);
}

export function logsumexp(x: Tensor, dim: Dims, keepdim = false): Tensor {
  const dims = normDims(x, dim, 'logsumexp');
  const m = reduceRaw('max', x, dims, 'float32');
  for (let i = 0; i < m.size; i++) if (!Number.isFinite(m.data[i])) m.data[i] = 0;
  const shifted = sub(x, m);
  const s = sum(shifted.exp(), dims, true);
  const out = s.log().add(m);
  return keepdim ? out : reshape(out, outShape(x, dims, false));
}

/** Number of true/non-zero elements (not differentiable). */
export function countNonzero(x: Tensor): number {
  let n = 0;
  for (let i = 0; i < x.size; i++) if (x.data[i] !== 0) n++;
  return n;
}
