/** Reading a zoo model's token layout from its public configuration. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attentionLayout } from '../../src/explain/layout.js';
import { attentionRollout, createModel, noGrad, randn } from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';

const small = { img_size: 32, patch_size: 8, embed_dim: 32, depth: 2, num_heads: 2, num_classes: 3 };

describe('attentionLayout', () => {
  test('ViT: one class token; DeiT distilled: class and distillation maps', () => {
    const vit = attentionLayout(createModel('vit_tiny_patch16_224', small), 32, 32);
    assert.deepEqual(vit, {
      kind: 'tokens',
      prefixTokens: 1,
      gridSize: [4, 4],
      patchSize: [8, 8],
      tokenIndex: [0],
      tokenNames: ['cls'],
    });
    const deit = attentionLayout(createModel('deit_tiny_distilled_patch16_224', small), 32, 32);
    assert.equal(deit.kind === 'tokens' && deit.prefixTokens, 2);
    assert.deepEqual(deit.kind === 'tokens' && deit.tokenIndex, [0, 1]);
  });

  test('registers without a class token: the map is the mean over rows, never a register row', () => {
    const model = createModel('vit_tiny_patch16_224', {
      ...small,
      class_token: false,
      reg_tokens: 2,
      global_pool: 'avg',
    });
    const layout = attentionLayout(model, 32, 32);
    assert.equal(layout.kind, 'tokens');
    if (layout.kind !== 'tokens') return;
    assert.equal(layout.prefixTokens, 2);
    assert.equal(layout.tokenIndex, 'mean');
    const { attentions } = noGrad(() => model.forward(randn([1, 3, 32, 32]), { captureAttention: true }));
    assert.deepEqual(attentions[0].shape, [1, 2, 18, 18]);
    const r = attentionRollout(attentions, layout);
    const m = r.matrix.data;
    const mean = Array.from({ length: 16 }, (_, p) => {
      let s = 0;
      for (let q = 0; q < 18; q++) s += m[q * 18 + 2 + p];
      return s / 18;
    });
    const max = Math.max(...mean);
    assertClose(
      r.map,
      mean.map((v) => v / max),
      1e-6,
      'mean-row map',
    );
  });

  test('models without attention are a clear error', () => {
    assert.throws(
      () => attentionLayout(createModel('resnet18', { num_classes: 3 }), 32, 32),
      /model family 'resnet' has no attention maps to explain/,
    );
  });
});
