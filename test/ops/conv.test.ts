import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, noGrad, randn } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { get, loadFixture, tolerance } from '../helpers/fixtures.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { spatialParityTests } from './spatial_fixture.js';

manualSeed(7);

describe('conv parity with torch_conv (outputs and gradients of sum(y * upstream))', () => {
  const fx = loadFixture('torch/torch_conv.io.safetensors');
  const tol = tolerance('torch', 'torch_conv');
  type Op = (x: Tensor, w: Tensor, b: Tensor | null, o: object) => Tensor;
  const cases: Array<[string, Op, object]> = [
    ['conv2d', F.conv2d, { stride: 2, padding: 1, dilation: 1 }],
    ['dwconv2d', F.conv2d, { padding: 3, groups: 6 }],
    ['convT2d', F.convTranspose2d, { stride: 2 }],
    ['conv3d', F.conv3d, { padding: 1 }],
    ['convT3d', F.convTranspose3d, { stride: 2 }],
  ];
  for (const [prefix, op, options] of cases) {
    test(prefix, () => {
      const x = get(fx, `${prefix}.x`).cloneData().setRequiresGrad();
      const w = get(fx, `${prefix}.w`).cloneData().setRequiresGrad();
      const b = fx.get(`${prefix}.b`)?.cloneData().setRequiresGrad() ?? null;
      const y = op(x, w, b, options);
      assertClose(y, get(fx, `${prefix}.y`), tol, `${prefix} output`);
      y.backward(get(fx, `${prefix}.upstream`));
      assertClose(x.grad as Tensor, get(fx, `${prefix}.grad.x`), tol, `${prefix} grad x`);
      assertClose(w.grad as Tensor, get(fx, `${prefix}.grad.w`), tol, `${prefix} grad w`);
      if (b) assertClose(b.grad as Tensor, get(fx, `${prefix}.grad.b`), tol, `${prefix} grad b`);
    });
  }
});

describe('conv parity with torch: dilation, groups, same/valid, output padding, unfold/fold', () => {
  spatialParityTests([
    'conv1d',
    'conv2d',
    'conv3d',
    'convTranspose1d',
    'convTranspose2d',
    'convTranspose3d',
    'unfold',
    'fold',
    'pixelShuffle',
    'pixelUnshuffle',
  ]);
});

describe('conv gradients (finite differences)', () => {
  const grad = (name: string, f: (...t: Tensor[]) => Tensor, shapes: number[][]) =>
    test(name, () =>
      gradcheck(
        f,
        shapes.map((s) => randn(s)),
        { name },
      ),
    );
  grad(
    'conv1d stride 2, pad 2, dilation 2, odd length',
    (x, w, b) => F.conv1d(x, w, b, { stride: 2, padding: 2, dilation: 2 }),
    [[2, 3, 9], [4, 3, 3], [4]],
  );
  grad(
    'conv2d size-1 batch and spatial dim, 1x3 kernel',
    (x, w, b) => F.conv2d(x, w, b, { padding: [0, 1] }),
    [[1, 2, 1, 5], [3, 2, 1, 3], [3]],
  );
  grad(
    'conv2d groups 3, stride (2, 3), pad 1',
    (x, w) => F.conv2d(x, w, null, { stride: [2, 3], padding: 1, groups: 3 }),
    [
      [2, 6, 7, 8],
      [9, 2, 3, 3],
    ],
  );
  grad(
    'conv2d depthwise 5x5 with multiplier 2, dilation 2',
    (x, w, b) => F.conv2d(x, w, b, { padding: 4, dilation: 2, groups: 3 }),
    [[2, 3, 7, 6], [6, 1, 5, 5], [6]],
  );
  grad(
    'conv2d depthwise stride 2 odd size',
    (x, w) => F.conv2d(x, w, null, { stride: 2, padding: 1, groups: 4 }),
    [
      [1, 4, 9, 7],
      [4, 1, 3, 3],
    ],
  );
  grad('conv2d pointwise 1x1', (x, w, b) => F.conv2d(x, w, b), [[2, 5, 3, 3], [4, 5, 1, 1], [4]]);
  grad("conv2d padding 'same' even kernel", (x, w) => F.conv2d(x, w, null, { padding: 'same' }), [
    [1, 2, 5, 6],
    [3, 2, 4, 2],
  ]);
  grad(
    'conv3d stride 2, pad (1, 0, 1), groups 2',
    (x, w, b) => F.conv3d(x, w, b, { stride: 2, padding: [1, 0, 1], groups: 2 }),
    [[1, 4, 5, 4, 3], [2, 2, 3, 2, 3], [2]],
  );
  grad(
    'convTranspose1d stride 3, pad 1, outputPadding 1',
    (x, w, b) => F.convTranspose1d(x, w, b, { stride: 3, padding: 1, outputPadding: 1 }),
    [[2, 3, 4], [3, 2, 3], [2]],
  );
  grad(
    'convTranspose2d groups 2, stride 2, dilation 2',
    (x, w, b) => F.convTranspose2d(x, w, b, { stride: 2, dilation: 2, groups: 2, padding: 1 }),
    [[1, 4, 3, 3], [4, 3, 2, 3], [6]],
  );
  grad(
    'convTranspose3d stride (1, 2, 2), size-1 depth',
    (x, w) => F.convTranspose3d(x, w, null, { stride: [1, 2, 2] }),
    [
      [1, 2, 1, 3, 2],
      [2, 3, 1, 2, 2],
    ],
  );
  grad(
    'unfold stride 2, pad 1, dilation (1, 2)',
    (x) => F.unfold(x, [2, 3], { stride: 2, padding: 1, dilation: [1, 2] }),
    [[2, 2, 5, 6]],
  );
  grad('fold overlapping blocks', (x) => F.fold(x, [4, 5], 2), [[1, 8, 12]]);
  grad('pixelShuffle', (x) => F.pixelShuffle(x, 3), [[1, 18, 2, 3]]);
});

describe('conv behaviour', () => {
  test('the depthwise path equals per-channel convolutions through the GEMM path', () => {
    const x = randn([2, 3, 8, 7]);
    const w = randn([3, 1, 7, 7]);
    const b = randn([3]);
    const dw = F.conv2d(x, w, b, { padding: 3, groups: 3 });
    const perChannel = [0, 1, 2].map((c) =>
      F.conv2d(F.slice(x, 1, c, c + 1), F.slice(w, 0, c, c + 1), F.slice(b, 0, c, c + 1), { padding: 3 }),
    );
    assertClose(dw, F.cat(perChannel, 1), 1e-5, 'depthwise vs per-channel');
  });

  test('conv1d and conv2d agree with conv3d on size-1 leading dims', () => {
    const x = randn([2, 3, 10]);
    const w = randn([4, 3, 3]);
    const y1 = F.conv1d(x, w, null, { stride: 2, padding: 1 });
    const y3 = F.conv3d(x.reshape([2, 3, 1, 1, 10]), w.reshape([4, 3, 1, 1, 3]), null, {
      stride: [1, 1, 2],
      padding: [0, 0, 1],
    });
    assertClose(y1, y3.reshape(y1.shape), 1e-6, 'conv1d vs conv3d');
  });

  test('convTranspose2d is the adjoint of conv2d', () => {
    const x = randn([1, 3, 7, 6]);
    const w = randn([4, 3, 3, 3]);
    const y = randn([1, 4, 4, 3]);
    const opts = { stride: 2, padding: 1 };
    // <conv(x), y> == <x, convT(y)> for the same weight.
    const lhs = F.sum(F.mul(F.conv2d(x, w, null, opts), y)).item();
    // The 7x6 input maps to 4x3 with one column left over, which outputPadding restores.
    const rhs = F.sum(F.mul(x, F.convTranspose2d(y, w, null, { ...opts, outputPadding: [0, 1] }))).item();
    assert.ok(Math.abs(lhs - rhs) < 1e-3 * Math.max(1, Math.abs(lhs)), `${lhs} vs ${rhs}`);
  });

  test('unbatched input gives the batched result without the batch dim', () => {
    const x = randn([3, 5, 5]);
    const w = randn([2, 3, 3, 3]);
    const y = F.conv2d(x, w, null, { padding: 1 });
    assert.deepEqual(y.shape, [2, 5, 5]);
    assertClose(y, F.conv2d(x.reshape([1, 3, 5, 5]), w, null, { padding: 1 }).reshape([2, 5, 5]), 0);
  });

  test("padding 'same' keeps the size; 'valid' does not pad", () => {
    const x = randn([1, 2, 6, 5]);
    assert.deepEqual(
      F.conv2d(x, randn([3, 2, 4, 3]), null, { padding: 'same', dilation: 2 }).shape,
      [1, 3, 6, 5],
    );
    assert.deepEqual(F.conv2d(x, randn([3, 2, 4, 3]), null, { padding: 'valid' }).shape, [1, 3, 3, 3]);
  });

  test('gradients flow only where asked', () => {
    const x = randn([1, 2, 4, 4]);
    const w = randn([2, 2, 3, 3]).setRequiresGrad();
    F.sum(F.conv2d(x, w, null, { padding: 1 })).backward();
    assert.equal(x.grad, null);
    assert.ok(w.grad);
  });

  test('no graph under noGrad', () => {
    const w = randn([2, 2, 3, 3]).setRequiresGrad();
    const y = noGrad(() => F.conv2d(randn([1, 2, 4, 4]), w));
    assert.equal(y.requiresGrad, false);
  });
});

describe('conv errors name the op and the shapes', () => {
  const x = randn([1, 4, 5, 5]);
  test('channel mismatch with groups', () => {
    assert.throws(
      () => F.conv2d(x, randn([4, 3, 3, 3]), null, { groups: 2 }),
      /conv2d: input \[1, 4, 5, 5\] has 4 channels but weight \[4, 3, 3, 3\] with groups=2 expects 6/,
    );
    assert.throws(
      () => F.conv2d(x, randn([3, 2, 3, 3]), null, { groups: 2 }),
      /conv2d: .*3 output channels, not divisible by groups=2/,
    );
  });
  test('kernel larger than the padded input', () => {
    assert.throws(
      () => F.conv2d(x, randn([2, 4, 7, 3])),
      /conv2d: kernel \[7, 3\].*larger than the padded input \[5, 5\]/,
    );
    assert.throws(
      () => F.conv1d(randn([1, 1, 3]), randn([1, 1, 3]), null, { dilation: 2 }),
      /conv1d: kernel \[3\] \(dilation \[2\]\) is larger/,
    );
  });
  test('wrong ranks, bias, options', () => {
    assert.throws(
      () => F.conv2d(randn([4, 5]), randn([2, 4, 3, 3])),
      /conv2d: expected input \(N, C, H, W\) or unbatched/,
    );
    assert.throws(() => F.conv2d(x, randn([2, 4, 3])), /conv2d: weight must be/);
    assert.throws(
      () => F.conv2d(x, randn([2, 4, 3, 3]), randn([3])),
      /conv2d: bias \[3\] does not match 2 output channels/,
    );
    assert.throws(
      () => F.conv2d(x, randn([2, 4, 3, 3]), null, { padding: 'same', stride: 2 }),
      /padding='same' needs stride 1/,
    );
    assert.throws(
      () => F.conv2d(x, randn([2, 4, 3, 3]), null, { stride: [1, 0] }),
      /conv2d: stride must be an int >= 1/,
    );
    assert.throws(
      () => F.convTranspose2d(x, randn([4, 2, 3, 3]), null, { stride: 2, outputPadding: 2 }),
      /convTranspose2d: outputPadding \[2, 2\] must be smaller than stride/,
    );
    assert.throws(
      () => F.convTranspose2d(x, randn([3, 2, 3, 3])),
      /convTranspose2d: input \[1, 4, 5, 5\] has 4 channels but weight \[3, 2, 3, 3\] expects 3/,
    );
    assert.throws(
      () => F.fold(randn([1, 8, 5]), [4, 5], 2),
      /fold: input \[1, 8, 5\] does not hold C \* 4 rows and 3 x 4 blocks/,
    );
  });
});
