/** Elementwise kernels: unary maps, their derivatives, and broadcasting binary ops. */

export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'abs'
  | 'sign'
  | 'tanh'
  | 'erf'
  | 'relu'
  | 'gelu'
  | 'gelu_tanh'
  | 'silu'
  | 'sigmoid'
  | 'sin'
  | 'cos'
  | 'floor'
  | 'ceil'
  | 'round'
  | 'reciprocal'
  | 'square'
  | 'log1p'
  | 'expm1'
  | 'softplus';

/** Activations and maps whose gradient is computed by `unaryGrad` from x (and y where cheaper). */
export type UnaryGradOp = 'tanh' | 'relu' | 'gelu' | 'gelu_tanh' | 'silu' | 'sigmoid' | 'erf' | 'softplus';

export type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'pow'
  | 'maximum'
  | 'minimum'
  | 'atan2'
  | 'mod'
  | 'eq'
  | 'ne'
  | 'lt'
  | 'le'
  | 'gt'
  | 'ge'
  | 'and'
  | 'or';

type Num = Float32Array | Int32Array | Float64Array | Uint8Array;

/** erf with float32-level accuracy (Abramowitz-Stegun 7.1.26 is too coarse; use a rational fit). */
export function erf(x: number): number {
  // W. J. Cody's rational approximations, as used by many libm implementations.
  const ax = Math.abs(x);
  if (ax < 0.5) {
    const t = x * x;
    const num =
      (((0.185777706184603153 * t + 3.1611237438705656) * t + 113.864154151050156) * t +
        377.485237685302021) *
        t +
      3209.37758913846947;
    const den =
      (((t + 23.6012909523441209) * t + 244.024637934444173) * t + 1282.61652607737228) * t +
      2844.23683343917062;
    return (x * num) / den;
  }
  let r: number;
  if (ax < 4) {
    const num =
      ((((((0.564188496988670089 * ax + 8.88314979438837594) * ax + 66.1191906371416295) * ax +
        298.635138197400131) *
        ax +
        881.95222124176909) *
        ax +
        1712.04761263407058) *
        ax +
        2051.07837782607147) *
        ax +
      1230.33935479799725;
    const den =
      (((((((ax + 15.7449261107098347) * ax + 117.693950891312499) * ax + 537.181101862009858) * ax +
        1621.38957456669019) *
        ax +
        3290.79923573345963) *
        ax +
        4362.61909014324716) *
        ax +
        3439.36767414372164) *
        ax +
      1230.33935480374942;
    r = 1 - (Math.exp(-ax * ax) * num) / den;
  } else {
    const z = 1 / (ax * ax);
    const num =
      ((((0.0163153871373020978 * z + 0.305326634961232344) * z + 0.360344899949804439) * z +
        0.125781726111229246) *
        z +
        0.0160837851487422766) *
        z +
      0.000658749161529837803;
    const den =
      ((((z + 2.56852019228982242) * z + 1.87295284992346725) * z + 0.527905102951428412) * z +
        0.0605183413124413191) *
        z +
      0.00233520497626869185;
    const p = (z * num) / den;
    r = 1 - (Math.exp(-ax * ax) / ax) * (0.564189583547756287 - p);
  }
  return x < 0 ? -r : r;
}

const SQRT1_2 = Math.SQRT1_2;
const SQRT_2_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

function unaryFn(op: UnaryOp): (v: number) => number {
  switch (op) {
    case 'neg':
      return (v) => -v;
    case 'exp':
      return Math.exp;
    case 'log':
      return Math.log;
    case 'sqrt':
      return Math.sqrt;
    case 'rsqrt':
      return (v) => 1 / Math.sqrt(v);
    case 'abs':
      return Math.abs;
    case 'sign':
      return (v) => (v > 0 ? 1 : v < 0 ? -1 : v);
    case 'tanh':
      return Math.tanh;
    case 'erf':
      return erf;
    case 'relu':
      return (v) => (v > 0 ? v : v !== v ? v : 0);
    case 'gelu':
      return (v) => 0.5 * v * (1 + erf(v * SQRT1_2));
    case 'gelu_tanh':
      return (v) => 0.5 * v * (1 + Math.tanh(SQRT_2_PI * (v + 0.044715 * v * v * v)));
    case 'silu':
      return (v) => v / (1 + Math.exp(-v));
    case 'sigmoid':
      return (v) => 1 / (1 + Math.exp(-v));
    case 'sin':
      return Math.sin;
    case 'cos':
      return Math.cos;
    case 'floor':
      return Math.floor;
    case 'ceil':
      return Math.ceil;
    // torch rounds half to even
    case 'round':
      return (v) => {
        const r = Math.round(v);
        return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
      };
    case 'reciprocal':
      return (v) => 1 / v;
    case 'square':
      return (v) => v * v;
    case 'log1p':
      return Math.log1p;
    case 'expm1':
      return Math.expm1;
    // torch's softplus (beta 1, threshold 20)
    case 'softplus':
      return (v) => (v > 20 ? v : Math.log1p(Math.exp(v)));
  }
}

export function unary(op: UnaryOp, x: Float32Array, out: Float32Array): void {
  const n = x.length;
  if (op === 'relu') {
    for (let i = 0; i < n; i++) {
      const v = x[i];
      out[i] = v > 0 ? v : v !== v ? v : 0;
    }
    return;
  }
  const f = unaryFn(op);
  for (let i = 0; i < n; i++) out[i] = f(x[i]);
}

/** out = dy * f'(x); `y` is f(x) (used for tanh and sigmoid). */
export function unaryGrad(
  op: UnaryGradOp,
  x: Float32Array,
  y: Float32Array,
  dy: Float32Array,
  out: Float32Array,
): void {
  const n = x.length;
  switch (op) {
    case 'tanh':
      for (let i = 0; i < n; i++) out[i] = dy[i] * (1 - y[i] * y[i]);
      return;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = dy[i] * y[i] * (1 - y[i]);
      return;
    case 'relu':
      for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? dy[i] : 0;
      return;
    case 'erf':
      for (let i = 0; i < n; i++) out[i] = dy[i] * 2 * INV_SQRT_2PI * Math.SQRT2 * Math.exp(-x[i] * x[i]);
      return;
    case 'softplus':
      for (let i = 0; i < n; i++) out[i] = x[i] > 20 ? dy[i] : dy[i] / (1 + Math.exp(-x[i]));
      return;
    case 'silu':
      for (let i = 0; i < n; i++) {
        const s = 1 / (1 + Math.exp(-x[i]));
        out[i] = dy[i] * s * (1 + x[i] * (1 - s));
      }
      return;
    case 'gelu':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        out[i] = dy[i] * (0.5 * (1 + erf(v * SQRT1_2)) + v * INV_SQRT_2PI * Math.exp(-0.5 * v * v));
      }
      return;
    case 'gelu_tanh':
      for (let i = 0; i < n; i++) {
        const v = x[i];
        const inner = SQRT_2_PI * (v + 0.044715 * v * v * v);
        const t = Math.tanh(inner);
        const dInner = SQRT_2_PI * (1 + 3 * 0.044715 * v * v);
        out[i] = dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * dInner);
      }
      return;
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add':
      return (a, b) => a + b;
    case 'sub':
      return (a, b) => a - b;
    case 'mul':
      return (a, b) => a * b;
    case 'div':
      return (a, b) => a / b;
    case 'pow':
      return Math.pow;
    case 'maximum':
      return (a, b) => (a !== a || b !== b ? Number.NaN : Math.max(a, b));
    case 'minimum':
      return (a, b) => (a !== a || b !== b ? Number.NaN : Math.min(a, b));
    case 'atan2':
      return Math.atan2;
    // Python/torch remainder: the sign follows the divisor
    case 'mod':
      return (a, b) => a - Math.floor(a / b) * b;
    case 'eq':
      return (a, b) => (a === b ? 1 : 0);
    case 'ne':
      return (a, b) => (a !== b ? 1 : 0);
    case 'lt':
      return (a, b) => (a < b ? 1 : 0);
    case 'le':
      return (a, b) => (a <= b ? 1 : 0);
    case 'gt':
      return (a, b) => (a > b ? 1 : 0);
    case 'ge':
      return (a, b) => (a >= b ? 1 : 0);
    case 'and':
      return (a, b) => (a && b ? 1 : 0);
    case 'or':
      return (a, b) => (a || b ? 1 : 0);
  }
}

/**
 * out[i] = a[ia] op b[ib] over `shape`, where aStrides/bStrides are the broadcast strides (0 on
 * broadcast dims). `out` is contiguous with `shape`.
 */
export function binary(
  op: BinaryOp,
  a: Num,
  aStrides: readonly number[],
  b: Num,
  bStrides: readonly number[],
  out: Num,
  shape: readonly number[],
): void {
  const n = out.length;
  const nd = shape.length;
  let aContig = true;
  let bContig = true;
  let bScalar = true;
  let s = 1;
  for (let d = nd - 1; d >= 0; d--) {
    if (shape[d] !== 1) {
      if (aStrides[d] !== s) aContig = false;
      if (bStrides[d] !== s) bContig = false;
      if (bStrides[d] !== 0) bScalar = false;
    }
    s *= shape[d];
  }
  if (aContig && bContig) {
    switch (op) {
      case 'add':
        for (let i = 0; i < n; i++) out[i] = a[i] + b[i];
        return;
      case 'sub':
        for (let i = 0; i < n; i++) out[i] = a[i] - b[i];
        return;
      case 'mul':
        for (let i = 0; i < n; i++) out[i] = a[i] * b[i];
        return;
      case 'div':
        for (let i = 0; i < n; i++) out[i] = a[i] / b[i];
        return;
    }
    const f = binaryFn(op);
    for (let i = 0; i < n; i++) out[i] = f(a[i], b[i]);
    return;
  }
  if (aContig && bScalar) {
    const bv = b[0];
    switch (op) {
      case 'add':
        for (let i = 0; i < n; i++) out[i] = a[i] + bv;
        return;
      case 'sub':
        for (let i = 0; i < n; i++) out[i] = a[i] - bv;
        return;
      case 'mul':
        for (let i = 0; i < n; i++) out[i] = a[i] * bv;
        return;
      case 'div':
        for (let i = 0; i < n; i++) out[i] = a[i] / bv;
        return;
    }
    const f = binaryFn(op);
    for (let i = 0; i < n; i++) out[i] = f(a[i], bv);
    return;
  }
  const f = binaryFn(op);
  // Walk the output with an odometer over all but the last dim; the last dim is a tight loop.
  const last = nd - 1;
  const inner = nd === 0 ? 1 : shape[last];
  const sa = nd === 0 ? 0 : aStrides[last];
  const sb = nd === 0 ? 0 : bStrides[last];
  const idx = new Array<number>(Math.max(nd - 1, 0)).fill(0);
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < n; o += inner) {
    let pa = ia;
    let pb = ib;
    for (let j = 0; j < inner; j++) {
      out[o + j] = f(a[pa], b[pb]);
      pa += sa;
      pb += sb;
    }
    for (let d = last - 1; d >= 0; d--) {
      idx[d]++;
      ia += aStrides[d];
      ib += bStrides[d];
      if (idx[d] < shape[d]) break;
      ia -= aStrides[d] * shape[d];
      ib -= bStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/** out = cond ? a : b with broadcast strides for all three. */
export function where(
  cond: Uint8Array,
  cStrides: readonly number[],
  a: Num,
  aStrides: readonly number[],
  b: Num,
  bStrides: readonly number[],
  out: Num,
  shape: readonly number[],
): void {
  const nd = shape.length;
  const idx = new Array<number>(nd).fill(0);
  let ic = 0;
  let ia = 0;
  let ib = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = cond[ic] ? a[ia] : b[ib];
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]++;
      ic += cStrides[d];
      ia += aStrides[d];
      ib += bStrides[d];
      if (idx[d] < shape[d]) break;
      ic -= cStrides[d] * shape[d];
      ia -= aStrides[d] * shape[d];
      ib -= bStrides[d] * shape[d];
      idx[d] = 0;
    }
  }
}
