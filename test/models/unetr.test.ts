import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  Convolution,
  conv3dInSlabs,
  filterUnetrCheckpoint,
  PatchEmbeddingBlock,
  UNETR,
  type UnetrConfig,
  UnetBasicBlock,
  UnetOutBlock,
  UnetResBlock,
  UnetrPrUpBlock,
  UnetrUpBlock,
} from '../../src/models/unetr.js';
import type { Conv3d } from '../../src/nn/conv.js';
import type { StateDict } from '../../src/nn/module.js';
import { manualSeed, randn } from '../../src/ops/creation.js';
import { permute, reshape } from '../../src/ops/shape.js';
import { noGrad } from '../../src/tensor/autograd.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { get, loadFixture, tolerance } from '../helpers/fixtures.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { gradcheckAwayFromKinks } from '../helpers/kink_gradcheck.js';

/** Patch 8 (three levels): 16^3 input, a 2x2x2 token grid, skips from blocks 0 and 1. */
const TINY: Partial<UnetrConfig> = {
  inChannels: 1,
  outChannels: 3,
  imgSize: 16,
  patchSize: 8,
  featureSize: 2,
  hiddenSize: 8,
  mlpDim: 16,
  numHeads: 2,
  numLayers: 2,
  skipLayers: [0, 1],
};

const CFG = { resBlock: true, normName: 'instance' } as UnetrConfig;

describe('UNETR shapes and names', () => {
  test('patch 8: logits at input resolution, attention over the 2x2x2 grid, three levels of blocks', () => {
    manualSeed(0);
    const m = new UNETR(TINY);
    const attentions: Tensor[] = [];
    const y = m.forward(randn([2, 1, 16, 16, 16]), { attentions });
    assert.deepEqual(y.shape, [2, 3, 16, 16, 16]);
    assert.equal(attentions.length, 2);
    assert.deepEqual(attentions[0].shape, [2, 2, 8, 8]);
    const tops = new Set([...m.stateDict().keys()].map((k) => k.split('.')[0]));
    assert.deepEqual(
      [...tops],
      ['vit', 'encoder1', 'encoder2', 'encoder3', 'decoder4', 'decoder3', 'decoder2', 'out'],
    );
  });

  test("patch 16 has MONAI's modules and parameter names exactly", () => {
    const m = new UNETR({ ...TINY, imgSize: 16, patchSize: 16, numLayers: 3, skipLayers: [0, 1, 2] });
    const keys = [...m.stateDict().keys()].filter((k) => !/^vit\.blocks\.[12]\./.test(k));
    const block = (n: number, i: number) => [
      `encoder${n}.blocks.${i}.0.conv.weight`,
      `encoder${n}.blocks.${i}.1.conv1.conv.weight`,
      `encoder${n}.blocks.${i}.1.conv2.conv.weight`,
    ];
    const decoder = (n: number) => [
      `decoder${n}.transp_conv.conv.weight`,
      `decoder${n}.conv_block.conv1.conv.weight`,
      `decoder${n}.conv_block.conv2.conv.weight`,
      `decoder${n}.conv_block.conv3.conv.weight`,
    ];
    assert.deepEqual(
      keys.sort(),
      [
        'vit.patch_embedding.position_embeddings',
        'vit.patch_embedding.patch_embeddings.weight',
        'vit.patch_embedding.patch_embeddings.bias',
        'vit.blocks.0.norm1.weight',
        'vit.blocks.0.norm1.bias',
        'vit.blocks.0.attn.qkv.weight',
        'vit.blocks.0.attn.proj.weight',
        'vit.blocks.0.attn.proj.bias',
        'vit.blocks.0.norm2.weight',
        'vit.blocks.0.norm2.bias',
        'vit.blocks.0.mlp.fc1.weight',
        'vit.blocks.0.mlp.fc1.bias',
        'vit.blocks.0.mlp.fc2.weight',
        'vit.blocks.0.mlp.fc2.bias',
        'vit.norm.weight',
        'vit.norm.bias',
        'encoder1.layer.conv1.conv.weight',
        'encoder1.layer.conv2.conv.weight',
        'encoder1.layer.conv3.conv.weight',
        'encoder2.transp_conv_init.conv.weight',
        ...block(2, 0),
        ...block(2, 1),
        'encoder3.transp_conv_init.conv.weight',
        ...block(3, 0),
        'encoder4.transp_conv_init.conv.weight',
        ...decoder(5),
        ...decoder(4),
        ...decoder(3),
        ...decoder(2),
        'out.conv.conv.weight',
        'out.conv.conv.bias',
      ].sort(),
    );
    assert.deepEqual(m.forward(randn([1, 1, 16, 16, 16])).shape, [1, 3, 16, 16, 16]);
  });

  test('channels per level: encoder k and decoder k+1 carry featureSize · 2^(k-1)', () => {
    const m = new UNETR({ ...TINY, featureSize: 3 });
    const sd = m.stateDict();
    assert.deepEqual(sd.get('encoder1.layer.conv1.conv.weight')?.shape, [3, 1, 3, 3, 3]);
    assert.deepEqual(sd.get('encoder2.transp_conv_init.conv.weight')?.shape, [8, 6, 2, 2, 2]);
    assert.deepEqual(sd.get('encoder3.transp_conv_init.conv.weight')?.shape, [8, 12, 2, 2, 2]);
    assert.deepEqual(sd.get('decoder4.transp_conv.conv.weight')?.shape, [8, 12, 2, 2, 2]);
    assert.deepEqual(sd.get('decoder4.conv_block.conv1.conv.weight')?.shape, [12, 24, 3, 3, 3]);
    assert.deepEqual(sd.get('decoder2.transp_conv.conv.weight')?.shape, [6, 3, 2, 2, 2]);
  });

  test('batch norm and plain conv blocks are options; bad configs and inputs are one-line errors', () => {
    const bn = new UNETR({ ...TINY, normName: 'batch', resBlock: false });
    assert.ok(bn.stateDict().has('encoder1.layer.norm1.running_mean'));
    assert.ok(!bn.stateDict().has('encoder1.layer.conv3.conv.weight'));
    assert.deepEqual(bn.forward(randn([2, 1, 16, 16, 16])).shape, [2, 3, 16, 16, 16]);
    assert.throws(() => new UNETR({ ...TINY, patchSize: 12 }), /patchSize must be a power of two >= 4/);
    assert.throws(() => new UNETR({ ...TINY, skipLayers: [0] }), /patch 8 has 2 skip levels/);
    assert.throws(() => new UNETR({ ...TINY, skipLayers: [0, 2] }), /block indices in 0\.\.1/);
    assert.throws(() => new UNETR({ ...TINY, imgSize: 20 }), /multiple of patchSize 8/);
    assert.throws(
      () => new UNETR(TINY).forward(randn([1, 1, 32, 32, 32])),
      /expected input \(B, 1, 16, 16, 16\)/,
    );
  });
});

describe('UNETR 3D convs: parity with torch_conv through the blocks', () => {
  const fx = loadFixture('torch/torch_conv.io.safetensors');
  const tol = tolerance('torch', 'torch_conv');
  // The ops themselves are covered by test/ops/conv.test.ts; these go through the modules' own
  // padding and transposed-conv geometry (MONAI's get_conv_layer).

  test("UnetResBlock's 3x3x3 conv (conv3d, padding 1, no bias)", () => {
    const blk = new UnetResBlock(2, 3, 3, 1, 'instance');
    (blk.conv1.conv.weight.data as Float32Array).set(get(fx, 'conv3d.w').data as Float32Array);
    const x = get(fx, 'conv3d.x').cloneData().setRequiresGrad();
    const y = blk.conv1.forward(x);
    assertClose(y, get(fx, 'conv3d.y'), tol, 'conv3d output');
    y.backward(get(fx, 'conv3d.upstream'));
    assertClose(x.grad as Tensor, get(fx, 'conv3d.grad.x'), tol, 'conv3d grad x');
    assertClose(blk.conv1.conv.weight.grad as Tensor, get(fx, 'conv3d.grad.w'), tol, 'conv3d grad w');
  });

  test("UnetrUpBlock's x2 transposed conv (conv_transpose3d, stride 2, no bias)", () => {
    const blk = new UnetrUpBlock(3, 2, CFG);
    (blk.transp_conv.conv.weight.data as Float32Array).set(get(fx, 'convT3d.w').data as Float32Array);
    const x = get(fx, 'convT3d.x').cloneData().setRequiresGrad();
    const y = blk.transp_conv.forward(x);
    assertClose(y, get(fx, 'convT3d.y'), tol, 'convT3d output');
    y.backward(get(fx, 'convT3d.upstream'));
    assertClose(x.grad as Tensor, get(fx, 'convT3d.grad.x'), tol, 'convT3d grad x');
    assertClose(blk.transp_conv.conv.weight.grad as Tensor, get(fx, 'convT3d.grad.w'), tol, 'convT3d grad w');
  });

  test('without gradients, large volumes convolve in depth slabs with the same result', () => {
    manualSeed(3);
    const conv = new Convolution(3, 4, 3).conv as Conv3d;
    const x = randn([2, 3, 9, 6, 5]);
    const whole = noGrad(() => conv.forward(x));
    for (const budget of [1, 3 * 27 * 30 * 2, 3 * 27 * 30 * 4]) {
      assertClose(
        noGrad(() => conv3dInSlabs(x, conv, budget)),
        whole,
        1e-5,
        `budget ${budget}`,
      );
    }
    const withGrad = conv3dInSlabs(x.setRequiresGrad(), conv, 1);
    assert.ok(withGrad.requiresGrad, 'with gradients the conv is one recorded op');
  });
});

describe('UNETR blocks: gradients vs finite differences', () => {
  test('UnetResBlock (with the 1x1x1 shortcut) and UnetBasicBlock', () => {
    manualSeed(1);
    const res = new UnetResBlock(2, 3, 3, 1, 'instance');
    assert.ok(res.conv3 && res.norm3);
    const x = randn([2, 2, 4, 4, 3]);
    assert.deepEqual(res.forward(x).shape, [2, 3, 4, 4, 3]);
    gradcheckAwayFromKinks((v) => res.forward(v), [x], { name: 'UnetResBlock x', eps: 1e-3 });
    gradcheckAwayFromKinks(() => res.forward(x), [res.conv2.conv.weight], {
      name: 'UnetResBlock conv2',
      eps: 1e-3,
    });
    const basic = new UnetBasicBlock(2, 3, 3, 1, 'batch');
    gradcheckAwayFromKinks((v) => basic.forward(v), [x], { name: 'UnetBasicBlock x', eps: 1e-3 });
  });

  test('UnetrPrUpBlock (transposed conv + conv block per level), UnetrUpBlock, UnetOutBlock', () => {
    manualSeed(2);
    const up = new UnetrPrUpBlock(4, 2, 1, CFG);
    const t = randn([1, 4, 2, 2, 2]);
    assert.deepEqual(up.forward(t).shape, [1, 2, 8, 8, 8]);
    gradcheckAwayFromKinks((v) => up.forward(v), [t], { name: 'UnetrPrUpBlock', eps: 1e-3 });
    const dec = new UnetrUpBlock(4, 2, CFG);
    const skip = randn([1, 2, 4, 4, 4]);
    assert.deepEqual(dec.forward(t, skip).shape, [1, 2, 4, 4, 4]);
    gradcheckAwayFromKinks((a, s) => dec.forward(a, s), [t, skip], { name: 'UnetrUpBlock', eps: 1e-3 });
    const out = new UnetOutBlock(2, 3);
    gradcheck((v) => out.forward(v), [skip], { name: 'UnetOutBlock' });
  });

  test('patch embedding, the ViT and the whole model', () => {
    manualSeed(4);
    const pe = new PatchEmbeddingBlock(1, 6, 4, 8, 0);
    const x = randn([1, 1, 8, 8, 8]);
    assert.deepEqual(pe.forward(x).shape, [1, 8, 6]);
    gradcheck((v) => pe.forward(v), [x, pe.position_embeddings], { name: 'PatchEmbeddingBlock', eps: 3e-3 });
    const m = new UNETR(TINY);
    const vol = randn([1, 1, 16, 16, 16]);
    gradcheck((v) => m.vit.forward(v).hidden[0], [vol], { name: 'UnetrViT', eps: 3e-3, maxChecks: 30 });
    // Through every level, float32 rounding of 12k outputs and leaky-ReLU kinks blur the central
    // difference by a few percent; a wrong backward is off by far more than the 10% allowed.
    const loose = { eps: 1e-3, atol: 2e-2, rtol: 0.1, maxChecks: 25 };
    gradcheckAwayFromKinks((v) => m.forward(v), [vol], { name: 'UNETR x', ...loose });
    gradcheckAwayFromKinks(() => m.forward(vol), [m.vit.patch_embedding.position_embeddings], {
      name: 'UNETR pos',
      ...loose,
    });
  });
});

/** A model's state dict under MONAI's names (the inverse of filterUnetrCheckpoint's renames). */
function toMonai(m: UNETR, perceptron: boolean): StateDict {
  const sd: StateDict = new Map();
  for (const [k, t] of m.stateDict()) {
    const key = k
      .replace(/\.attn\.proj\./, '.attn.out_proj.')
      .replace(/\.mlp\.fc1\./, '.mlp.linear1.')
      .replace(/\.mlp\.fc2\./, '.mlp.linear2.');
    if (perceptron && k.startsWith('vit.patch_embedding.patch_embeddings.')) {
      const [hidden, c, p] = t.shape;
      sd.set(
        key.replace('patch_embeddings.', 'patch_embeddings.1.'),
        k.endsWith('weight') ? reshape(permute(t, [0, 2, 3, 4, 1]), [hidden, p * p * p * c]) : t,
      );
    } else sd.set(key, t);
  }
  return sd;
}

describe('UNETR checkpoints', () => {
  test("MONAI's names (conv and perceptron patch embeddings) load and give the same output", () => {
    manualSeed(5);
    const a = new UNETR({ ...TINY, qkvBias: true }).eval();
    const x = randn([1, 1, 16, 16, 16]);
    const want = noGrad(() => a.forward(x));
    for (const perceptron of [false, true]) {
      const b = new UNETR({ ...TINY, qkvBias: true });
      const sd = toMonai(a, perceptron);
      assert.ok(sd.has('vit.blocks.1.attn.out_proj.weight') && sd.has('vit.blocks.0.mlp.linear2.bias'));
      const filtered = filterUnetrCheckpoint(sd, b.config);
      assert.equal(filtered.source, 'monai');
      b.loadStateDict(filtered.stateDict);
      assertClose(
        noGrad(() => b.eval().forward(x)),
        want,
        1e-5,
        `perceptron ${perceptron}`,
      );
    }
  });

  test("the perceptron layout is MONAI's: Linear over 'b c (h p1) (w p2) (d p3) -> b (h w d) (p1 p2 p3 c)'", () => {
    manualSeed(6);
    const p = 2;
    const C = 2;
    const hidden = 3;
    const lin = randn([hidden, p * p * p * C]);
    const x = randn([1, C, 4, 4, 2]);
    const conv = filterUnetrCheckpoint(new Map([['vit.patch_embedding.patch_embeddings.1.weight', lin]]), {
      patchSize: p,
      inChannels: C,
    }).stateDict.get('vit.patch_embedding.patch_embeddings.weight') as Tensor;
    const pe = new PatchEmbeddingBlock(C, hidden, p, 4, 0);
    (pe.patch_embeddings.weight.data as Float32Array).set(conv.data as Float32Array);
    pe.patch_embeddings.bias?.data.fill(0);
    const byConv = noGrad(() => pe.patch_embeddings.forward(x)); // (1, hidden, 2, 2, 1)
    const [, , D, H, W] = x.shape;
    for (let gd = 0; gd < 2; gd++) {
      for (let gh = 0; gh < 2; gh++) {
        // the patch vector in (p1 p2 p3 c) order
        const v: number[] = [];
        for (let p1 = 0; p1 < p; p1++)
          for (let p2 = 0; p2 < p; p2++)
            for (let p3 = 0; p3 < p; p3++)
              for (let c = 0; c < C; c++) v.push(x.data[((c * D + gd * p + p1) * H + gh * p + p2) * W + p3]);
        for (let o = 0; o < hidden; o++) {
          const want = v.reduce((acc, vi, i) => acc + vi * lin.data[o * v.length + i], 0);
          const got = byConv.data[((o * 2 + gd) * 2 + gh) * 1];
          assert.ok(Math.abs(got - want) < 1e-5, `patch (${gd}, ${gh}) unit ${o}: ${got} vs ${want}`);
        }
      }
    }
  });
});
