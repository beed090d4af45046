/** ResNet's small-input stem options (glimpse's stem_stride / stem_pool on top of timm's layout). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manualSeed, noGrad, randn } from '../../src/index.js';
import { createModel } from '../../src/models/registry.js';
import { ResNet } from '../../src/models/resnet.js';

const SMALL = { layers: [1, 1, 1, 1], channels: [4, 8, 8, 8], stem_channels: 4, num_classes: 3, in_chans: 1 };

test('stem_stride 1 keeps twice the resolution at every stage; without the pool, four times', () => {
  manualSeed(0);
  const x = randn([2, 1, 28, 28]);
  const sides = (m: ResNet) => noGrad(() => m.forwardStages(x).map((t) => t.shape[2]));
  assert.deepEqual(sides(new ResNet(SMALL)), [7, 4, 2, 1]);
  assert.deepEqual(sides(new ResNet({ ...SMALL, stem_stride: 1 })), [14, 7, 4, 2]);
  assert.deepEqual(sides(new ResNet({ ...SMALL, stem_stride: 1, stem_pool: false })), [28, 14, 7, 4]);
});

test('the stem options reach the model through the registry and its logits train', () => {
  manualSeed(1);
  const m = createModel('resnet18', { ...SMALL, stem_stride: 1 });
  const logits = m.forward(randn([2, 1, 28, 28]));
  assert.deepEqual(logits.shape, [2, 3]);
  logits.sum().backward();
  for (const [name, p] of m.namedParameters()) assert.ok(p.grad, `${name} has no gradient`);
});

test('a stem stride other than 1 or 2 is a clear error', () => {
  assert.throws(() => new ResNet({ ...SMALL, stem_stride: 3 }), /stem_stride must be 1 or 2, got 3/);
});
