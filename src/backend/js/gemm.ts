import { erf } from './elementwise.js';

/**
 * Batched GEMM: C[b] = act(alpha * op(A[b]) @ op(B[b]) + beta * C[b] (+ bias over columns)).
 * op(A) is (M, K), op(B) is (K, N). A batch stride of 0 broadcasts that operand.
 */
export interface GemmArgs {
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
  batch: number;
  m: number;
  n: number;
  k: number;
  transA?: boolean;
  transB?: boolean;
  strideA?: number;
  strideB?: number;
  strideC?: number;
  alpha?: number;
  beta?: number;
  /** (N,) added to every row after the product. */
  bias?: Float32Array;
  /** Applied last, elementwise: 'relu' or 'gelu' (the erf form, torch's default). */
  activation?: 'relu' | 'gelu';
}

export function gemm(args: GemmArgs): void {
  const { a, b, c, batch, m, n, k } = args;
  const transA = args.transA ?? false;
  const transB = args.transB ?? false;
  const strideA = args.strideA ?? m * k;
  const strideB = args.strideB ?? k * n;
  const strideC = args.strideC ?? m * n;
  const alpha = args.alpha ?? 1;
  const beta = args.beta ?? 0;
  const bias = args.bias;
  const activation = args.activation;
  // Row of accumulators in float64 would change rounding vs. float32 peers; use float32 like BLAS.
  const row = new Float32Array(n);
  const bt = transB ? new Float32Array(k * n) : null;
  for (let bi = 0; bi < batch; bi++) {
    const ao = bi * strideA;
    const bo = bi * strideB;
    const co = bi * strideC;
    let bm = b;
    let bOff = bo;
    if (bt) {
      // Transpose B once per batch so the inner loop streams rows of B.
      for (let kk = 0; kk < k; kk++) for (let j = 0; j < n; j++) bt[kk * n + j] = b[bo + j * k + kk];
      bm = bt;
      bOff = 0;
    }
    for (let i = 0; i < m; i++) {
      row.fill(0);
      for (let kk = 0; kk < k; kk++) {
        const av = transA ? a[ao + kk * m + i] : a[ao + i * k + kk];
        if (av === 0) continue;
        const bRow = bOff + kk * n;
        for (let j = 0; j < n; j++) row[j] += av * bm[bRow + j];
      }
      const cRow = co + i * n;
      for (let j = 0; j < n; j++) {
        let v = alpha * row[j];
        if (beta !== 0) v += beta * c[cRow + j];
        if (bias) v += bias[j];
        if (activation === 'relu') v = v > 0 || v !== v ? v : 0;
        else if (activation === 'gelu') v = 0.5 * v * (1 + erf(v * Math.SQRT1_2));
        c[cRow + j] = v;
      }
    }
  }
}
