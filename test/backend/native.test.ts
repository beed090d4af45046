// Every native kernel against the js kernel (the normative one) on random shapes — 1, primes,
// sizes that straddle the GEMM and attention tiles — for every instruction set this CPU has and for
// 1 and 3 threads, with NaN/Inf propagation. The rest of the suite runs on the native backend by
// default, so the op and parity tests exercise these kernels through the ops too.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AttentionArgs } from '../../src/backend/js/attention.js';
import type { Window } from '../../src/backend/js/conv.js';
import type { BinaryOp, UnaryGradOp } from '../../src/backend/js/elementwise.js';
import type { GemmArgs } from '../../src/backend/js/gemm.js';
import { jsKernels } from '../../src/backend/js/index.js';
import {
  nativeKernels,
  nativeStatus,
  setNativeIsa,
  setNativeThreads,
  setPackedWeights,
  UNARY_OPS,
} from '../../src/backend/native.js';
import { assertClose } from '../helpers/assert.js';

const status = nativeStatus();
const skip = status.loaded ? false : `native addon not loaded: ${status.reason}`;
const native = nativeKernels ?? jsKernels;

// A small deterministic generator, so a failure reproduces.
let seed = 12345;
function uniform(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
}
function rand(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (uniform() * 2 - 1) * scale;
  return a;
}

function gemmCase(args: Omit<GemmArgs, 'c'>, c0: Float32Array, tol: number, what: string): void {
  const expected = c0.slice();
  const actual = c0.slice();
  jsKernels.gemm({ ...args, c: expected });
  native.gemm({ ...args, c: actual });
  assertClose(actual, expected, tol, what);
}

function gemmTests(): void {
  const shapes: Array<[number, number, number]> = [
    [1, 1, 1],
    [1, 7, 3],
    [13, 1, 17],
    [17, 19, 23],
    [97, 101, 300],
    [29, 3100, 5],
    [200, 130, 260],
  ];
  for (const [m, n, k] of shapes) {
    for (const [transA, transB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      test(`gemm ${m}x${n}x${k} transA=${transA} transB=${transB}`, () => {
        const a = rand(m * k);
        const b = rand(k * n);
        gemmCase(
          { a, b, batch: 1, m, n, k, transA, transB },
          new Float32Array(m * n),
          1e-5 * Math.sqrt(k),
          'gemm',
        );
      });
    }
  }
  test('gemm batched with broadcast operands, alpha, beta, bias and activations', () => {
    const [batch, m, n, k] = [3, 31, 37, 41];
    const a = rand(batch * m * k);
    const b = rand(k * n);
    const bias = rand(n);
    for (const activation of [undefined, 'relu', 'gelu'] as const) {
      gemmCase(
        { a, b, batch, m, n, k, strideB: 0, alpha: 0.5, beta: 0.75, bias, activation },
        rand(batch * m * n),
        1e-5,
        `broadcast B, ${activation}`,
      );
      gemmCase(
        {
          a: b,
          b: a,
          batch,
          m: n,
          n: m,
          k,
          transA: true,
          transB: true,
          strideA: 0,
          strideB: m * k,
          bias: bias.subarray(0, m),
          activation,
        },
        rand(batch * m * n),
        1e-5,
        `broadcast A, ${activation}`,
      );
    }
  });
  test('gemm epilogues kept in registers (alpha with beta 0 or 1) and the others, over blocks of k', () => {
    // k spans several blocks of packed B, so later blocks add into C; m and n leave edge tiles.
    const [m, n, k] = [150, 100, 600];
    const a = rand(m * k);
    const b = rand(k * n);
    const bias = rand(n);
    for (const [alpha, beta, withBias, activation] of [
      [2, 0, false, undefined],
      [0.5, 1, false, undefined],
      [1, 1, true, undefined],
      [1, 0, false, 'relu'],
    ] as const) {
      gemmCase(
        { a, b, batch: 1, m, n, k, alpha, beta, bias: withBias ? bias : undefined, activation },
        rand(m * n),
        1e-4,
        `alpha ${alpha}, beta ${beta}, bias ${withBias}, ${activation}`,
      );
    }
  });
  test('gemm with packed weights reused across calls (inference)', () => {
    const [m, n, k] = [45, 70, 300];
    const w = rand(n * k); // (out, in), the linear layout: B^T
    const bias = rand(n);
    setPackedWeights(true);
    try {
      for (const rows of [m, 1, 2 * m]) {
        const x = rand(rows * k);
        gemmCase(
          { a: x, b: w, batch: 1, m: rows, n, k, transB: true, bias },
          new Float32Array(rows * n),
          1e-4,
          'packed',
        );
      }
      const x = rand(3 * m * k);
      gemmCase(
        { a: x, b: w, batch: 3, m, n, k, transB: true, strideB: 0 },
        new Float32Array(3 * m * n),
        1e-4,
        'packed, batched',
      );
    } finally {
      setPackedWeights(false);
    }
  });
  test('gemm with k = 0 is beta * C + bias', () => {
    gemmCase(
      { a: new Float32Array(0), b: new Float32Array(0), batch: 2, m: 3, n: 5, k: 0, beta: 2, bias: rand(5) },
      rand(30),
      0,
      'k=0',
    );
  });
  test('gemm propagates NaN and Inf', () => {
    const [m, n, k] = [20, 35, 19];
    const a = rand(m * k);
    const b = rand(k * n);
    a[3 * k + 5] = Number.NaN; // row 3 of C is NaN
    b[7 * n + 11] = Number.POSITIVE_INFINITY; // column 11 is +-Inf (A has no zeros)
    const c = new Float32Array(m * n);
    native.gemm({ a, b, c, batch: 1, m, n, k });
    for (let j = 0; j < n; j++) assert.ok(Number.isNaN(c[3 * n + j]), `C[3, ${j}] should be NaN`);
    for (let i = 0; i < m; i++) if (i !== 3) assert.equal(Math.abs(c[i * n + 11]), Number.POSITIVE_INFINITY);
    gemmCase({ a, b, batch: 1, m, n, k }, new Float32Array(m * n), 1e-5, 'NaN/Inf');
  });
}

const UNARY_GRAD: UnaryGradOp[] = ['tanh', 'relu', 'gelu', 'gelu_tanh', 'silu', 'sigmoid', 'erf', 'softplus'];
const SPECIALS = [
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  0,
  -0,
  2.5,
  -2.5,
  0.5,
  88.5,
  -88.5,
  1e-7,
];

function elementwiseTests(): void {
  const x = rand(100_003, 6);
  x.set(SPECIALS, 17);
  for (const op of UNARY_OPS) {
    test(`unary ${op}`, () => {
      const expected = new Float32Array(x.length);
      const actual = new Float32Array(x.length);
      jsKernels.unary(op, x, expected);
      native.unary(op, x, actual);
      assertClose(actual, expected, 2e-6, op);
    });
  }
  for (const op of UNARY_GRAD) {
    test(`unaryGrad ${op}`, () => {
      const y = new Float32Array(x.length);
      jsKernels.unary(op, x, y);
      const dy = rand(x.length);
      const expected = new Float32Array(x.length);
      const actual = new Float32Array(x.length);
      jsKernels.unaryGrad(op, x, y, dy, expected);
      native.unaryGrad(op, x, y, dy, actual);
      assertClose(actual, expected, 2e-6, op);
    });
  }
  const ops: BinaryOp[] = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum', 'atan2', 'mod'];
  // [shape, aStrides, bStrides, aLength, bLength]: contiguous, broadcast, scalar, and a transposed view.
  const layouts: Array<[number[], number[], number[], number, number]> = [
    [[70_001], [1], [1], 70_001, 70_001],
    [[3, 4, 5], [5, 0, 1], [0, 1, 0], 15, 4],
    [[7, 1], [1, 0], [0, 0], 7, 1],
    [[2, 300, 257], [300 * 257, 1, 300], [0, 257, 1], 2 * 300 * 257, 300 * 257],
    [[], [], [], 1, 1],
  ];
  for (const op of ops) {
    test(`binary ${op}`, () => {
      for (const [shape, as, bs, na, nb] of layouts) {
        const a = rand(na, 4);
        const b = op === 'pow' ? rand(nb, 3) : rand(nb, 4);
        if (na > 20) a.set(SPECIALS, 3);
        if (nb > 20) b.set(SPECIALS.slice().reverse(), 3);
        const n = shape.reduce((p, s) => p * s, 1);
        const expected = new Float32Array(n);
        const actual = new Float32Array(n);
        jsKernels.binary(op, a, as, b, bs, expected, shape);
        native.binary(op, a, as, b, bs, actual, shape);
        assertClose(actual, expected, 1e-6, `${op} ${JSON.stringify(shape)}`);
      }
    });
  }
}

function normalizationTests(): void {
  for (const [rows, cols] of [
    [1, 1],
    [3, 7],
    [401, 197],
    [5, 1000],
  ]) {
    test(`softmax and logSoftmax ${rows}x${cols}`, () => {
      const x = rand(rows * cols, 8);
      if (rows > 2) {
        x.fill(Number.NEGATIVE_INFINITY, cols, 2 * cols); // a fully masked row: NaN, as torch
        x[2 * cols] = Number.NaN;
      }
      for (const log of [false, true]) {
        const expected = new Float32Array(x.length);
        const actual = new Float32Array(x.length);
        jsKernels.softmax(x, rows, cols, expected, log);
        native.softmax(x, rows, cols, actual, log);
        assertClose(actual, expected, 1e-6, log ? 'logSoftmax' : 'softmax');
      }
    });
    test(`layerNorm forward and backward ${rows}x${cols}`, () => {
      const x = rand(rows * cols, 3);
      const gy = rand(rows * cols);
      for (const affine of [false, true]) {
        const w = affine ? rand(cols) : null;
        const b = affine ? rand(cols) : null;
        const out = [new Float32Array(x.length), new Float32Array(x.length)];
        const mean = [new Float32Array(rows), new Float32Array(rows)];
        const rstd = [new Float32Array(rows), new Float32Array(rows)];
        jsKernels.layerNorm(x, rows, cols, w, b, 1e-5, out[0], mean[0], rstd[0]);
        native.layerNorm(x, rows, cols, w, b, 1e-5, out[1], mean[1], rstd[1]);
        assertClose(out[1], out[0], 1e-5, 'layerNorm');
        assertClose(mean[1], mean[0], 1e-6, 'mean');
        assertClose(rstd[1], rstd[0], 1e-5, 'rstd');
        const gx = [new Float32Array(x.length), new Float32Array(x.length)];
        const gw = affine ? [rand(cols), new Float32Array(cols)] : [null, null];
        const gb = affine ? [rand(cols), new Float32Array(cols)] : [null, null];
        if (gw[0] && gw[1]) gw[1].set(gw[0]); // both accumulate into the same starting values
        if (gb[0] && gb[1]) gb[1].set(gb[0]);
        jsKernels.layerNormBackward(x, gy, rows, cols, w, mean[0], rstd[0], gx[0], gw[0], gb[0]);
        native.layerNormBackward(x, gy, rows, cols, w, mean[0], rstd[0], gx[1], gw[1], gb[1]);
        assertClose(gx[1], gx[0], 1e-4, 'gx');
        if (gw[0] && gw[1]) assertClose(gw[1], gw[0], 1e-4, 'gw');
        if (gb[0] && gb[1]) assertClose(gb[1], gb[0], 1e-4, 'gb');
      }
    });
  }
  test('reduce sum, prod, max, min over every axis layout', () => {
    for (const [outer, n, inner] of [
      [1, 1, 1],
      [1, 100_003, 1],
      [7, 13, 300],
      [1, 3001, 768],
      [5, 0, 3],
    ]) {
      const x = rand(outer * n * inner, 2);
      if (x.length > 40) x[37] = Number.NaN;
      for (const op of ['sum', 'prod', 'max', 'min'] as const) {
        const src = op === 'prod' ? x.map((v) => 1 + v / 100) : x;
        const expected = new Float32Array(outer * inner);
        const actual = new Float32Array(outer * inner);
        jsKernels.reduce(op, src, outer, n, inner, expected);
        native.reduce(op, src, outer, n, inner, actual);
        assertClose(actual, expected, 1e-5, `${op} (${outer}, ${n}, ${inner})`);
      }
    }
  });
  test('copyStrided: permute, slice, flip and accumulated broadcast', () => {
    const src = rand(2 * 3 * 50 * 64);
    const cases: Array<[number, number[], number[], number, number[], number, boolean]> = [
      // (B, N, H, D) -> (B, H, N, D)
      [
        0,
        [2, 3, 50, 64],
        [3 * 50 * 64, 64, 3 * 64, 1],
        0,
        [3 * 50 * 64, 50 * 64, 64, 1],
        2 * 3 * 50 * 64,
        false,
      ],
      // a slice with an offset, written into a larger buffer
      [100, [7, 9], [64, 2], 5, [9, 1], 70, false],
      // a flip: negative source stride
      [63, [3, 64], [64, -1], 0, [64, 1], 192, false],
      // the adjoint of a broadcast: destinations repeat and sum
      [0, [40, 64], [64, 1], 0, [0, 1], 64, true],
    ];
    for (const [so, shape, ss, dOff, ds, dLen, acc] of cases) {
      const expected = rand(dLen);
      const actual = expected.slice();
      jsKernels.copyStrided(src, so, ss, shape, expected, dOff, ds, acc);
      native.copyStrided(src, so, ss, shape, actual, dOff, ds, acc);
      assertClose(actual, expected, 1e-6, `copyStrided ${JSON.stringify(shape)}`);
    }
  });
}

function attentionCase(
  b: number,
  h: number,
  nq: number,
  nk: number,
  d: number,
  dv: number,
  extra: Partial<AttentionArgs>,
  what: string,
): void {
  const args: AttentionArgs = {
    q: rand(b * h * nq * d, 2),
    k: rand(b * h * nk * d, 2),
    v: rand(b * h * nk * dv),
    out: new Float32Array(b * h * nq * dv),
    batch: b,
    heads: h,
    nq,
    nk,
    d,
    dv,
    scale: 1 / Math.sqrt(Math.max(d, 1)),
    ...extra,
  };
  const withProbs = (p: boolean) => ({
    ...args,
    out: new Float32Array(args.out.length),
    probs: p ? new Float32Array(b * h * nq * nk) : undefined,
  });
  const expected = withProbs(true);
  jsKernels.attention(expected);
  for (const probs of [false, true]) {
    const actual = withProbs(probs);
    native.attention(actual);
    assertClose(actual.out, expected.out, 1e-5, `${what}: out`);
    if (actual.probs) assertClose(actual.probs, expected.probs!, 1e-6, `${what}: probs`);
  }
  const gradOut = rand(args.out.length);
  const grads = () => ({
    gradOut,
    gq: new Float32Array(args.q.length),
    gk: new Float32Array(args.k.length),
    gv: new Float32Array(args.v.length),
  });
  const ref = { ...args, ...grads() };
  jsKernels.attentionBackward(ref);
  for (const probs of [undefined, expected.probs]) {
    const g = { ...args, probs, ...grads() };
    native.attentionBackward(g);
    for (const key of ['gq', 'gk', 'gv'] as const) assertClose(g[key], ref[key], 1e-4, `${what}: ${key}`);
  }
}

function attentionTests(): void {
  test('attention: tiny and prime shapes', () => {
    attentionCase(1, 1, 1, 1, 1, 1, {}, '1x1');
    attentionCase(2, 3, 17, 19, 8, 5, {}, 'primes');
    attentionCase(1, 2, 5, 3, 4, 4, { causal: true }, 'causal, nk < nq');
  });
  test('attention: blocks of queries and keys (crossing the tile sizes)', () => {
    attentionCase(1, 2, 70, 300, 64, 64, {}, 'plain');
    attentionCase(2, 1, 130, 130, 16, 24, { causal: true }, 'causal');
  });
  test('attention: additive masks (shared, per batch key padding, per head) and fully masked rows', () => {
    const [b, h, nq, nk] = [2, 3, 40, 263];
    const shared = rand(nq * nk, 3);
    shared.fill(Number.NEGATIVE_INFINITY, 5 * nk, 6 * nk); // query 5 sees no key: output and grads 0
    attentionCase(b, h, nq, nk, 16, 16, { mask: shared }, 'shared mask');
    const padding = new Float32Array(b * nk);
    padding.fill(Number.NEGATIVE_INFINITY, nk - 30, nk); // batch 0: the last 30 keys are padding
    attentionCase(b, h, nq, nk, 16, 16, { mask: padding, maskStrides: [nk, 0, 0] }, 'key padding');
    const perHead = rand(h * nq * nk);
    attentionCase(
      b,
      h,
      nq,
      nk,
      16,
      8,
      { mask: perHead, maskStrides: [0, nq * nk, nk], causal: true },
      'per head',
    );
  });
  test('attention propagates NaN', () => {
    const [nq, nk, d] = [9, 11, 4];
    const q = rand(nq * d);
    q[2 * d] = Number.NaN;
    const args: AttentionArgs = {
      q,
      k: rand(nk * d),
      v: rand(nk * d),
      out: new Float32Array(nq * d),
      batch: 1,
      heads: 1,
      nq,
      nk,
      d,
      dv: d,
      scale: 0.5,
    };
    native.attention(args);
    for (let c = 0; c < d; c++) assert.ok(Number.isNaN(args.out[2 * d + c]), 'row 2 should be NaN');
    assert.ok(Number.isFinite(args.out[0]), 'row 0 should be finite');
  });
}

function window(
  inSize: number[],
  kernel: number[],
  stride: number[],
  padding: number[],
  dilation: number[],
): Window {
  const outSize = inSize.map(
    (s, i) => Math.floor((s + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i]) + 1,
  );
  return { inSize, outSize, kernel, stride, padding, dilation };
}

function convTests(): void {
  const windows: Array<[string, Window]> = [
    ['2d 3x3 pad 1', window([1, 13, 11], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1])],
    ['2d 5x5 stride 2 dilation 2', window([1, 29, 31], [1, 5, 5], [1, 2, 2], [0, 3, 2], [1, 2, 2])],
    ['3d 3x3x3 stride 2', window([7, 9, 8], [3, 3, 3], [2, 2, 2], [1, 1, 1], [1, 1, 1])],
    ['1x1', window([1, 4, 4], [1, 1, 1], [1, 1, 1], [0, 0, 0], [1, 1, 1])],
  ];
  const plane = (s: readonly number[]) => s[0] * s[1] * s[2];
  for (const [name, win] of windows) {
    test(`im2col and col2im ${name}`, () => {
      const channels = 5;
      const x = rand(channels * plane(win.inSize));
      const rows = channels * plane(win.kernel);
      const colsLen = rows * plane(win.outSize);
      const expected = rand(colsLen);
      const actual = rand(colsLen);
      jsKernels.im2col(x, channels, win, expected);
      native.im2col(x, channels, win, actual);
      assertClose(actual, expected, 0, 'im2col');
      const cols = rand(colsLen);
      const gx = [rand(x.length), new Float32Array(x.length)];
      gx[1].set(gx[0]);
      jsKernels.col2im(cols, channels, win, gx[0]);
      native.col2im(cols, channels, win, gx[1]);
      assertClose(gx[1], gx[0], 1e-5, 'col2im');
    });
    test(`depthwise conv forward and backward ${name}`, () => {
      const [batch, channels, multiplier] = [2, 3, 2];
      const x = rand(batch * channels * plane(win.inSize));
      const w = rand(channels * multiplier * plane(win.kernel));
      const bias = rand(channels * multiplier);
      const outLen = batch * channels * multiplier * plane(win.outSize);
      const expected = new Float32Array(outLen);
      const actual = new Float32Array(outLen);
      jsKernels.depthwiseConv(x, w, bias, batch, channels, multiplier, win, expected);
      native.depthwiseConv(x, w, bias, batch, channels, multiplier, win, actual);
      assertClose(actual, expected, 1e-5, 'depthwiseConv');
      const gy = rand(outLen);
      const gx = [new Float32Array(x.length), new Float32Array(x.length)];
      const gw = [new Float32Array(w.length), new Float32Array(w.length)];
      jsKernels.depthwiseConvBackward(x, w, gy, batch, channels, multiplier, win, gx[0], gw[0]);
      native.depthwiseConvBackward(x, w, gy, batch, channels, multiplier, win, gx[1], gw[1]);
      assertClose(gx[1], gx[0], 1e-5, 'gx');
      assertClose(gw[1], gw[0], 1e-4, 'gw');
    });
  }
}

describe('native backend', { skip }, () => {
  const isas = status.isas ?? [];
  const defaults = { isa: status.isa ?? 'scalar', threads: status.threads ?? 1 };
  after(() => {
    if (!status.loaded) return;
    setNativeIsa(defaults.isa);
    setNativeThreads(defaults.threads);
  });
  for (const isa of isas) {
    for (const threads of [1, 3]) {
      describe(`${isa}, ${threads} thread${threads > 1 ? 's' : ''}`, () => {
        before(() => {
          setNativeIsa(isa);
          setNativeThreads(threads);
        });
        gemmTests();
        elementwiseTests();
        normalizationTests();
        attentionTests();
        convTests();
      });
    }
  }

  test('1 and 3 threads agree on a GEMM split across threads', () => {
    const [m, n, k] = [300, 520, 270];
    const a = rand(m * k);
    const b = rand(n * k);
    const c1 = new Float32Array(m * n);
    const c3 = new Float32Array(m * n);
    setNativeThreads(1);
    native.gemm({ a, b, c: c1, batch: 1, m, n, k, transB: true });
    setNativeThreads(3);
    native.gemm({ a, b, c: c3, batch: 1, m, n, k, transB: true });
    assertClose(c3, c1, 1e-6, '1 vs 3 threads');
  });

  test('worker threads using the addon at the same time get correct results', async () => {
    // Each worker loads the addon itself and checks a GEMM against a plain triple loop.
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      const lib = require(workerData.path);
      const [m, n, k] = [60, 70, 80];
      const a = Float32Array.from({ length: m * k }, (_, i) => ((i * 7) % 13) - 6);
      const b = Float32Array.from({ length: k * n }, (_, i) => ((i * 5) % 11) - 5);
      let worst = 0;
      for (let rep = 0; rep < 30; rep++) {
        const c = new Float32Array(m * n);
        lib.gemm(a, b, c, null, 1, m, n, k, false, false, m * k, k * n, m * n, 1, 0, 0, null);
        for (let i = 0; i < m; i += 7) for (let j = 0; j < n; j += 5) {
          let s = 0;
          for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
          worst = Math.max(worst, Math.abs(s - c[i * n + j]));
        }
      }
      parentPort.postMessage(worst);`;
    const path = new URL('../../build/Release/glimpse_native.node', import.meta.url).pathname;
    const { Worker } = await import('node:worker_threads');
    const runs = [0, 1, 2].map(
      () =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { path } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    );
    for (let i = 0; i < 20; i++)
      gemmCase(
        { a: rand(90 * 80), b: rand(80 * 70), batch: 1, m: 90, n: 70, k: 80 },
        new Float32Array(90 * 70),
        1e-4,
        'main',
      );
    for (const worst of await Promise.all(runs)) assert.equal(worst, 0, 'integer-valued products are exact');
  });

  test('a wrong size throws a RangeError instead of touching memory', () => {
    assert.throws(
      () =>
        native.gemm({
          a: new Float32Array(5),
          b: new Float32Array(6),
          c: new Float32Array(4),
          batch: 1,
          m: 2,
          n: 2,
          k: 3,
        }),
      /native gemm: a has 5 elements, needs 6/,
    );
    assert.throws(() => setNativeIsa('avx9000'), /not available/);
  });
});
