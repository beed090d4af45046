/** Matrix products (torch.matmul semantics with batch broadcasting) and the fused linear layer. */
import { kernels } from '../backend/backend.js';
import { checkPrepacked } from '../backend/prepacked.js';
import { isGradEnabled, record } from '../tensor/autograd.js';
import { emptyFloat32 } from '../tensor/dtype.js';
import { broadcastShapes, fmt, sizeOf } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { add, gelu, relu, sumToShape } from './elementwise.js';
import { expand, reshape } from './shape.js';

function requireFloat(t: Tensor, op: string): void {
  if (t.dtype !== 'float32') throw new Error(`${op}: expected float32 operands, got ${t.dtype}`);
}

/**
 * C (batch, m, n) = op(A) @ op(B) on raw batched operands. A batch count of 1 on one side broadcasts.
 * op(A) is A or A^T per `transA` (A stored (batch, m, k) or (batch, k, m)).
 */
export function gemmRaw(
  a: Tensor,
  b: Tensor,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  aBatched: boolean,
  bBatched: boolean,
): Float32Array {
  checkPrepacked(a.data, 'matmul');
  checkPrepacked(b.data, 'matmul');
  const c = emptyFloat32(batch * m * n);
  kernels().gemm({
    a: a.data as Float32Array,
    b: b.data as Float32Array,
    c,
    batch,
    m,
    n,
    k,
    transA,
    transB,
    strideA: aBatched ? m * k : 0,
    strideB: bBatched ? k * n : 0,
  });
  return c;
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  requireFloat(a, 'matmul');
  requireFloat(b, 'matmul');
  if (a.ndim === 0 || b.ndim === 0) throw new Error('matmul: both arguments need at least 1 dimension');
  // Vectors become matrices and the extra dim is dropped at the end, as torch does.
  const a2 = a.ndim === 1 ? reshape(a, [1, a.shape[0]]) : a;
  const b2 = b.ndim === 1 ? reshape(b, [b.shape[0], 1]) : b;
  const [m, k] = a2.shape.slice(-2);
  const [k2, n] = b2.shape.slice(-2);
  if (k !== k2) {
    throw new Error(`matmul: inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)} (${k} vs ${k2})`);
  }
  const batchShape = broadcastShapes(a2.shape.slice(0, -2), b2.shape.slice(0, -2), 'matmul');
  const batch = sizeOf(batchShape);
  let out: Tensor;
  if (b2.ndim === 2) {
    // (..., m, k) @ (k, n): fold the batch into rows, one GEMM.
    const rows = sizeOf(a2.shape.slice(0, -1));
    const c = gemmRaw(a2, b2, 1, rows, n, k, false, false, false, false);
    out = record(new Tensor(c, [...a2.shape.slice(0, -1), n]), 'matmul', [a2, b2], (g) => [
      a2.requiresGrad ? new Tensor(gemmRaw(g, b2, 1, rows, k, n, false, true, false, false), a2.shape) : null,
      b2.requiresGrad ? new Tensor(gemmRaw(a2, g, 1, k, n, rows, true, false, false, false), b2.shape) : null,
    ]);
  } else {
    const aFull = sizeOf(a2.shape.slice(0, -2)) === batch ? a2 : expand(a2, [...batchShape, m, k]);
    const bFull = sizeOf(b2.shape.slice(0, -2)) === batch ? b2 : expand(b2, [...batchShape, k, n]);
    const c = gemmRaw(aFull, bFull, batch, m, n, k, false, false, true, true);
    out = record(new Tensor(c, [...batchShape, m, n]), 'matmul', [aFull, bFull], (g) => [
      aFull.requiresGrad
        ? new Tensor(gemmRaw(g, bFull, batch, m, k, n, false, true, true, true), aFull.shape)
        : null,
      bFull.requiresGrad
        ? new Tensor(gemmRaw(aFull, g, batch, k, n, m, true, false, true, true), bFull.shape)
        : null,
    ]);
  }
  if (a.ndim === 1 && b.ndim === 1) return reshape(out, []);
  if (a.ndim === 1) return reshape(out, [...out.shape.slice(0, -2), n]);
  if (b.ndim === 1) return reshape(out, out.shape.slice(0, -1));
  return out;
}

export function bmm(a: Tensor, b: Tensor): Tensor {
  if (a.ndim !== 3 || b.ndim !== 3 || a.shape[0] !== b.shape[0]) {
    throw new Error(`bmm: expected (B, n, m) and (B, m, p), got ${fmt(a.shape)} and ${fmt(b.shape)}`);
  }
  return matmul(a, b);
}

/** y = x @ weight^T + bias with x (..., in), weight (out, in), bias (out,): one GEMM with a bias epilogue. */
export interface LinearOptions {
  /**
   * Applied to the output: relu, or gelu in its exact erf form (torch's default). With no gradient to
   * record it runs in the GEMM's epilogue, saving a pass over the output; otherwise it is the separate
   * op, so autograd sees exactly relu/gelu(linear(x)).
   */
  activation?: 'relu' | 'gelu';
  /**
   * Added to the output (after the activation, if any): residual + linear(x), the same shape as the
   * output. With no gradient to record the GEMM accumulates into a copy of it (beta = 1), saving the
   * separate add's pass; otherwise it is the separate add.
   */
  residual?: Tensor;
  /**
   * With `residual` and no gradient to record: accumulate into the residual's own storage and return
   * a tensor sharing it, skipping the copy. Only for a residual that nothing else reads afterwards.
   */
  overwriteResidual?: boolean;
}

// The GEMM must not write into storage it reads.
function sharesStorage(r: Tensor, ...others: (Tensor | null | undefined)[]): boolean {
  return others.some((t) => t !== null && t !== undefined && t.data.buffer === r.data.buffer);
}

export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null, options: LinearOptions = {}): Tensor {
  requireFloat(x, 'linear');
  const activation = options.activation;
  if (activation !== undefined && activation !== 'relu' && activation !== 'gelu') {
    throw new Error(`linear: unknown activation '${activation}'; use 'relu' or 'gelu'`);
  }
  const inF = x.shape[x.ndim - 1];
  if (weight.ndim !== 2 || weight.shape[1] !== inF) {
    throw new Error(
      `linear: input ${fmt(x.shape)} does not match weight ${fmt(weight.shape)} (expects (out, ${inF}))`,
    );
  }
  const outF = weight.shape[0];
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new Error(`linear: bias ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)}`);
  }
  const outShape = [...x.shape.slice(0, -1), outF];
  const residual = options.residual;
  if (residual) {
    requireFloat(residual, 'linear');
    if (residual.ndim !== outShape.length || residual.shape.some((d, i) => d !== outShape[i])) {
      throw new Error(
        `linear: residual ${fmt(residual.shape)} does not match the output ${fmt(outShape)}; add it separately to broadcast`,
      );
    }
  }
  // The GEMM's epilogue applies an activation after the accumulated C, so with both it stays separate.
  if (
    (activation && residual) ||
    ((activation || residual) &&
      isGradEnabled() &&
      (x.requiresGrad ||
        weight.requiresGrad ||
        (bias?.requiresGrad ?? false) ||
        (residual?.requiresGrad ?? false)))
  ) {
    const z = linear(x, weight, bias);
    const y = activation === 'gelu' ? gelu(z) : activation === 'relu' ? relu(z) : z;
    return residual ? add(residual, y) : y;
  }
  checkPrepacked(weight.data, 'linear');
  const rows = x.size / inF;
  let c: Float32Array;
  if (!residual) c = emptyFloat32(rows * outF);
  else if (options.overwriteResidual && !sharesStorage(residual, x, weight, bias)) {
    c = residual.data as Float32Array;
  } else {
    c = emptyFloat32(rows * outF);
    c.set(residual.data as Float32Array);
  }
  kernels().gemm({
    a: x.data as Float32Array,
    b: weight.data as Float32Array,
    c,
    batch: 1,
    m: rows,
    n: outF,
    k: inF,
    transB: true,
    beta: residual ? 1 : 0,
    bias: bias ? (bias.data as Float32Array) : undefined,
    activation,
  });
  if (activation || residual) return new Tensor(c, outShape);
  const parents = bias ? [x, weight, bias] : [x, weight];
  return record(new Tensor(c, outShape), 'linear', parents, (g) => [
    x.requiresGrad
      ? new Tensor(gemmRaw(g, weight, 1, rows, inF, outF, false, false, false, false), x.shape)
      : null,
    weight.requiresGrad
      ? new Tensor(gemmRaw(g, x, 1, outF, inF, rows, true, false, false, false), weight.shape)
      : null,
    bias?.requiresGrad ? sumToShape(new Tensor(g.data, [rows, outF]), [outF]) : null,
  ]);
}
