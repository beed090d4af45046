import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { randn } from '../../src/ops/creation.js';
import { mul } from '../../src/ops/elementwise.js';
import { importanceMap, slidingWindowInference, windowStarts } from '../../src/segment/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';

describe('slidingWindowInference', () => {
  test('window starts as MONAI: every roi·(1 - overlap), the last flush with the end', () => {
    assert.deepEqual(windowStarts(10, 4, 0.25), [0, 3, 6]);
    assert.deepEqual(windowStarts(11, 4, 0.5), [0, 2, 4, 6, 7]);
    assert.deepEqual(windowStarts(8, 8, 0.5), [0]);
    assert.deepEqual(windowStarts(9, 8, 0), [0, 1]);
  });

  test('an identity predictor gives the input back (2D and 3D, odd sizes, both blendings, batches)', () => {
    for (const [shape, roi] of [
      [
        [2, 3, 13, 9],
        [5, 4],
      ],
      [
        [1, 2, 7, 9, 6],
        [4, 4, 4],
      ],
    ] as Array<[number[], number[]]>) {
      const x = randn(shape);
      for (const mode of ['constant', 'gaussian'] as const) {
        for (const swBatchSize of [1, 3]) {
          const y = slidingWindowInference(x, (w) => w, { roiSize: roi, overlap: 0.5, mode, swBatchSize });
          assertClose(y, x, 1e-5, `${shape} ${mode} batch ${swBatchSize}`);
        }
      }
    }
  });

  test('inputs smaller than the window are padded symmetrically and cropped back', () => {
    const x = randn([1, 1, 3, 5]);
    let seen: number[] = [];
    const y = slidingWindowInference(
      x,
      (w) => {
        seen = [...w.shape];
        return w;
      },
      { roiSize: [6, 6], padValue: 0 },
    );
    assert.deepEqual(seen, [1, 1, 6, 6]);
    assertClose(y, x, 1e-6, 'cropped');
  });

  test('overlapping windows are blended by their importance (brute-force reference)', () => {
    // Window k (in order) multiplies its input by k + 1; each pixel's result is the importance-weighted
    // mean of those factors over the windows that cover it, times the pixel.
    const x = new Tensor(new Float32Array(10 * 7).fill(1), [1, 1, 10, 7]);
    const roi = [4, 4];
    for (const mode of ['constant', 'gaussian'] as const) {
      let calls = 0;
      const y = slidingWindowInference(x, (w) => mul(w, ++calls), { roiSize: roi, overlap: 0.5, mode });
      const imp = importanceMap(roi, mode);
      const ys = windowStarts(10, 4, 0.5);
      const xs = windowStarts(7, 4, 0.5);
      const num = new Float64Array(70);
      const den = new Float64Array(70);
      let k = 0;
      for (const y0 of ys) {
        for (const x0 of xs) {
          k++;
          for (let i = 0; i < 4; i++) {
            for (let j = 0; j < 4; j++) {
              num[(y0 + i) * 7 + x0 + j] += k * imp[i * 4 + j];
              den[(y0 + i) * 7 + x0 + j] += imp[i * 4 + j];
            }
          }
        }
      }
      assert.equal(calls, ys.length * xs.length);
      assertClose(
        y.data,
        Array.from(num, (v, i) => v / den[i]),
        1e-5,
        mode,
      );
    }
  });

  test('the Gaussian importance map peaks at 1 in the middle, is symmetric and at least 1e-3', () => {
    const m = importanceMap([5, 6], 'gaussian');
    assert.equal(Math.max(...m), 1);
    assert.equal(m[2 * 6 + 2], m[2 * 6 + 3]);
    assert.equal(m[0], m[4 * 6 + 5]);
    assert.ok(Math.min(...m) >= 1e-3 && m[0] < m[2 * 6 + 2]);
    assert.ok(importanceMap([4, 4, 4], 'constant').every((v) => v === 1));
  });

  test('errors say what is wrong', () => {
    const x = randn([1, 1, 8, 8]);
    assert.throws(
      () => slidingWindowInference(x, (w) => w, { roiSize: [4] }),
      /roiSize must be 2 positive ints/,
    );
    assert.throws(
      () => slidingWindowInference(x, (w) => w, { roiSize: [4, 4], overlap: 1 }),
      /overlap must be in \[0, 1\)/,
    );
    assert.throws(
      () => slidingWindowInference(x, () => randn([1, 2, 3, 3]), { roiSize: [4, 4] }),
      /the predictor must return float32 \(1, K, 4, 4\)/,
    );
  });
});
