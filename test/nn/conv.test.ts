import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, nn, randn } from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';

manualSeed(3);

describe('nn conv modules', () => {
  test('Conv2d has torch parameter names, shapes and default init bounds', () => {
    const conv = new nn.Conv2d(6, 8, 3, { groups: 2, padding: 1 });
    const sd = conv.stateDict();
    assert.deepEqual([...sd.keys()], ['weight', 'bias']);
    assert.deepEqual(sd.get('weight')?.shape, [8, 3, 3, 3]);
    // kaiming_uniform(a=sqrt(5)) and the bias both draw from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    const bound = 1 / Math.sqrt(3 * 3 * 3);
    for (const t of [conv.weight, conv.bias]) {
      assert.ok(t?.data.every((v) => Math.abs(v) <= bound));
      assert.ok(t?.data.some((v) => Math.abs(v) > bound / 2));
    }
    const x = randn([2, 6, 5, 5]);
    assertClose(conv.forward(x), F.conv2d(x, conv.weight, conv.bias, { groups: 2, padding: 1 }), 0);
  });

  test('Conv1d / Conv3d without bias', () => {
    assert.deepEqual([...new nn.Conv1d(2, 4, 5, { bias: false }).stateDict().keys()], ['weight']);
    const c3 = new nn.Conv3d(2, 3, [1, 2, 3], { stride: 2 });
    assert.deepEqual(c3.weight.shape, [3, 2, 1, 2, 3]);
    assert.deepEqual(c3.forward(randn([1, 2, 3, 4, 5])).shape, [1, 3, 2, 2, 2]);
  });

  test('ConvTranspose2d weight is (in, out / groups, k) and outputSize picks the output padding', () => {
    const up = new nn.ConvTranspose2d(4, 6, 3, { stride: 2, padding: 1, groups: 2 });
    assert.deepEqual(up.weight.shape, [4, 3, 3, 3]);
    const x = randn([1, 4, 5, 5]);
    assert.deepEqual(up.forward(x).shape, [1, 6, 9, 9]);
    assert.deepEqual(up.forward(x, [10, 10]).shape, [1, 6, 10, 10]);
    assert.throws(() => up.forward(x, [12, 12]), /ConvTranspose2d: outputSize \[12, 12\] is not reachable/);
    assert.deepEqual(
      new nn.ConvTranspose3d(2, 2, 2, { stride: 2 }).forward(randn([1, 2, 2, 3, 1])).shape,
      [1, 2, 4, 6, 2],
    );
  });

  test('pooling and upsampling modules forward to F', () => {
    const x = randn([1, 2, 6, 7]);
    assertClose(
      new nn.MaxPool2d(3, { stride: 2, padding: 1 }).forward(x),
      F.maxPool2d(x, 3, { stride: 2, padding: 1 }),
      0,
    );
    assertClose(new nn.AvgPool2d(2).forward(x), F.avgPool2d(x, 2), 0);
    assertClose(new nn.AdaptiveAvgPool2d([1, 1]).forward(x), F.mean(x, [2, 3], true), 1e-6);
    const up = new nn.Upsample({ scaleFactor: 2, mode: 'bilinear', alignCorners: false });
    assert.deepEqual(up.forward(x).shape, [1, 2, 12, 14]);
    assert.equal(up.stateDict().size, 0);
  });

  test('invalid channel counts for groups are rejected at construction', () => {
    assert.throws(
      () => new nn.Conv2d(5, 8, 3, { groups: 2 }),
      /Conv2d: inChannels 5 and outChannels 8 must be divisible by groups=2/,
    );
  });
});
