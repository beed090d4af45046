/** Data movement: strided copies (permute, slice, expand, concat, pad) and index gathers. */
type Num = Float32Array | Int32Array | Float64Array | Uint8Array;

/**
 * For every index i over `shape`: dst[dstOffset + i·dstStrides] (+)= src[srcOffset + i·srcStrides].
 * With `accumulate`, repeated destinations sum (the adjoint of a broadcasting or overlapping read).
 */
export function copyStrided(
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
  let total = 1;
  for (const d of shape) total *= d;
  if (total === 0) return;
  if (nd === 0) {
    dst[dstOffset] = accumulate ? dst[dstOffset] + src[srcOffset] : src[srcOffset];
    return;
  }
  const last = nd - 1;
  const inner = shape[last];
  const ss = srcStrides[last];
  const ds = dstStrides[last];
  const idx = new Array<number>(nd).fill(0);
  let is = srcOffset;
  let id = dstOffset;
  for (let o = 0; o < total; o += inner) {
    if (accumulate) {
      for (let j = 0, ps = is, pd = id; j < inner; j++, ps += ss, pd += ds) dst[pd] += src[ps];
    } else if (ss === 1 && ds === 1) {
      for (let j = 0; j < inner; j++) dst[id + j] = src[is + j];
    } else {
      for (let j = 0, ps = is, pd = id; j < inner; j++, ps += ss, pd += ds) dst[pd] = src[ps];
    }
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      is += srcStrides[d];
      id += dstStrides[d];
      if (idx[d] < shape[d]) break;
      is -= srcStrides[d] * shape[d];
      id -= dstStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** out[o, j, i] = x[o, index[j], i] for x viewed as (outer, dimSize, inner). */
export function indexSelect(
  x: Num,
  outer: number,
  dimSize: number,
  inner: number,
  index: ArrayLike<number>,
  out: Num,
): void {
  const m = index.length;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const src = (o * dimSize + index[j]) * inner;
      const dst = (o * m + j) * inner;
      for (let i = 0; i < inner; i++) out[dst + i] = x[src + i];
    }
  }
}

/** The adjoint of indexSelect: dx[o, index[j], i] += g[o, j, i]. */
export function indexAdd(
  g: Float32Array,
  outer: number,
  dimSize: number,
  inner: number,
  index: ArrayLike<number>,
  dx: Float32Array,
): void {
  const m = index.length;
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      const dst = (o * dimSize + index[j]) * inner;
      const src = (o * m + j) * inner;
      for (let i = 0; i < inner; i++) dx[dst + i] += g[src + i];
    }
  }
}

/** torch.gather along the middle axis: out[o, j, i] = x[o, index[o, j, i], i], index (outer, m, inner). */
export function gather(
  x: Num,
  outer: number,
  dimSize: number,
  inner: number,
  index: ArrayLike<number>,
  m: number,
  out: Num,
): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      for (let i = 0; i < inner; i++) {
        const p = (o * m + j) * inner + i;
        out[p] = x[(o * dimSize + index[p]) * inner + i];
      }
    }
  }
}

/** The adjoint of gather (torch.scatter_add): dx[o, index[o, j, i], i] += g[o, j, i]. */
export function scatterAdd(
  g: Float32Array,
  outer: number,
  dimSize: number,
  inner: number,
  index: ArrayLike<number>,
  m: number,
  dx: Float32Array,
): void {
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < m; j++) {
      for (let i = 0; i < inner; i++) {
        const p = (o * m + j) * inner + i;
        dx[(o * dimSize + index[p]) * inner + i] += g[p];
      }
    }
  }
}
