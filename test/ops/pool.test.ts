import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, randn, tensor } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { spatialParityTests } from './spatial_fixture.js';

manualSeed(11);

describe('pooling parity with torch: ceil mode, padding, dilation, countIncludePad, divisor, adaptive', () => {
  spatialParityTests([
    'maxPool1d',
    'maxPool2d',
    'maxPool3d',
    'avgPool1d',
    'avgPool2d',
    'avgPool3d',
    'adaptiveAvgPool1d',
    'adaptiveAvgPool2d',
    'adaptiveAvgPool3d',
    'adaptiveMaxPool1d',
    'adaptiveMaxPool2d',
  ]);
});

describe('pooling gradients (finite differences)', () => {
  // Max pooling is differentiable away from ties; randn values are distinct almost surely and the
  // step stays far below their typical gaps at these sizes.
  const grad = (name: string, f: (x: Tensor) => Tensor, shape: number[], eps = 1e-3) =>
    test(name, () => gradcheck(f, [randn(shape)], { name, eps, atol: 5e-3 }));
  grad(
    'maxPool1d k3 s2 pad 1 ceil',
    (x) => F.maxPool1d(x, 3, { stride: 2, padding: 1, ceilMode: true }),
    [2, 3, 8],
  );
  grad(
    'maxPool2d k(3,2) dilation (1,2) odd sizes',
    (x) => F.maxPool2d(x, [3, 2], { stride: 2, dilation: [1, 2] }),
    [1, 2, 7, 9],
  );
  grad('maxPool3d k2 size-1 depth', (x) => F.maxPool3d(x, [1, 2, 2]), [1, 2, 1, 4, 5]);
  grad(
    'avgPool2d ceil, no pad counting',
    (x) => F.avgPool2d(x, 3, { stride: 2, padding: 1, ceilMode: true, countIncludePad: false }),
    [2, 2, 6, 7],
    1e-2,
  );
  grad('avgPool2d divisorOverride', (x) => F.avgPool2d(x, 2, { divisorOverride: 3 }), [1, 2, 5, 4], 1e-2);
  grad('avgPool1d size 1 spatial', (x) => F.avgPool1d(x, 1), [2, 3, 1], 1e-2);
  grad('avgPool3d pad 1', (x) => F.avgPool3d(x, 3, { stride: 2, padding: 1 }), [1, 1, 4, 5, 3], 1e-2);
  grad(
    'adaptiveAvgPool2d to (3, 2) from odd sizes',
    (x) => F.adaptiveAvgPool2d(x, [3, 2]),
    [2, 2, 7, 5],
    1e-2,
  );
  grad('adaptiveAvgPool1d upsampling 3 -> 5', (x) => F.adaptiveAvgPool1d(x, 5), [1, 2, 3], 1e-2);
  grad('adaptiveAvgPool3d', (x) => F.adaptiveAvgPool3d(x, [1, 2, 3]), [1, 2, 3, 3, 5], 1e-2);
  grad('adaptiveMaxPool2d', (x) => F.adaptiveMaxPool2d(x, [2, 3]), [1, 2, 5, 7]);
});

describe('pooling behaviour', () => {
  test('max pooling never picks padding and propagates NaN', () => {
    const x = tensor([-5, -4, -3, -2], [1, 1, 4]);
    assert.deepEqual([...F.maxPool1d(x, 3, { stride: 1, padding: 1 }).data], [-4, -3, -2, -2]);
    const withNaN = tensor([1, NaN, 3, 0], [1, 1, 4]);
    const y = F.maxPool1d(withNaN, 2).data;
    assert.ok(Number.isNaN(y[0]));
    assert.equal(y[1], 3);
  });

  test('max pooling sends each gradient to its argmax (overlapping windows add up)', () => {
    const x = tensor([0, 5, 1, 2, 0], [1, 1, 5]).setRequiresGrad();
    F.sum(F.maxPool1d(x, 3, { stride: 1 })).backward();
    assert.deepEqual([...(x.grad as Tensor).data], [0, 2, 0, 1, 0]);
  });

  test('global adaptive average equals the mean and accepts unbatched input', () => {
    const x = randn([2, 3, 5, 7]);
    assertClose(F.adaptiveAvgPool2d(x, 1), F.mean(x, [2, 3], true), 1e-6, 'global avg');
    assert.deepEqual(F.adaptiveAvgPool2d(randn([3, 5, 7]), [2, null]).shape, [3, 2, 7]);
  });

  test('avgPool with a window that divides the input equals adaptive pooling', () => {
    const x = randn([1, 2, 6, 8]);
    assertClose(F.avgPool2d(x, 2), F.adaptiveAvgPool2d(x, [3, 4]), 1e-6, 'avg vs adaptive');
  });
});

describe('pooling errors name the op and the shapes', () => {
  test('padding larger than half the kernel', () => {
    assert.throws(
      () => F.maxPool2d(randn([1, 1, 5, 5]), 3, { padding: 2 }),
      /maxPool2d: padding \[2, 2\] must be at most half of kernelSize \[3, 3\]/,
    );
  });
  test('kernel larger than the padded input', () => {
    assert.throws(
      () => F.avgPool2d(randn([1, 1, 2, 5]), 3),
      /avgPool2d: kernelSize \[3, 3\].*larger than the padded input \[2, 5\] of input \[1, 1, 2, 5\]/,
    );
  });
  test('wrong rank and bad sizes', () => {
    assert.throws(
      () => F.maxPool2d(randn([5, 5]), 2),
      /maxPool2d: expected input \(N, C, H, W\) or unbatched \(C, H, W\), got \[5, 5\]/,
    );
    assert.throws(
      () => F.adaptiveAvgPool2d(randn([1, 1, 4, 4]), [2]),
      /adaptiveAvgPool2d: outputSize \[2\] needs 2 entries/,
    );
    assert.throws(
      () => F.avgPool2d(randn([1, 1, 4, 4]), 2, { divisorOverride: -1 }),
      /avgPool2d: divisorOverride must be a positive int/,
    );
  });
});
