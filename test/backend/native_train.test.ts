// The training kernels of native/train_addon.cc (batch norm, the stride-1 depthwise conv fast path,
// im2col/col2im over a batch, max pooling, attention on a fused qkv projection, the optimizer's
// arithmetic)
// against the js kernels, which are normative, on odd shapes for every instruction set this CPU has
// and 1 and 3 threads; and the dispatch: windows the fast path does not take still reach the general
// native kernel.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Window } from '../../src/backend/js/conv.js';
import { jsKernels } from '../../src/backend/js/index.js';
import { nativeKernels, nativeStatus, setNativeIsa, setNativeThreads } from '../../src/backend/native.js';
import { assertClose } from '../helpers/assert.js';

const status = nativeStatus();
const hasTrainKernels = nativeKernels !== null && 'batchNormStats' in nativeKernels;
const skip = !status.loaded
  ? `native addon not loaded: ${status.reason}`
  : hasTrainKernels
    ? false
    : 'the native addon was built before its training kernels; run npm run build:native';
// Native where the addon has the kernel (the skip above covers an addon without them).
const native = { ...jsKernels, ...nativeKernels };

let seed = 777;
function uniform(): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
}
function rand(n: number, scale = 1, offset = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (uniform() * 2 - 1) * scale + offset;
  return a;
}

function batchNormTests(): void {
  for (const [n, c, s] of [
    [1, 1, 1],
    [2, 3, 1],
    [3, 5, 17],
    [4, 7, 196],
    [2, 3, 5000],
  ]) {
    test(`batch norm stats, forward, backward (${n}, ${c}, ${s})`, () => {
      // A large mean checks the two-pass variance.
      const x = rand(n * c * s, 2, 3);
      const mean = [new Float64Array(c), new Float64Array(c)];
      const variance = [new Float64Array(c), new Float64Array(c)];
      jsKernels.batchNormStats(x, n, c, s, mean[0], variance[0]);
      native.batchNormStats(x, n, c, s, mean[1], variance[1]);
      assertClose(mean[1], mean[0], 1e-6, 'mean');
      assertClose(variance[1], variance[0], 1e-5, 'variance');

      const scale = Float64Array.from(rand(c, 1, 0.5));
      const shift = Float64Array.from(rand(c));
      const out = [new Float32Array(x.length), new Float32Array(x.length)];
      jsKernels.batchNormForward(x, n, c, s, scale, shift, out[0]);
      native.batchNormForward(x, n, c, s, scale, shift, out[1]);
      assertClose(out[1], out[0], 1e-6, 'forward');

      const gy = rand(x.length);
      const invstd = variance[0].map((v) => 1 / Math.sqrt(v + 1e-5));
      const weight = rand(c, 1, 1);
      for (const training of [true, false]) {
        for (const w of [weight, null]) {
          const gx = [new Float32Array(x.length), new Float32Array(x.length)];
          const gw = [new Float32Array(c), new Float32Array(c)];
          const gb = [new Float32Array(c), new Float32Array(c)];
          jsKernels.batchNormBackward(x, gy, n, c, s, mean[0], invstd, w, training, gx[0], gw[0], gb[0]);
          native.batchNormBackward(x, gy, n, c, s, mean[0], invstd, w, training, gx[1], gw[1], gb[1]);
          const what = `training=${training} weight=${w !== null}`;
          assertClose(gx[1], gx[0], 1e-4, `gx ${what}`);
          assertClose(gw[1], gw[0], 1e-4, `gw ${what}`);
          assertClose(gb[1], gb[0], 1e-4, `gb ${what}`);
        }
      }
      // gw and gb are optional.
      const gx = new Float32Array(x.length);
      native.batchNormBackward(x, gy, n, c, s, mean[0], invstd, weight, true, gx, null, null);
    });
  }
}

function window2d(
  h: number,
  w: number,
  k: [number, number],
  pad: [number, number],
  out?: [number, number],
): Window {
  const oh = out?.[0] ?? h + 2 * pad[0] - k[0] + 1;
  const ow = out?.[1] ?? w + 2 * pad[1] - k[1] + 1;
  return {
    inSize: [1, h, w],
    outSize: [1, oh, ow],
    kernel: [1, k[0], k[1]],
    stride: [1, 1, 1],
    padding: [0, pad[0], pad[1]],
    dilation: [1, 1, 1],
  };
}

function depthwiseCase(batch: number, channels: number, win: Window, what: string): void {
  const inPlane = win.inSize[1] * win.inSize[2];
  const outPlane = win.outSize[1] * win.outSize[2];
  const taps = win.kernel[1] * win.kernel[2];
  const x = rand(batch * channels * inPlane);
  const weight = rand(channels * taps);
  const bias = rand(channels);
  for (const b of [bias, null]) {
    const out = [
      new Float32Array(batch * channels * outPlane),
      new Float32Array(batch * channels * outPlane),
    ];
    jsKernels.depthwiseConv(x, weight, b, batch, channels, 1, win, out[0]);
    native.depthwiseConv(x, weight, b, batch, channels, 1, win, out[1]);
    assertClose(out[1], out[0], 1e-5, `forward ${what}`);
  }
  const gy = rand(batch * channels * outPlane);
  // Both kernels accumulate: start from the same non-zero buffers.
  const gx0 = rand(x.length);
  const gw0 = rand(weight.length);
  const gx = [gx0.slice(), gx0.slice()];
  const gw = [gw0.slice(), gw0.slice()];
  jsKernels.depthwiseConvBackward(x, weight, gy, batch, channels, 1, win, gx[0], gw[0]);
  native.depthwiseConvBackward(x, weight, gy, batch, channels, 1, win, gx[1], gw[1]);
  assertClose(gx[1], gx[0], 1e-5, `gx ${what}`);
  assertClose(gw[1], gw[0], 1e-4, `gw ${what}`);
  const onlyGw = gw0.slice();
  native.depthwiseConvBackward(x, weight, gy, batch, channels, 1, win, null, onlyGw);
  assertClose(onlyGw, gw[0], 1e-4, `gw alone ${what}`);
}

function depthwiseTests(): void {
  const cases: Array<[number, number, Window, string]> = [
    [2, 3, window2d(14, 14, [5, 5], [2, 2]), '14x14 k5 p2 (ConvMixer)'],
    [1, 2, window2d(7, 9, [3, 3], [1, 1]), '7x9 k3 p1'],
    [2, 2, window2d(5, 37, [3, 7], [0, 3]), '5x37 k3x7, wider than a vector'],
    [1, 3, window2d(6, 6, [9, 9], [4, 4]), 'kernel larger than the plane'],
    [1, 1, window2d(1, 11, [1, 3], [0, 1]), 'one row'],
    [2, 2, window2d(8, 8, [3, 3], [1, 1], [7, 6]), 'output shorter than same-size'],
  ];
  for (const [batch, channels, win, what] of cases) {
    test(`depthwise conv 2-D stride 1: ${what}`, () => depthwiseCase(batch, channels, win, what));
  }
  test('depthwise windows off the fast path (stride 2, dilation 2) still match', () => {
    const strided = { ...window2d(9, 9, [3, 3], [1, 1]), stride: [1, 2, 2], outSize: [1, 5, 5] };
    depthwiseCase(2, 3, strided, 'stride 2');
    const dilated = { ...window2d(9, 9, [3, 3], [2, 2]), dilation: [1, 2, 2] };
    depthwiseCase(1, 2, dilated, 'dilation 2');
  });
}

function window3d(
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

function batchColumnTests(): void {
  const cases: Array<[number, number, Window, string]> = [
    [3, 2, window3d([1, 7, 7], [1, 3, 3], [1, 1, 1], [0, 1, 1], [1, 1, 1]), '7x7 k3 p1 (ResNet stage)'],
    [2, 3, window3d([1, 28, 28], [1, 7, 7], [1, 2, 2], [0, 3, 3], [1, 1, 1]), '28x28 k7 s2 p3 (stem)'],
    [2, 1, window3d([1, 2, 2], [1, 3, 3], [1, 2, 2], [0, 1, 1], [1, 1, 1]), '2x2 k3 s2 p1 to 1x1'],
    [1, 2, window3d([1, 9, 11], [1, 3, 2], [1, 1, 2], [0, 2, 0], [1, 2, 1]), 'dilated, anisotropic'],
    [2, 2, window3d([4, 5, 6], [2, 3, 3], [1, 2, 1], [1, 1, 1], [1, 1, 1]), '3-D'],
  ];
  for (const [batch, channels, win, what] of cases) {
    test(`im2colBatch and col2imBatch: ${what}`, () => {
      const inPlane = win.inSize[0] * win.inSize[1] * win.inSize[2];
      const L = win.outSize[0] * win.outSize[1] * win.outSize[2];
      const K = channels * win.kernel[0] * win.kernel[1] * win.kernel[2];
      const x = rand(batch * channels * inPlane);
      // Stale contents must be overwritten.
      const cols = [rand(K * batch * L), rand(K * batch * L)];
      jsKernels.im2colBatch(x, batch, channels, win, cols[0]);
      native.im2colBatch(x, batch, channels, win, cols[1]);
      assertClose(cols[1], cols[0], 0, `im2colBatch ${what}`);
      // Image n's block is what im2col gives for it alone.
      const one = new Float32Array(K * L);
      jsKernels.im2col(x.subarray((batch - 1) * channels * inPlane), channels, win, one);
      for (let r = 0; r < K; r++) {
        assertClose(
          cols[0].subarray((r * batch + batch - 1) * L, (r * batch + batch) * L),
          one.subarray(r * L, (r + 1) * L),
          0,
          `row ${r} of the last image`,
        );
      }
      const g = rand(K * batch * L);
      const x0 = rand(x.length);
      const gx = [x0.slice(), x0.slice()];
      jsKernels.col2imBatch(g, batch, channels, win, gx[0]);
      native.col2imBatch(g, batch, channels, win, gx[1]);
      assertClose(gx[1], gx[0], 1e-5, `col2imBatch ${what}`);
    });
  }
}

function maxPoolTests(): void {
  const cases: Array<[number, Window, string]> = [
    [5, window3d([1, 14, 14], [1, 3, 3], [1, 2, 2], [0, 1, 1], [1, 1, 1]), 'ResNet stem pool 14x14 k3 s2 p1'],
    [3, window3d([1, 9, 8], [1, 2, 3], [1, 2, 1], [0, 1, 1], [1, 2, 1]), 'dilated, anisotropic'],
    [2, window3d([3, 5, 5], [2, 2, 2], [1, 2, 2], [0, 0, 0], [1, 1, 1]), '3-D'],
    [4, window3d([1, 7, 9], [1, 2, 2], [1, 2, 2], [0, 0, 0], [1, 1, 1]), '2x2 stride 2, odd sizes'],
  ];
  for (const [planes, win, what] of cases) {
    test(`maxPool: ${what}, with NaN and -Infinity`, () => {
      const inPlane = win.inSize[0] * win.inSize[1] * win.inSize[2];
      const L = win.outSize[0] * win.outSize[1] * win.outSize[2];
      const x = rand(planes * inPlane);
      x[3] = Number.NaN;
      x[4] = Number.NaN;
      x[inPlane + 1] = Number.NEGATIVE_INFINITY;
      // Ties: the first maximum in scan order wins.
      if (planes > 2) x.fill(2, 2 * inPlane, 2 * inPlane + Math.min(inPlane, 20));
      x.fill(Number.NEGATIVE_INFINITY, inPlane * (planes - 1));
      const out = [new Float32Array(planes * L), new Float32Array(planes * L)];
      const indices = [new Int32Array(planes * L), new Int32Array(planes * L)];
      jsKernels.maxPool(x, planes, win, out[0], indices[0]);
      native.maxPool(x, planes, win, out[1], indices[1]);
      assert.deepEqual([...out[1]], [...out[0]], 'values');
      assert.deepEqual([...indices[1]], [...indices[0]], 'indices');
    });
  }
}

function qkvAttentionTests(): void {
  for (const [B, N, H, D] of [
    [1, 1, 1, 1],
    [2, 7, 3, 5],
    [3, 50, 4, 32],
    [1, 65, 2, 20],
    [2, 17, 1, 64],
    // ViT-B's heads, and head dims past one register tile of vectors.
    [1, 197, 2, 64],
    [1, 70, 2, 80],
  ]) {
    test(`qkvAttention forward and backward (B ${B}, N ${N}, H ${H}, D ${D})`, () => {
      const qkv = rand(B * N * 3 * H * D, 2);
      const shape = { qkv, batch: B, seq: N, heads: H, headDim: D, scale: 1 / Math.sqrt(D) };
      const out = [new Float32Array(B * N * H * D), new Float32Array(B * N * H * D)];
      const probs = [new Float32Array(B * H * N * N), new Float32Array(B * H * N * N)];
      jsKernels.qkvAttention({ ...shape, out: out[0], probs: probs[0] });
      native.qkvAttention({ ...shape, out: out[1], probs: probs[1] });
      assertClose(out[1], out[0], 1e-5, 'out');
      assertClose(probs[1], probs[0], 1e-5, 'probs');
      // Without probabilities (inference) the output is the same.
      const plain = new Float32Array(out[0].length);
      native.qkvAttention({ ...shape, out: plain });
      assertClose(plain, out[0], 1e-5, 'out without probs');
      const gradOut = rand(B * N * H * D);
      const gqkv = [rand(qkv.length), rand(qkv.length)];
      jsKernels.qkvAttentionBackward({ ...shape, probs: probs[0], gradOut, gqkv: gqkv[0] });
      native.qkvAttentionBackward({ ...shape, probs: probs[0], gradOut, gqkv: gqkv[1] });
      assertClose(gqkv[1], gqkv[0], 1e-4, 'gqkv');
    });
  }
}

function optimizerTests(): void {
  for (const n of [1, 17, 4099, 70001]) {
    test(`adamUpdate and sumOfSquares over ${n} elements`, () => {
      const variants = [
        { amsgrad: false, maximize: false, l2: 0, decay: 1 - 1e-3 * 0.05 },
        { amsgrad: true, maximize: true, l2: 0.01, decay: 1 },
      ];
      for (const { amsgrad, maximize, l2, decay } of variants) {
        const param = rand(n);
        const grad = rand(n, 0.1);
        const state = [rand(n, 0.01), rand(n, 0.01, 0.02), rand(n, 0.01, 0.03)];
        const copies = [0, 1].map(() => ({
          param: param.slice(),
          expAvg: state[0].slice(),
          expAvgSq: state[1].slice(),
          maxExpAvgSq: amsgrad ? state[2].slice() : null,
        }));
        const scalars = {
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          l2,
          decay,
          stepSize: 1e-3 / (1 - 0.9 ** 3),
          bias2Sqrt: Math.sqrt(1 - 0.999 ** 3),
          maximize,
        };
        jsKernels.adamUpdate({ ...copies[0], grad, ...scalars });
        native.adamUpdate({ ...copies[1], grad, ...scalars });
        const what = `amsgrad=${amsgrad} maximize=${maximize}`;
        assertClose(copies[1].param, copies[0].param, 1e-6, `param ${what}`);
        assertClose(copies[1].expAvg, copies[0].expAvg, 1e-6, `expAvg ${what}`);
        assertClose(copies[1].expAvgSq, copies[0].expAvgSq, 1e-6, `expAvgSq ${what}`);
        if (amsgrad) assertClose(copies[1].maxExpAvgSq!, copies[0].maxExpAvgSq!, 1e-6, `maxExpAvgSq ${what}`);
      }
      const sums = [new Float64Array(1), new Float64Array(1)];
      const x = rand(n, 3);
      jsKernels.sumOfSquares(x, sums[0]);
      native.sumOfSquares(x, sums[1]);
      // Native sums each 64k chunk in float vectors (js in doubles): ~sqrt(n) float roundings apart.
      assertClose(sums[1], sums[0], 1e-5, 'sumOfSquares');
    });
  }
}

describe('native training kernels', { skip }, () => {
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
        batchNormTests();
        depthwiseTests();
        batchColumnTests();
        maxPoolTests();
        qkvAttentionTests();
        optimizerTests();
      });
    }
  }

  test('a short array throws a RangeError instead of touching memory', () => {
    assert.throws(
      () =>
        native.batchNormForward(
          new Float32Array(5),
          2,
          1,
          3,
          new Float64Array(1),
          new Float64Array(1),
          new Float32Array(6),
        ),
      /native batchNormForward: x has 5 elements, needs 6/,
    );
  });
});
