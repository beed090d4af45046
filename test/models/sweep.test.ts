/**
 * Every registered model id builds (narrowed and shallowed so the sweep stays fast), runs forward and
 * backward on a small batch, gives logits of the right shape and finite gradients for every parameter,
 * and (for attention models) one attention map of the right shape per block.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { manualSeed, noGrad, randn } from '../../src/index.js';
import type { ImageClassifier } from '../../src/models/classifier.js';
import { createModel, getModelEntry, listModels } from '../../src/models/registry.js';
import { SwinTransformer } from '../../src/models/swin.js';
import { resampleAbsPosEmbed, VisionTransformer } from '../../src/models/vit.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';

const CLASSES = 7;

/** Small overrides per family and the input size they take. */
function small(id: string): { overrides: Record<string, unknown>; size: number } {
  switch (getModelEntry(id).family) {
    case 'vit':
    case 'deit':
      return { overrides: { img_size: 64, embed_dim: 16, depth: 2, num_heads: 2 }, size: 64 };
    case 'swin':
      // Stages of 16, 8, 4, 2: windows of 4, the last one clipped to its 2x2 stage (as timm does).
      return {
        overrides: {
          img_size: 64,
          window_size: 4,
          embed_dim: 8,
          depths: [2, 2, 1, 1],
          num_heads: [1, 1, 2, 2],
        },
        size: 64,
      };
    case 'convnext':
      return { overrides: { depths: [1, 1, 1, 1], dims: [8, 16, 16, 24] }, size: 32 };
    case 'mixer':
      return { overrides: { img_size: 64, num_blocks: 2, embed_dim: 16 }, size: 64 };
    case 'convmixer':
      return { overrides: { dim: 16, depth: 2 }, size: 28 };
    case 'resnet':
      return { overrides: { layers: [1, 1, 1, 1], channels: [4, 8, 8, 16], stem_channels: 8 }, size: 32 };
  }
}

function expectedAttention(model: ImageClassifier, batch: number, size: number): number[][] {
  if (model instanceof VisionTransformer) {
    const g = size / model.patchSize;
    const n = g * g + model.numPrefixTokens;
    return model.blocks.toArray().map((b) => [batch, b.attn.numHeads, n, n]);
  }
  if (model instanceof SwinTransformer) {
    const out: number[][] = [];
    let res = size / model.config.patchSize;
    model.layers.toArray().forEach((stage, i) => {
      if (i > 0) res /= 2;
      for (const blk of stage.blocks) {
        const w = blk.windowSize;
        out.push([batch * (res / w) ** 2, blk.attn.numHeads, w * w, w * w]);
      }
    });
    return out;
  }
  return [];
}

describe('every registered model', () => {
  manualSeed(3);
  const ids = listModels();

  test('the registry has the ids the issue asks for', () => {
    for (const id of [
      'vit_tiny_patch16_224',
      'vit_small_patch16_224',
      'vit_base_patch16_224',
      'vit_base_patch32_224',
      'deit_tiny_patch16_224',
      'deit_small_patch16_224',
      'deit_base_patch16_224',
      'deit_tiny_distilled_patch16_224',
      'deit_small_distilled_patch16_224',
      'deit_base_distilled_patch16_224',
      'swin_tiny_patch4_window7_224',
      'swin_small_patch4_window7_224',
      'swin_base_patch4_window7_224',
      'convnext_tiny',
      'convnext_small',
      'convnext_base',
      'mixer_b16_224',
      'convmixer_768_32',
      'convmixer_1536_20',
      'resnet18',
      'resnet34',
      'resnet50',
    ]) {
      assert.ok(ids.includes(id), id);
    }
  });

  for (const id of ids) {
    test(`${id}: forward, backward, shapes, no NaN`, () => {
      const { overrides, size } = small(id);
      const model = createModel(id, { ...overrides, num_classes: CLASSES });
      assert.equal(model.pretrainedCfg.numClasses, CLASSES);
      model.train();
      const x = randn([2, 3, size, size]);
      const logits = model.forward(x);
      assert.deepEqual(logits.shape, [2, CLASSES]);
      assert.ok(logits.toFloat32Array().every(Number.isFinite), 'logits are finite');
      logits
        .mul(randn([2, CLASSES]))
        .sum()
        .backward();
      for (const [name, p] of model.namedParameters()) {
        assert.ok(p.grad, `${name} has no gradient`);
        assert.equal(p.grad.size, p.size, name);
        assert.ok(p.grad.toFloat32Array().every(Number.isFinite), `${name}: gradient is not finite`);
      }
      model.eval();
      const { logits: evalLogits, attentions } = noGrad(() => model.forward(x, { captureAttention: true }));
      assert.deepEqual(evalLogits.shape, [2, CLASSES]);
      assert.deepEqual(
        attentions.map((a) => [...a.shape]),
        expectedAttention(model, 2, size),
      );
      for (const a of attentions) {
        // post-softmax probabilities: rows sum to one
        const n = a.shape[3];
        for (let r = 0; r < Math.min(a.size / n, 50); r++) {
          let s = 0;
          for (let j = 0; j < n; j++) s += a.data[r * n + j];
          assert.ok(Math.abs(s - 1) < 1e-4, `attention row ${r} sums to ${s}`);
        }
      }
    });
  }

  test('full-size parameter counts match timm (vit_tiny, deit_tiny_distilled, resnet18)', () => {
    const counts: Record<string, number> = {
      vit_tiny_patch16_224: 5_717_416,
      deit_tiny_distilled_patch16_224: 5_910_800,
      resnet18: 11_689_512,
    };
    for (const [id, n] of Object.entries(counts)) assert.equal(createModel(id).numParameters(), n, id);
  });
});

describe('ViT input sizes', () => {
  test('dynamic_img_size resamples the position embeddings in forward, as loading does', () => {
    manualSeed(5);
    const kw = { patch_size: 8, embed_dim: 16, depth: 1, num_heads: 2, num_classes: 3 };
    const dynamic = createModel('vit_tiny_patch16_224', {
      ...kw,
      img_size: 32,
      dynamic_img_size: true,
    }).eval();
    const fixed = createModel('vit_tiny_patch16_224', { ...kw, img_size: [48, 40] }).eval();
    const sd = dynamic.stateDict();
    sd.set('pos_embed', resampleAbsPosEmbed(sd.get('pos_embed') as Tensor, [6, 5], 1));
    fixed.loadStateDict(sd);
    const x = randn([2, 3, 48, 40]);
    const a = noGrad(() => dynamic.forward(x));
    const b = noGrad(() => fixed.forward(x));
    assertClose(a, b, 1e-5, 'logits');
    assert.throws(() => dynamic.forward(randn([1, 3, 36, 40])), /not a multiple of the patch size 8/);
  });
});
