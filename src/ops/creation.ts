/** Tensor constructors and the seeded random generator. */
import { allocStorage, type DType, type Storage } from '../tensor/dtype.js';
import { fmt, type Shape, sizeOf } from '../tensor/shape.js';
import { Tensor, type TensorLike } from '../tensor/tensor.js';

// xoshiro128** — small, fast, and reproducible across platforms.
let s0 = 0x9e3779b9;
let s1 = 0x243f6a88;
let s2 = 0xb7e15162;
let s3 = 0x12345678;
let spareNormal: number | null = null;

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function nextU32(): number {
  const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const t = s1 << 9;
  s2 ^= s0;
  s3 ^= s1;
  s1 ^= s2;
  s0 ^= s3;
  s2 ^= t;
  s3 = rotl(s3, 11);
  return result;
}

/** Seeds the global generator used by rand/randn/randint/dropout and initializers. */
export function manualSeed(seed: number): void {
  // splitmix32 to spread the seed over the state
  let z = seed >>> 0;
  const next = () => {
    z = (z + 0x9e3779b9) >>> 0;
    let r = z;
    r = Math.imul(r ^ (r >>> 16), 0x85ebca6b);
    r = Math.imul(r ^ (r >>> 13), 0xc2b2ae35);
    return (r ^ (r >>> 16)) >>> 0;
  };
  s0 = next();
  s1 = next();
  s2 = next();
  s3 = next();
  spareNormal = null;
}

/** Uniform in [0, 1). */
export function random(): number {
  return nextU32() / 4294967296;
}

export function randomNormal(): number {
  if (spareNormal !== null) {
    const v = spareNormal;
    spareNormal = null;
    return v;
  }
  let u = 0;
  while (u === 0) u = random();
  const v = random();
  const r = Math.sqrt(-2 * Math.log(u));
  spareNormal = r * Math.sin(2 * Math.PI * v);
  return r * Math.cos(2 * Math.PI * v);
}

/** A reproducible generator independent of the global one (data shuffling, augmentation). */
export class Generator {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
  normal(): number {
    let u = 0;
    while (u === 0) u = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [items[i], items[j]] = [items[j], items[i]];
    }
    return items;
  }
}

function flatten(data: TensorLike, shape: number[], out: number[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length === depth) shape.push(data.length);
    else if (shape[depth] !== data.length)
      throw new Error('tensor: ragged nested array (rows of different lengths)');
    for (const d of data) flatten(d, shape, out, depth + 1);
  } else {
    if (shape.length !== depth) throw new Error('tensor: ragged nested array (mixed depths)');
    out.push(typeof data === 'boolean' ? (data ? 1 : 0) : data);
  }
}

/**
 * tensor(Float32Array | number[] | nested arrays, shape?, dtype?). With a flat array and no shape the
 * tensor is 1-D. Typed arrays are used without a copy when the dtype matches.
 */
export function tensor(data: TensorLike | Storage, shape?: Shape, dtype?: DType): Tensor {
  if (ArrayBuffer.isView(data)) {
    const storage = data as Storage;
    const s = shape ?? [storage.length];
    const dt =
      dtype ??
      (storage instanceof Float32Array
        ? 'float32'
        : storage instanceof Int32Array
          ? 'int32'
          : storage instanceof Float64Array
            ? 'int64'
            : 'bool');
    const target = allocStorage(dt, 0).constructor as { new (x: ArrayLike<number>): Storage };
    const st = storage.constructor === target ? storage : new target(storage);
    if (st.length !== sizeOf(s)) throw new Error(`tensor: ${st.length} values do not fill shape ${fmt(s)}`);
    return new Tensor(st, s);
  }
  const inferred: number[] = [];
  const flat: number[] = [];
  flatten(data, inferred, flat, 0);
  const s = shape ?? inferred;
  if (flat.length !== sizeOf(s)) throw new Error(`tensor: ${flat.length} values do not fill shape ${fmt(s)}`);
  const dt = dtype ?? (typeof data === 'boolean' ? 'bool' : 'float32');
  const st = allocStorage(dt, flat.length);
  for (let i = 0; i < flat.length; i++) st[i] = flat[i];
  return new Tensor(st, s);
}

export function scalar(value: number, dtype: DType = 'float32'): Tensor {
  const st = allocStorage(dtype, 1);
  st[0] = value;
  return new Tensor(st, []);
}

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  const st = allocStorage(dtype, sizeOf(shape));
  if (value !== 0) st.fill(value);
  return new Tensor(st, shape);
}

export function zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
  return full(shape, 0, dtype);
}

export function ones(shape: Shape, dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, t.dtype);
}

export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, t.dtype);
}

export function fullLike(t: Tensor, value: number): Tensor {
  return full(t.shape, value, t.dtype);
}

/** arange(end) or arange(start, end, step); float32 unless dtype is given. */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'float32'): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  const n = Math.max(0, Math.ceil((end - start) / step));
  const st = allocStorage(dtype, n);
  for (let i = 0; i < n; i++) st[i] = start + i * step;
  return new Tensor(st, [n]);
}

export function linspace(start: number, end: number, steps: number): Tensor {
  const st = new Float32Array(steps);
  const step = steps > 1 ? (end - start) / (steps - 1) : 0;
  for (let i = 0; i < steps; i++) st[i] = start + i * step;
  return new Tensor(st, [steps]);
}

export function eye(n: number, m = n): Tensor {
  const st = new Float32Array(n * m);
  for (let i = 0; i < Math.min(n, m); i++) st[i * m + i] = 1;
  return new Tensor(st, [n, m]);
}

export function rand(shape: Shape): Tensor {
  const st = new Float32Array(sizeOf(shape));
  for (let i = 0; i < st.length; i++) st[i] = random();
  return new Tensor(st, shape);
}

export function randn(shape: Shape): Tensor {
  const st = new Float32Array(sizeOf(shape));
  for (let i = 0; i < st.length; i++) st[i] = randomNormal();
  return new Tensor(st, shape);
}

/** Integers uniform in [low, high), int64 like torch. */
export function randint(low: number, high: number, shape: Shape): Tensor {
  const st = new Float64Array(sizeOf(shape));
  for (let i = 0; i < st.length; i++) st[i] = low + Math.floor(random() * (high - low));
  return new Tensor(st, shape);
}

/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number): Tensor {
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [idx[i], idx[j]] = [idx[j], idx[i]];
  }
  return new Tensor(Float64Array.from(idx), [n]);
}
