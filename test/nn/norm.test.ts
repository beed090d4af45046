import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, nn, rand, randn, tensor } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { reference } from '../ops/torch_reference.js';

manualSeed(5);

function keysAndShapes(m: nn.Module): Array<[string, number[], string]> {
  return [...m.stateDict()].map(([k, t]) => [k, [...t.shape], t.dtype]);
}

describe('BatchNorm1d/2d/3d', () => {
  test('torch names: weight, bias and buffers running_mean, running_var, num_batches_tracked (int64 scalar)', () => {
    const bn = new nn.BatchNorm2d(4);
    assert.deepEqual(keysAndShapes(bn), [
      ['weight', [4], 'float32'],
      ['bias', [4], 'float32'],
      ['running_mean', [4], 'float32'],
      ['running_var', [4], 'float32'],
      ['num_batches_tracked', [], 'int64'],
    ]);
    assert.deepEqual(
      bn.parameters().map((p) => p.shape[0]),
      [4, 4],
    );
    assert.deepEqual(Array.from(bn.runningVar?.data ?? []), [1, 1, 1, 1]);
  });

  test('training updates the running stats and num_batches_tracked; eval uses them and changes nothing', () => {
    const bn = new nn.BatchNorm2d(3, { momentum: 0.25 });
    const x = randn([4, 3, 2, 5]).mul(2).add(1);
    const rm = tensor(new Float32Array(3));
    const rv = tensor(new Float32Array([1, 1, 1]));
    const expected = F.batchNorm(x, rm, rv, bn.weight, bn.bias, { training: true, momentum: 0.25 });
    assertClose(bn.forward(x), expected, 0, 'train out');
    assertClose(bn.runningMean as Tensor, rm, 0, 'running mean');
    assertClose(bn.runningVar as Tensor, rv, 0, 'running var');
    assert.equal(bn.numBatchesTracked, 1);
    bn.forward(x);
    assert.equal(bn.numBatchesTracked, 2);
    bn.eval();
    const before = Array.from((bn.runningMean as Tensor).data);
    const xe = randn([2, 3, 2, 5]);
    assertClose(
      bn.forward(xe),
      F.batchNorm(xe, bn.runningMean, bn.runningVar, bn.weight, bn.bias),
      0,
      'eval out',
    );
    assert.deepEqual(Array.from((bn.runningMean as Tensor).data), before);
    assert.equal(bn.numBatchesTracked, 2);
  });

  test('momentum null is a cumulative average (torch parity over two batches of BatchNorm1d)', () => {
    const r = reference('batch_norm1d_cumulative');
    const bn = new nn.BatchNorm1d(3, { momentum: null });
    bn.forward(r.f('x_a'));
    bn.forward(r.f('x_b'));
    assertClose(bn.runningMean as Tensor, r.f('running_mean'), 1e-5, 'mean');
    assertClose(bn.runningVar as Tensor, r.f('running_var'), 1e-5, 'var');
    assert.equal(bn.numBatchesTracked, r.n('num_batches_tracked'));
  });

  test('trackRunningStats false: no buffers, batch statistics in eval too; affine false: no parameters', () => {
    const bn = new nn.BatchNorm1d(3, { trackRunningStats: false, affine: false });
    assert.deepEqual(keysAndShapes(bn), []);
    bn.eval();
    const x = randn([6, 3]);
    assertClose(bn.forward(x), F.batchNorm(x, null, null, null, null, { training: true }), 0, 'batch stats');
  });

  test('loads a torch state dict and reproduces eval outputs; gradients flow to x, weight, bias', () => {
    const bn = new nn.BatchNorm3d(2);
    const sd = {
      weight: tensor([1.5, -0.5]),
      bias: tensor([0.1, 0.2]),
      running_mean: tensor([0.3, -0.4]),
      running_var: tensor([2, 0.5]),
      num_batches_tracked: tensor([7], [], 'int64'),
    };
    bn.loadStateDict(sd);
    assert.equal(bn.numBatchesTracked, 7);
    bn.eval();
    const x = randn([2, 2, 3, 2, 2]);
    const y = bn.forward(x);
    const c0 = ((x.data[0] - 0.3) / Math.sqrt(2 + 1e-5)) * 1.5 + 0.1;
    assertClose([y.data[0]], [c0], 1e-6, 'value');
    gradcheck((v) => bn.forward(v), [x], { name: 'BatchNorm3d eval' });
    bn.train();
    const input = randn([2, 2, 3, 1, 2]).setRequiresGrad();
    bn.forward(input)
      .mul(randn([2, 2, 3, 1, 2]))
      .sum()
      .backward();
    assert.ok(bn.weight?.grad && bn.bias?.grad && input.grad, 'every parameter received a gradient');
  });

  test('input rank checks', () => {
    assert.throws(
      () => new nn.BatchNorm1d(3).forward(randn([2, 3, 4, 5])),
      /BatchNorm1d: expected \(N, C\) or/,
    );
    assert.throws(
      () => new nn.BatchNorm2d(3).forward(randn([2, 3, 4])),
      /BatchNorm2d: expected \(N, C, H, W\)/,
    );
    assert.throws(() => new nn.BatchNorm3d(3).forward(randn([2, 3, 4, 4])), /BatchNorm3d/);
    assert.throws(
      () => new nn.BatchNorm2d(3).forward(randn([2, 4, 2, 2])),
      /batchNorm: input \[2, 4, 2, 2\] has 4 channels, so runningMean must be float32 \[4\], got float32 \[3\]/,
    );
  });
});

describe('GroupNorm', () => {
  test('parameters, forward equals F.groupNorm, gradients', () => {
    const gn = new nn.GroupNorm(2, 6, { eps: 1e-4 });
    assert.deepEqual(keysAndShapes(gn), [
      ['weight', [6], 'float32'],
      ['bias', [6], 'float32'],
    ]);
    (gn.weight as Tensor).data.set(randn([6]).data);
    const x = randn([3, 6, 5]);
    assertClose(gn.forward(x), F.groupNorm(x, 2, gn.weight, gn.bias, 1e-4), 0, 'forward');
    gradcheck((v) => gn.forward(v), [x], { name: 'GroupNorm' });
    assert.deepEqual(keysAndShapes(new nn.GroupNorm(3, 3, { affine: false })), []);
  });
  test('errors', () => {
    assert.throws(() => new nn.GroupNorm(4, 6), /GroupNorm: 6 channels cannot be split into 4 groups/);
    assert.throws(
      () => new nn.GroupNorm(2, 6).forward(randn([2, 4, 3])),
      /GroupNorm: expected \(N, 6, \.\.\.\)/,
    );
  });
});

describe('FrozenBatchNorm2d', () => {
  test('four buffers, no parameters; training mode changes nothing; torchvision formula x * scale + shift', () => {
    const bn = new nn.FrozenBatchNorm2d(3);
    assert.deepEqual(keysAndShapes(bn), [
      ['weight', [3], 'float32'],
      ['bias', [3], 'float32'],
      ['running_mean', [3], 'float32'],
      ['running_var', [3], 'float32'],
    ]);
    assert.equal(bn.parameters().length, 0);
    const w = randn([3]);
    const b = randn([3]);
    const rm = randn([3]);
    const rv = rand([3]).add(0.2);
    bn.loadStateDict({ weight: w, bias: b, running_mean: rm, running_var: rv });
    bn.train();
    const x = randn([2, 3, 4, 3]);
    const y = bn.forward(x);
    // torchvision: scale = w * (rv + eps).rsqrt(); shift = b - rm * scale
    const expected = Array.from(x.data, (v, i) => {
      const c = Math.floor(i / 12) % 3;
      const scale = w.data[c] / Math.sqrt(rv.data[c] + 1e-5);
      return v * scale + (b.data[c] - rm.data[c] * scale);
    });
    assertClose(y, expected, 1e-6, 'output');
    assertClose(bn.buffer('running_mean'), rm, 0, 'running mean untouched');
    gradcheck((v) => bn.forward(v), [x], { name: 'FrozenBatchNorm2d' });
  });
});
