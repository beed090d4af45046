import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DecoderBlock,
  type DecoderCup,
  PreActBottleneck,
  ResNetV2,
  StdConv2d,
  TRANSUNET_DEFAULTS,
  TransUNet,
  type TransUnetConfig,
  filterTransUnetCheckpoint,
} from '../../src/models/transunet.js';
import type { StateDict } from '../../src/nn/module.js';
import { conv2d } from '../../src/ops/conv.js';
import { manualSeed, randn } from '../../src/ops/creation.js';
import { slice } from '../../src/ops/shape.js';
import { noGrad } from '../../src/tensor/autograd.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { gradcheckAwayFromKinks } from '../helpers/kink_gradcheck.js';

/** A tiny R50-ViT: 32x32 input, width 8, one unit per block, a 2x2 token grid. */
const TINY: Partial<TransUnetConfig> = {
  imgSize: 32,
  inChans: 1,
  numClasses: 3,
  resnetLayers: [1, 1, 1],
  resnetWidth: 8,
  gnGroups: 4,
  hiddenSize: 16,
  numLayers: 2,
  numHeads: 2,
  mlpDim: 32,
  dropRate: 0,
  decoderChannels: [8, 8, 4, 4],
  headChannels: 8,
};

describe('TransUNet shapes', () => {
  test('R50-ViT hybrid: logits at input resolution, one attention map per layer over the 1/16 grid', () => {
    manualSeed(0);
    const m = new TransUNet(TINY);
    const attentions: Tensor[] = [];
    const y = m.forward(randn([2, 1, 32, 32]), { attentions });
    assert.deepEqual(y.shape, [2, 3, 32, 32]);
    assert.equal(attentions.length, 2);
    assert.deepEqual(attentions[0].shape, [2, 2, 4, 4]);
  });

  test('the CNN trunk gives skips at 1/8, 1/4, 1/2 (zero-padded to the reference sizes) and 16w channels at 1/16', () => {
    const r = new ResNetV2(1, [1, 2, 1], 8, 4);
    const { features, skips } = r.forward(randn([1, 1, 32, 32]));
    assert.deepEqual(features.shape, [1, 128, 2, 2]);
    assert.deepEqual(
      skips.map((s) => s.shape),
      [
        [1, 64, 4, 4],
        [1, 32, 8, 8],
        [1, 8, 16, 16],
      ],
    );
    // The unpadded max pool leaves 7x7 after block1; the eighth row and column are the zero padding.
    const pad = skips[1];
    assert.ok(slice(pad, 2, 7, 8).data.every((v) => v === 0));
    assert.ok(slice(pad, 3, 7, 8).data.every((v) => v === 0));
    assert.deepEqual(r.skipChannels, [64, 32, 8]);
  });

  test('pure-ViT variant: patches of the image, no skips, any number of x2 stages matching the patch', () => {
    const m = new TransUNet({ ...TINY, encoder: 'vit', patchSize: 8, decoderChannels: [8, 8, 4], nSkip: 0 });
    assert.equal(m.transformer.embeddings.hybrid_model, null);
    assert.deepEqual(m.forward(randn([1, 1, 32, 32])).shape, [1, 3, 32, 32]);
    assert.ok(m.decoder.blocks.toArray().every((b) => b.skipChannels === 0));
  });

  test('nSkip picks how many CNN features the decoder concatenates', () => {
    const m = new TransUNet({ ...TINY, nSkip: 1 });
    assert.deepEqual(
      m.decoder.blocks.toArray().map((b) => b.skipChannels),
      [64, 0, 0, 0],
    );
    assert.deepEqual(m.forward(randn([1, 1, 32, 32])).shape, [1, 3, 32, 32]);
  });

  test("R50-ViT-B_16's layout and names (narrower, to build fast)", () => {
    const m = new TransUNet({
      weightInit: 'skip',
      resnetWidth: 32,
      hiddenSize: 48,
      mlpDim: 96,
      headChannels: 64,
    });
    const keys = [...m.stateDict().keys()];
    for (const k of [
      'transformer.embeddings.hybrid_model.root.conv.weight',
      'transformer.embeddings.hybrid_model.root.gn.weight',
      'transformer.embeddings.hybrid_model.body.block1.unit1.gn_proj.weight',
      'transformer.embeddings.hybrid_model.body.block3.unit9.conv3.weight',
      'transformer.embeddings.patch_embeddings.weight',
      'transformer.embeddings.position_embeddings',
      'transformer.encoder.layer.11.attn.qkv.weight',
      'transformer.encoder.encoder_norm.weight',
      'decoder.conv_more.0.weight',
      'decoder.conv_more.1.running_var',
      'decoder.blocks.3.conv2.0.weight',
      'segmentation_head.0.weight',
    ]) {
      assert.ok(keys.includes(k), `missing ${k}`);
    }
    assert.ok(!keys.some((k) => k.includes('unit10') || k.includes('layer.12')));
    assert.deepEqual(m.transformer.embeddings.position_embeddings.shape, [1, 196, 48]);
    // conv_more's 64 channels + block2's 8 x 32 skip channels
    assert.deepEqual(m.stateDict().get('decoder.blocks.0.conv1.0.weight')?.shape, [256, 64 + 256, 3, 3]);
    assert.deepEqual(
      m.stateDict().get('transformer.embeddings.patch_embeddings.weight')?.shape,
      [48, 512, 1, 1],
    );
    assert.equal(TRANSUNET_DEFAULTS.numClasses, 9);
  });

  test('bad configs and inputs are one-line errors', () => {
    assert.throws(
      () => new TransUNet({ ...TINY, decoderChannels: [8, 8, 4] }),
      /3 decoder stages upsample x8 but the patch grid has stride 16/,
    );
    assert.throws(
      () => new TransUNet({ ...TINY, encoder: 'vit', nSkip: 1, patchSize: 16 }),
      /nSkip must be 0\.\.0/,
    );
    assert.throws(() => new TransUNet({ ...TINY, imgSize: 40 }), /multiple of the patch grid's stride 16/);
    assert.throws(() => new TransUNet({ ...TINY, resnetWidth: 6 }), /width 6 gives 6-channel GroupNorms/);
    assert.throws(
      () => new TransUNet(TINY).forward(randn([1, 1, 48, 48])),
      /expected input \(B, 1, 32, 32\), got \[1, 1, 48, 48\]/,
    );
  });
});

describe('TransUNet blocks: gradients vs finite differences', () => {
  test('StdConv2d standardizes each filter (invariant to its scale and offset) and differentiates through it', () => {
    manualSeed(5);
    const c = new StdConv2d(2, 3, 3, { padding: 1, bias: false });
    const x = randn([1, 2, 5, 5]);
    const y = noGrad(() => c.forward(x));
    // the same conv with filters standardized by hand
    const w = c.weight.data as Float32Array;
    const ws = new Float32Array(w.length);
    for (let o = 0; o < 3; o++) {
      const f = w.subarray(o * 18, (o + 1) * 18);
      const mean = f.reduce((a, b) => a + b, 0) / 18;
      const v = f.reduce((a, b) => a + (b - mean) ** 2, 0) / 18;
      for (let i = 0; i < 18; i++) ws[o * 18 + i] = (f[i] - mean) / Math.sqrt(v + 1e-5);
    }
    assertClose(
      y,
      noGrad(() => conv2d(x, new Tensor(ws, c.weight.shape), null, { padding: 1 })),
      1e-4,
      'standardized',
    );
    for (let i = 0; i < w.length; i++) w[i] = 3 * w[i] + 0.5 + Math.floor(i / 18);
    assertClose(
      noGrad(() => c.forward(x)),
      y,
      1e-3,
      'scale/offset invariance',
    );
    gradcheck((xx) => c.forward(xx), [x, c.weight], { name: 'StdConv2d', eps: 1e-3 });
  });

  test('PreActBottleneck with a strided projection shortcut', () => {
    manualSeed(3);
    const b = new PreActBottleneck(4, 8, 4, 2, 2);
    assert.ok(b.downsample && b.gn_proj);
    const x = randn([2, 4, 6, 6]);
    assert.deepEqual(b.forward(x).shape, [2, 8, 3, 3]);
    gradcheck((v) => b.forward(v), [x], { name: 'PreActBottleneck x', eps: 1e-3, atol: 5e-3 });
    gradcheck(() => b.forward(x), [b.conv2.weight], {
      name: 'PreActBottleneck conv2',
      eps: 1e-3,
      atol: 5e-3,
    });
  });

  test('DecoderBlock (bilinear x2, skip concat, two Conv2dReLU) and DecoderCup', () => {
    manualSeed(4);
    const d = new DecoderBlock(4, 3, 2);
    const x = randn([2, 4, 3, 3]);
    const skip = randn([2, 2, 6, 6]);
    assert.deepEqual(d.forward(x, skip).shape, [2, 3, 6, 6]);
    gradcheck((a, s) => d.forward(a, s), [x, skip], { name: 'DecoderBlock', eps: 1e-3, atol: 5e-3 });
    const m = new TransUNet(TINY);
    const cup = m.decoder as DecoderCup;
    const tokens = randn([2, 4, 16]);
    const skips = [randn([2, 64, 4, 4]), randn([2, 32, 8, 8]), randn([2, 8, 16, 16])];
    gradcheckAwayFromKinks((t) => cup.forward(t, [2, 2], skips), [tokens], {
      name: 'DecoderCup',
      maxChecks: 30,
    });
  });

  test('CNN trunk, embeddings + transformer encoder, the whole model', () => {
    // 64x64 input: at 32x32 the per-channel GroupNorm of block3's shortcut normalizes 4 values, which
    // amplifies float32 rounding beyond what finite differences can resolve.
    manualSeed(1);
    const m = new TransUNet({ ...TINY, imgSize: 64 });
    const x = randn([1, 1, 64, 64]);
    // The trunk's GroupNorms couple every unit of a group to each input pixel, so a step moves many
    // ReLU/max-pool units a little across their kinks: clear kinks are skipped, the small ones that
    // remain are covered by a 10% tolerance (a wrong backward is off by far more).
    const h = m.transformer.embeddings.hybrid_model as ResNetV2;
    const loose = { eps: 2e-3, atol: 2e-2, rtol: 0.1, maxChecks: 20 };
    gradcheckAwayFromKinks((v) => h.forward(v).features, [x], { name: 'ResNetV2', ...loose });
    gradcheckAwayFromKinks((v) => m.transformer.forward(v).tokens, [x], { name: 'transformer', ...loose });
    // The whole model, through the decoder's skips and tokens, wrt the position embeddings.
    const small = new TransUNet(TINY);
    const x32 = randn([2, 1, 32, 32]);
    const pos = small.transformer.embeddings.position_embeddings;
    gradcheckAwayFromKinks(() => small.forward(x32), [pos], { name: 'TransUNet pos', maxChecks: 24 });
  });
});

describe('TransUNet checkpoints', () => {
  test("the reference implementation's names load through the filter and give the same output", () => {
    manualSeed(2);
    const a = new TransUNet(TINY).eval();
    const b = new TransUNet(TINY).eval();
    // a's weights under the reference's names: query/key/value, out, attention_norm, ffn_norm, ffn.fc*
    const ref: StateDict = new Map();
    for (const [k, t] of a.stateDict()) {
      const m = /^(transformer\.encoder\.layer\.\d+)\.(.+)$/.exec(k);
      if (!m) {
        ref.set(k, t);
        continue;
      }
      const [, p, rest] = m;
      const qkv = /^attn\.qkv\.(weight|bias)$/.exec(rest);
      if (qkv) {
        const n = t.shape[0] / 3;
        for (const [i, name] of ['query', 'key', 'value'].entries()) {
          ref.set(`${p}.attn.${name}.${qkv[1]}`, slice(t, 0, i * n, (i + 1) * n));
        }
        continue;
      }
      const renamed = rest
        .replace(/^norm1\./, 'attention_norm.')
        .replace(/^norm2\./, 'ffn_norm.')
        .replace(/^mlp\./, 'ffn.')
        .replace(/^attn\.proj\./, 'attn.out.');
      ref.set(`${p}.${renamed}`, t);
    }
    assert.ok(ref.has('transformer.encoder.layer.0.attn.query.weight'));
    const filtered = filterTransUnetCheckpoint(ref);
    assert.equal(filtered.source, 'transunet');
    b.loadStateDict(filtered.stateDict);
    const x = randn([1, 1, 32, 32]);
    assertClose(
      noGrad(() => b.forward(x)),
      noGrad(() => a.forward(x)),
      1e-6,
      'reloaded',
    );
    assert.equal(filterTransUnetCheckpoint(a.stateDict()).source, 'glimpse');
  });
});
