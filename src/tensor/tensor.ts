/**
 * Tensor: contiguous row-major storage, a shape, a dtype, and an autograd slot.
 * Methods are thin conveniences over the differentiable ops in `ops/`, which register themselves
 * through `installTensorOps` so that imports keep pointing downward (tensor/ never imports ops/).
 */
import { type BackwardRule, type GradNode, runBackward } from './autograd.js';
import { type DType, type Storage, allocStorage, dtypeOfStorage } from './dtype.js';
import { fmt, resolveShape, type Shape, sizeOf } from './shape.js';

type T = Tensor;
type Other = Tensor | number;

/** The op surface behind Tensor's methods; implemented in ops/ and installed once at import. */
export interface TensorOps {
  add(a: T, b: Other): T;
  sub(a: T, b: Other): T;
  mul(a: T, b: Other): T;
  div(a: T, b: Other): T;
  pow(a: T, b: Other): T;
  neg(a: T): T;
  exp(a: T): T;
  log(a: T): T;
  sqrt(a: T): T;
  abs(a: T): T;
  tanh(a: T): T;
  sigmoid(a: T): T;
  relu(a: T): T;
  matmul(a: T, b: T): T;
  reshape(a: T, shape: readonly number[]): T;
  permute(a: T, dims: readonly number[]): T;
  transpose(a: T, d0: number, d1: number): T;
  sum(a: T, dim?: number | readonly number[], keepdim?: boolean): T;
  mean(a: T, dim?: number | readonly number[], keepdim?: boolean): T;
  max(a: T, dim?: number, keepdim?: boolean): T;
  min(a: T, dim?: number, keepdim?: boolean): T;
  argmax(a: T, dim?: number, keepdim?: boolean): T;
  softmax(a: T, dim: number): T;
  logSoftmax(a: T, dim: number): T;
  cast(a: T, dtype: DType): T;
  expand(a: T, shape: readonly number[]): T;
  slice(a: T, dim: number, start: number, end?: number, step?: number): T;
  flatten(a: T, startDim?: number, endDim?: number): T;
  squeeze(a: T, dim?: number): T;
  unsqueeze(a: T, dim: number): T;
  clone(a: T): T;
}

let ops: TensorOps | null = null;

export function installTensorOps(table: TensorOps): void {
  ops = table;
}

function o(): TensorOps {
  if (!ops) throw new Error('glimpse: tensor ops are not loaded; import from the package entry (glimpse)');
  return ops;
}

export type TensorLike = number | boolean | TensorLike[];

export class Tensor {
  readonly data: Storage;
  readonly shape: readonly number[];
  readonly dtype: DType;
  requiresGrad = false;
  grad: Tensor | null = null;
  gradNode: GradNode | null = null;
  /** Keep `.grad` on a non-leaf tensor (torch's retain_grad). */
  retainsGrad = false;

  constructor(data: Storage, shape: Shape) {
    const size = sizeOf(shape);
    if (data.length !== size) {
      throw new Error(`Tensor: data has ${data.length} elements but shape ${fmt(shape)} needs ${size}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtypeOfStorage(data);
  }

  get size(): number {
    return this.data.length;
  }

  get ndim(): number {
    return this.shape.length;
  }

  /** The element count along `dim` (negative counts from the end). */
  dim(dim: number): number {
    return this.shape[dim < 0 ? dim + this.shape.length : dim];
  }

  get isLeaf(): boolean {
    return this.gradNode === null;
  }

  setRequiresGrad(flag = true): this {
    if (flag && this.dtype !== 'float32') {
      throw new Error(`requiresGrad: only float32 tensors can require grad, this one is ${this.dtype}`);
    }
    this.requiresGrad = flag;
    return this;
  }

  retainGrad(): this {
    this.retainsGrad = true;
    return this;
  }

  /** A tensor sharing this one's storage, cut from the graph. */
  detach(): Tensor {
    return new Tensor(this.data, this.shape);
  }

  /** A copy of the storage as a new leaf tensor. */
  cloneData(): Tensor {
    return new Tensor(this.data.slice() as Storage, this.shape);
  }

  backward(grad?: Tensor, options: { retainGraph?: boolean } = {}): void {
    let seed = grad;
    if (!seed) {
      if (this.size !== 1) {
        throw new Error(
          `backward: grad can be implicit only for a scalar output, this one is ${fmt(this.shape)}`,
        );
      }
      seed = new Tensor(new Float32Array([1]), this.shape);
    }
    if (seed.size !== this.size) {
      throw new Error(
        `backward: grad shape ${fmt(seed.shape)} does not match output shape ${fmt(this.shape)}`,
      );
    }
    runBackward(this, seed, options.retainGraph ?? false);
  }

  zeroGrad(): void {
    this.grad = null;
  }

  item(): number {
    if (this.size !== 1)
      throw new Error(`item: tensor has ${this.size} elements, expected 1 (${fmt(this.shape)})`);
    return Number(this.data[0]);
  }

  toFloat32Array(): Float32Array {
    return this.data instanceof Float32Array ? this.data : Float32Array.from(this.data);
  }

  /** Nested JavaScript arrays, like torch's `tolist()`. */
  toArray(): TensorLike {
    const build = (offset: number, dim: number): TensorLike => {
      if (dim === this.shape.length)
        return this.dtype === 'bool' ? this.data[offset] !== 0 : this.data[offset];
      const stride = sizeOf(this.shape.slice(dim + 1));
      const out: TensorLike[] = [];
      for (let i = 0; i < this.shape[dim]; i++) out.push(build(offset + i * stride, dim + 1));
      return out;
    };
    return build(0, 0);
  }

  toString(): string {
    const head = Array.from(this.data.slice(0, 8)).map((v) => Number(v).toPrecision(4));
    return `Tensor(${fmt(this.shape)}, ${this.dtype}, [${head.join(', ')}${this.size > 8 ? ', ...' : ''}])`;
  }

  // Convenience methods over ops/ (same semantics as the functional forms).
  add(b: Other): T {
    return o().add(this, b);
  }
  sub(b: Other): T {
    return o().sub(this, b);
  }
  mul(b: Other): T {
    return o().mul(this, b);
  }
  div(b: Other): T {
    return o().div(this, b);
  }
  pow(b: Other): T {
    return o().pow(this, b);
  }
  neg(): T {
    return o().neg(this);
  }
  exp(): T {
    return o().exp(this);
  }
  log(): T {
    return o().log(this);
  }
  sqrt(): T {
    return o().sqrt(this);
  }
  abs(): T {
    return o().abs(this);
  }
  tanh(): T {
    return o().tanh(this);
  }
  sigmoid(): T {
    return o().sigmoid(this);
  }
  relu(): T {
    return o().relu(this);
  }
  matmul(b: T): T {
    return o().matmul(this, b);
  }
  reshape(shape: readonly number[]): T {
    return o().reshape(this, shape);
  }
  view(shape: readonly number[]): T {
    return o().reshape(this, shape);
  }
  permute(dims: readonly number[]): T {
    return o().permute(this, dims);
  }
  transpose(d0: number, d1: number): T {
    return o().transpose(this, d0, d1);
  }
  sum(dim?: number | readonly number[], keepdim = false): T {
    return o().sum(this, dim, keepdim);
  }
  mean(dim?: number | readonly number[], keepdim = false): T {
    return o().mean(this, dim, keepdim);
  }
  max(dim?: number, keepdim = false): T {
    return o().max(this, dim, keepdim);
  }
  min(dim?: number, keepdim = false): T {
    return o().min(this, dim, keepdim);
  }
  argmax(dim?: number, keepdim = false): T {
    return o().argmax(this, dim, keepdim);
  }
  softmax(dim: number): T {
    return o().softmax(this, dim);
  }
  logSoftmax(dim: number): T {
    return o().logSoftmax(this, dim);
  }
  to(dtype: DType): T {
    return o().cast(this, dtype);
  }
  float(): T {
    return o().cast(this, 'float32');
  }
  expand(shape: readonly number[]): T {
    return o().expand(this, shape);
  }
  slice(dim: number, start: number, end?: number, step?: number): T {
    return o().slice(this, dim, start, end, step);
  }
  flatten(startDim = 0, endDim = -1): T {
    return o().flatten(this, startDim, endDim);
  }
  squeeze(dim?: number): T {
    return o().squeeze(this, dim);
  }
  unsqueeze(dim: number): T {
    return o().unsqueeze(this, dim);
  }
  clone(): T {
    return o().clone(this);
  }
}

/** Reshape that shares storage; used by autograd and ops (no graph recording). */
export function reshapeStorage(t: Tensor, shape: readonly number[]): Tensor {
  return new Tensor(t.data, resolveShape(shape, t.size, 'reshape', t.shape));
}

export function emptyTensor(shape: Shape, dtype: DType = 'float32'): Tensor {
  return new Tensor(allocStorage(dtype, sizeOf(shape)), shape);
}

export type { BackwardRule };
