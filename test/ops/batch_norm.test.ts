import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, ones, rand, randn, tensor, zeros } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { reference } from './torch_reference.js';

manualSeed(3);
const SHAPES = [
  [5, 3],
  [3, 2, 7],
  [2, 3, 3, 5],
  [2, 2, 3, 2, 3],
];

describe('batchNorm', () => {
  test('running-stat update matches a hand computation (momentum, unbiased var); eval uses them', () => {
    // (N=3, C=2, L=2): channel 0 holds 1..6, channel 1 holds squares
    const x = tensor([1, 2, 4, 9, 3, 4, 16, 25, 5, 6, 36, 49], [3, 2, 2]);
    const rm = tensor([0.5, -1]);
    const rv = tensor([2, 3]);
    const weight = tensor([1.5, -0.5]);
    const bias = tensor([0.25, 2]);
    const momentum = 0.3;
    const eps = 1e-5;
    const channels = [
      [1, 2, 3, 4, 5, 6],
      [4, 9, 16, 25, 36, 49],
    ];
    const mean = channels.map((v) => v.reduce((a, b) => a + b) / 6);
    const biased = channels.map((v, c) => v.reduce((a, b) => a + (b - mean[c]) ** 2, 0) / 6);
    const unbiased = biased.map((v) => (v * 6) / 5);
    const y = F.batchNorm(x, rm, rv, weight, bias, { training: true, momentum, eps });
    assertClose(rm, [0.7 * 0.5 + 0.3 * mean[0], 0.7 * -1 + 0.3 * mean[1]], 1e-6, 'running mean');
    assertClose(rv, [0.7 * 2 + 0.3 * unbiased[0], 0.7 * 3 + 0.3 * unbiased[1]], 1e-6, 'running var');
    // training normalizes with the biased batch variance
    const expected = (xs: Tensor, m: number[], v: number[]) =>
      Array.from(xs.data, (val, i) => {
        const c = Math.floor(i / 2) % 2;
        return ((val - m[c]) / Math.sqrt(v[c] + eps)) * weight.data[c] + bias.data[c];
      });
    assertClose(y, expected(x, mean, biased), 1e-5, 'train output');
    const rmAfter = Array.from(rm.data);
    const rvAfter = Array.from(rv.data);
    const xe = randn([2, 2, 2]);
    const ye = F.batchNorm(xe, rm, rv, weight, bias, { eps });
    assertClose(ye, expected(xe, rmAfter, rvAfter), 1e-5, 'eval output');
    assert.deepEqual(Array.from(rm.data), rmAfter, 'eval leaves the running mean alone');
    assert.deepEqual(Array.from(rv.data), rvAfter, 'eval leaves the running var alone');
  });

  test('torch parity: nn.BatchNorm2d training step (output, running stats, grads) and eval', () => {
    const r = reference('batch_norm2d');
    const x = r.f('x').setRequiresGrad();
    const weight = r.f('weight').setRequiresGrad();
    const bias = r.f('bias').setRequiresGrad();
    const rm = r.f('running_mean0');
    const rv = r.f('running_var0');
    const y = F.batchNorm(x, rm, rv, weight, bias, { training: true, momentum: r.n('momentum') });
    assertClose(y, r.f('train_out'), 1e-5, 'train out');
    assertClose(rm, r.f('running_mean'), 1e-5, 'running mean');
    assertClose(rv, r.f('running_var'), 1e-5, 'running var');
    y.backward(r.f('upstream'));
    assertClose(x.grad as Tensor, r.f('grad_x'), 1e-4, 'grad x');
    assertClose(weight.grad as Tensor, r.f('grad_weight'), 1e-4, 'grad weight');
    assertClose(bias.grad as Tensor, r.f('grad_bias'), 1e-4, 'grad bias');
    assertClose(F.batchNorm(r.f('eval_x'), rm, rv, weight, bias), r.f('eval_out'), 1e-5, 'eval out');
  });

  for (const shape of SHAPES) {
    const c = shape[1];
    test(`gradients in training ${JSON.stringify(shape)}`, () => {
      const rm = zeros([c]);
      const rv = ones([c]);
      gradcheck(
        (x, w, b) => F.batchNorm(x, rm, rv, w, b, { training: true }),
        [randn(shape).mul(2).add(1), randn([c]), randn([c])],
        { name: 'batchNorm train' },
      );
    });
    test(`gradients in eval ${JSON.stringify(shape)}`, () => {
      const rm = randn([c]);
      const rv = rand([c]).add(0.5);
      gradcheck((x, w, b) => F.batchNorm(x, rm, rv, w, b), [randn(shape), randn([c]), randn([c])], {
        name: 'batchNorm eval',
      });
    });
  }
  test('gradients without affine and without running stats', () => {
    gradcheck((x) => F.batchNorm(x, null, null, null, null, { training: true }), [randn([4, 3, 5])], {
      name: 'batchNorm plain',
    });
  });

  test('a large mean does not cost precision (two-pass statistics)', () => {
    const x = randn([64, 2]).add(1e4);
    const y = F.batchNorm(x, null, null, null, null, { training: true });
    let s = 0;
    let ss = 0;
    for (let i = 0; i < 64; i++) {
      s += y.data[2 * i];
      ss += y.data[2 * i] ** 2;
    }
    assert.ok(Math.abs(s / 64) < 1e-3, `mean ${s / 64}`);
    assert.ok(Math.abs(ss / 64 - 1) < 1e-3, `var ${ss / 64}`);
  });

  test('errors name the op and the problem', () => {
    assert.throws(
      () => F.batchNorm(randn([1, 3]), null, null, null, null, { training: true }),
      /batchNorm: training needs more than 1 value per channel/,
    );
    assert.throws(
      () => F.batchNorm(randn([2, 3]), null, null),
      /eval mode .* needs runningMean and runningVar/,
    );
    assert.throws(
      () => F.batchNorm(randn([2, 3, 4]), zeros([4]), ones([4])),
      /input \[2, 3, 4\] has 3 channels, so runningMean must be float32 \[3\], got float32 \[4\]/,
    );
    assert.throws(
      () => F.batchNorm(randn([2, 3]), zeros([3]), null, null, null, { training: true }),
      /both runningMean and runningVar/,
    );
    assert.throws(() => F.batchNorm(randn([3]), null, null), /\(N, C, \.\.\.\) input/);
  });
});

describe('groupNorm, instanceNorm', () => {
  test('torch parity: F.group_norm output and input gradient', () => {
    const r = reference('group_norm');
    const x = r.f('x').setRequiresGrad();
    const y = F.groupNorm(x, r.n('groups'), r.f('weight'), r.f('bias'));
    assertClose(y, r.f('out'), 1e-5, 'out');
    y.backward(r.f('upstream'));
    assertClose(x.grad as Tensor, r.f('grad_x'), 1e-4, 'grad');
  });
  test('gradients (x, weight, bias) on odd shapes', () => {
    gradcheck((x, w, b) => F.groupNorm(x, 3, w, b), [randn([2, 6, 5]), randn([6]), randn([6])], {
      name: 'groupNorm',
    });
    gradcheck((x, w, b) => F.groupNorm(x, 2, w, b, 1e-3), [randn([3, 4, 3, 3]), randn([4]), randn([4])], {
      name: 'groupNorm 4d',
    });
    gradcheck((x) => F.groupNorm(x, 1), [randn([2, 3, 7])], { name: 'groupNorm one group' });
    gradcheck((x, w) => F.instanceNorm(x, { weight: w }), [randn([2, 3, 5]), randn([3])], {
      name: 'instanceNorm',
    });
  });
  test('one group per channel is instance norm; each group has zero mean and unit variance', () => {
    const x = randn([2, 4, 3, 3]).mul(3).add(2);
    assertClose(F.groupNorm(x, 4), F.instanceNorm(x), 0, 'instance');
    const y = F.groupNorm(x, 2);
    for (let g = 0; g < 4; g++) {
      const vals = Array.from(y.data.subarray(g * 18, (g + 1) * 18));
      const m = vals.reduce((a, b) => a + b) / 18;
      const v = vals.reduce((a, b) => a + (b - m) ** 2, 0) / 18;
      assert.ok(Math.abs(m) < 1e-5 && Math.abs(v - 1) < 1e-3, `group ${g}: mean ${m} var ${v}`);
    }
  });
  test('errors', () => {
    assert.throws(
      () => F.groupNorm(randn([2, 6, 3]), 4),
      /groupNorm: 6 channels cannot be split into 4 groups/,
    );
    assert.throws(
      () => F.groupNorm(randn([2, 6, 3]), 3, randn([3])),
      /groupNorm: input \[2, 6, 3\] has 6 channels, so weight must be float32 \[6\]/,
    );
  });
});
