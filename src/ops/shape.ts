/** Shape and data-movement ops: reshape is free, the rest copy through `copyStrided`. */
import { kernels } from '../backend/backend.js';
import { record } from '../tensor/autograd.js';
import { allocStorage } from '../tensor/dtype.js';
import { fmt, normalizeAxis, resolveShape, sizeOf, stridesOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { sumToShape } from './elementwise.js';

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = resolveShape(shape, x.size, 'reshape', x.shape);
  return record(new Tensor(x.data, s), 'reshape', [x], (g) => [new Tensor(g.data, x.shape)]);
}

export const view = reshape;

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normalizeAxis(startDim, x.ndim, 'flatten');
  const e = normalizeAxis(endDim, x.ndim, 'flatten');
  return reshape(x, [...x.shape.slice(0, s), sizeOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = dim < 0 ? dim + x.ndim + 1 : dim;
  if (d < 0 || d > x.ndim) throw new Error(`unsqueeze: dim ${dim} out of range for ${x.ndim} dims`);
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  if (dim === undefined)
    return reshape(
      x,
      x.shape.filter((s) => s !== 1),
    );
  const d = normalizeAxis(dim, x.ndim, 'squeeze');
  if (x.shape[d] !== 1) return x;
  return reshape(x, [...x.shape.slice(0, d), ...x.shape.slice(d + 1)]);
}

function permuteRaw(x: Tensor, perm: readonly number[]): Tensor {
  const shape = perm.map((p) => x.shape[p]);
  const strides = stridesOf(x.shape);
  const out = allocStorage(x.dtype, x.size);
  kernels().copyStrided(
    x.data,
    0,
    perm.map((p) => strides[p]),
    shape,
    out,
    0,
    stridesOf(shape),
  );
  return new Tensor(out, shape);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim) {
    throw new Error(`permute: ${dims.length} dims given for a tensor of shape ${fmt(x.shape)}`);
  }
  const perm = dims.map((d) => normalizeAxis(d, x.ndim, 'permute'));
  if (new Set(perm).size !== perm.length) throw new Error(`permute: repeated dim in [${dims}]`);
  if (perm.every((p, i) => p === i)) return x;
  const inverse = new Array<number>(perm.length);
  perm.forEach((p, i) => {
    inverse[p] = i;
  });
  return record(permuteRaw(x, perm), 'permute', [x], (g) => [permuteRaw(g, inverse)]);
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const a = normalizeAxis(d0, x.ndim, 'transpose');
  const b = normalizeAxis(d1, x.ndim, 'transpose');
  const perm = x.shape.map((_, i) => i);
  perm[a] = b;
  perm[b] = a;
  return permute(x, perm);
}

/** Broadcasts x to `shape` (torch.expand; -1 keeps a dim), materialized as a copy. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const lead = shape.length - x.ndim;
  if (lead < 0) throw new Error(`expand: cannot expand ${fmt(x.shape)} to fewer dims ${fmt(shape)}`);
  const target = shape.map((s, i) => (s === -1 ? x.shape[i - lead] : s));
  const srcStrides = stridesOf(x.shape);
  const strides = target.map((s, i) => {
    if (i < lead) return 0;
    const d = x.shape[i - lead];
    if (d === s) return d === 1 ? 0 : srcStrides[i - lead];
    if (d === 1) return 0;
    throw new Error(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape)} (dim ${i}: ${d} vs ${s})`);
  });
  const out = allocStorage(x.dtype, sizeOf(target));
  kernels().copyStrided(x.data, 0, strides, target, out, 0, stridesOf(target));
  return record(new Tensor(out, target), 'expand', [x], (g) => [sumToShape(g, x.shape)]);
}

/** x[..., start:end:step, ...] along `dim` (negative start/end count from the end; step > 0). */
export function slice(x: Tensor, dim: number, start: number, end?: number, step = 1): Tensor {
  const d = normalizeAxis(dim, x.ndim, 'slice');
  const n = x.shape[d];
  if (step <= 0) throw new Error(`slice: step must be positive, got ${step}`);
  const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = clampIdx(start);
  const e = end === undefined ? n : clampIdx(end);
  const len = Math.max(0, Math.ceil((e - s) / step));
  const shape = [...x.shape];
  shape[d] = len;
  const strides = stridesOf(x.shape);
  const srcStrides = [...strides];
  srcStrides[d] *= step;
  const offset = s * strides[d];
  const out = allocStorage(x.dtype, sizeOf(shape));
  kernels().copyStrided(x.data, offset, srcStrides, shape, out, 0, stridesOf(shape));
  return record(new Tensor(out, shape), 'slice', [x], (g) => {
    const gx = new Float32Array(x.size);
    kernels().copyStrided(g.data, 0, stridesOf(shape), shape, gx, offset, srcStrides);
    return [new Tensor(gx, x.shape)];
  });
}

export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  return slice(x, dim, start, start + length);
}

/** x.select(dim, i): the slice at index i with that dim removed. */
export function select(x: Tensor, dim: number, index: number): Tensor {
  const d = normalizeAxis(dim, x.ndim, 'select');
  const n = x.shape[d];
  const i = index < 0 ? index + n : index;
  if (i < 0 || i >= n) throw new Error(`select: index ${index} out of range for dim ${dim} of size ${n}`);
  return squeeze(slice(x, d, i, i + 1), d);
}

export function cat(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('cat: expected a non-empty list of tensors');
  const first = tensors[0];
  const d = normalizeAxis(dim, first.ndim, 'cat');
  for (const t of tensors) {
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== d && s !== first.shape[i])) {
      throw new Error(`cat: shapes ${fmt(first.shape)} and ${fmt(t.shape)} differ outside dim ${dim}`);
    }
  }
  const shape = [...first.shape];
  shape[d] = tensors.reduce((acc, t) => acc + t.shape[d], 0);
  const dtype = tensors.every((t) => t.dtype === first.dtype) ? first.dtype : 'float32';
  const out = allocStorage(dtype, sizeOf(shape));
  const outStrides = stridesOf(shape);
  const offsets: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    offsets.push(offset);
    kernels().copyStrided(t.data, 0, stridesOf(t.shape), t.shape, out, offset * outStrides[d], outStrides);
    offset += t.shape[d];
  }
  return record(new Tensor(out, shape), 'cat', tensors, (g) =>
    tensors.map((t, i) => (t.requiresGrad ? sliceRaw(g, d, offsets[i], t.shape[d]) : null)),
  );
}

function sliceRaw(g: Tensor, d: number, start: number, len: number): Tensor {
  const shape = [...g.shape];
  shape[d] = len;
  const strides = stridesOf(g.shape);
  const out = new Float32Array(sizeOf(shape));
  kernels().copyStrided(g.data, start * strides[d], strides, shape, out, 0, stridesOf(shape));
  return new Tensor(out, shape);
}

export const concat = cat;

export function stack(tensors: readonly Tensor[], dim = 0): Tensor {
  if (tensors.length === 0) throw new Error('stack: expected a non-empty list of tensors');
  const d = dim < 0 ? dim + tensors[0].ndim + 1 : dim;
  return cat(
    tensors.map((t) => unsqueeze(t, d)),
    d,
  );
}

/** Splits into pieces of `size` along dim (the last may be smaller), or into the given sizes. */
export function split(x: Tensor, size: number | readonly number[], dim = 0): Tensor[] {
  const d = normalizeAxis(dim, x.ndim, 'split');
  const n = x.shape[d];
  const sizes: number[] = [];
  if (typeof size === 'number') for (let s = 0; s < n; s += size) sizes.push(Math.min(size, n - s));
  else {
    if (size.reduce((a, b) => a + b, 0) !== n) {
      throw new Error(`split: sizes [${size}] do not add up to ${n} (dim ${dim} of ${fmt(x.shape)})`);
    }
    sizes.push(...size);
  }
  const out: Tensor[] = [];
  let start = 0;
  for (const s of sizes) {
    out.push(slice(x, d, start, start + s));
    start += s;
  }
  return out;
}

export function chunk(x: Tensor, chunks: number, dim = 0): Tensor[] {
  const n = x.shape[normalizeAxis(dim, x.ndim, 'chunk')];
  return split(x, Math.ceil(n / chunks), dim);
}

export function unbind(x: Tensor, dim = 0): Tensor[] {
  const d = normalizeAxis(dim, x.ndim, 'unbind');
  return Array.from({ length: x.shape[d] }, (_, i) => select(x, d, i));
}

/**
 * Constant padding, torch's F.pad order: [left, right] for the last dim, then [top, bottom] for the
 * one before, and so on. Negative pads crop.
 */
export function pad(x: Tensor, pads: readonly number[], value = 0): Tensor {
  if (pads.length % 2 !== 0 || pads.length / 2 > x.ndim) {
    throw new Error(`pad: expected pairs of pads for at most ${x.ndim} dims, got [${pads}]`);
  }
  const before = new Array<number>(x.ndim).fill(0);
  const after = new Array<number>(x.ndim).fill(0);
  for (let i = 0; i < pads.length / 2; i++) {
    before[x.ndim - 1 - i] = pads[2 * i];
    after[x.ndim - 1 - i] = pads[2 * i + 1];
  }
  const shape = x.shape.map((s, i) => s + before[i] + after[i]);
  if (shape.some((s) => s < 0)) throw new Error(`pad: pads [${pads}] crop ${fmt(x.shape)} below zero`);
  // Region of x that survives (negative pads crop it).
  const srcStart = before.map((b) => Math.max(0, -b));
  const dstStart = before.map((b) => Math.max(0, b));
  const region = x.shape.map((s, i) => Math.max(0, s - srcStart[i] - Math.max(0, -after[i])));
  const xs = stridesOf(x.shape);
  const os = stridesOf(shape);
  const srcOff = srcStart.reduce((acc, v, i) => acc + v * xs[i], 0);
  const dstOff = dstStart.reduce((acc, v, i) => acc + v * os[i], 0);
  const out = allocStorage(x.dtype, sizeOf(shape));
  if (value !== 0) out.fill(value);
  kernels().copyStrided(x.data, srcOff, xs, region, out, dstOff, os);
  return record(new Tensor(out, shape), 'pad', [x], (g) => {
    const gx = new Float32Array(x.size);
    kernels().copyStrided(g.data, dstOff, os, region, gx, srcOff, xs);
    return [new Tensor(gx, x.shape)];
  });
}

/** torch.roll along the given dims. */
export function roll(
  x: Tensor,
  shifts: number | readonly number[],
  dims: number | readonly number[],
): Tensor {
  const sh = typeof shifts === 'number' ? [shifts] : shifts;
  const ds = typeof dims === 'number' ? [dims] : dims;
  let y = x;
  ds.forEach((dim, i) => {
    const d = normalizeAxis(dim, x.ndim, 'roll');
    const n = x.shape[d];
    const s = ((sh[i] % n) + n) % n;
    if (s !== 0) y = cat([slice(y, d, n - s, n), slice(y, d, 0, n - s)], d);
  });
  return y;
}

export function flip(x: Tensor, dims: readonly number[]): Tensor {
  const strides = stridesOf(x.shape);
  const src = [...strides];
  let offset = 0;
  for (const dim of dims) {
    const d = normalizeAxis(dim, x.ndim, 'flip');
    src[d] = -strides[d];
    offset += (x.shape[d] - 1) * strides[d];
  }
  const out = allocStorage(x.dtype, x.size);
  kernels().copyStrided(x.data, offset, src, x.shape, out, 0, strides);
  return record(new Tensor(out, x.shape), 'flip', [x], (g) => [flip(g, dims)]);
}

/** torch.repeat: tiles x `reps` times along each dim. */
export function repeat(x: Tensor, reps: readonly number[]): Tensor {
  const lead = reps.length - x.ndim;
  if (lead < 0) throw new Error(`repeat: ${reps.length} repeats for ${x.ndim} dims`);
  const xs = [...new Array<number>(lead).fill(1), ...x.shape];
  // (r0, s0, r1, s1, ...) expanded, then merged.
  const inter: number[] = [];
  const shapeA: number[] = [];
  xs.forEach((s, i) => {
    inter.push(reps[i], s);
    shapeA.push(1, s);
  });
  const y = expand(reshape(x, shapeA), inter);
  return reshape(
    y,
    xs.map((s, i) => s * reps[i]),
  );
}

function checkIndex(index: Tensor, size: number, op: string): void {
  if (index.dtype !== 'int32' && index.dtype !== 'int64') {
    throw new Error(`${op}: index must be an int32/int64 tensor, got ${index.dtype}`);
  }
  for (let i = 0; i < index.size; i++) {
    const v = index.data[i];
    if (v < 0 || v >= size) throw new Error(`${op}: index ${v} out of range for a dim of size ${size}`);
  }
}

/** torch.index_select: rows of x along dim at the given (1-D) indices. */
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normalizeAxis(dim, x.ndim, 'indexSelect');
  checkIndex(index, x.shape[d], 'indexSelect');
  const outer = sizeOf(x.shape.slice(0, d));
  const inner = sizeOf(x.shape.slice(d + 1));
  const shape = [...x.shape];
  shape[d] = index.size;
  const out = allocStorage(x.dtype, sizeOf(shape));
  kernels().indexSelect(x.data, outer, x.shape[d], inner, index.data, out);
  return record(new Tensor(out, shape), 'indexSelect', [x], (g) => {
    const gx = new Float32Array(x.size);
    kernels().indexAdd(g.data as Float32Array, outer, x.shape[d], inner, index.data, gx);
    return [new Tensor(gx, x.shape)];
  });
}

/** torch.gather: out[i][j][k] = x[i][index[i][j][k]][k] (dim 1); index has x's shape except on dim. */
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  const d = normalizeAxis(dim, x.ndim, 'gather');
  if (index.ndim !== x.ndim || index.shape.some((s, i) => i !== d && s !== x.shape[i])) {
    throw new Error(
      `gather: index ${fmt(index.shape)} must match input ${fmt(x.shape)} except on dim ${dim}`,
    );
  }
  checkIndex(index, x.shape[d], 'gather');
  const outer = sizeOf(x.shape.slice(0, d));
  const inner = sizeOf(x.shape.slice(d + 1));
  const m = index.shape[d];
  const out = allocStorage(x.dtype, index.size);
  kernels().gather(x.data, outer, x.shape[d], inner, index.data, m, out);
  return record(new Tensor(out, index.shape), 'gather', [x], (g) => {
    const gx = new Float32Array(x.size);
    kernels().scatterAdd(g.data as Float32Array, outer, x.shape[d], inner, index.data, m, gx);
    return [new Tensor(gx, x.shape)];
  });
}

/** A copy with its own storage (gradient passes through). */
export function clone(x: Tensor): Tensor {
  return record(x.cloneData(), 'clone', [x], (g) => [g]);
}
