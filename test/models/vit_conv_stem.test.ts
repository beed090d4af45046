/** The ViT's conv_stem option (a convolutional stem in place of the patchify conv, Xiao et al. 2021). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { manualSeed, noGrad, randn } from '../../src/index.js';
import { readSafetensors, writeSafetensors } from '../../src/io/safetensors.js';
import { createModel } from '../../src/models/registry.js';
import { VisionTransformer } from '../../src/models/vit.js';
import { assertClose } from '../helpers/assert.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SMALL = {
  img_size: 28,
  in_chans: 1,
  num_classes: 10,
  patch_size: 4,
  embed_dim: 32,
  depth: 2,
  num_heads: 2,
  mlp_ratio: 2,
};

test('conv_stem: stride-1 convs first, then log2(patch) stride-2 convs, a 1x1 projection; tokens on the same grid', () => {
  manualSeed(0);
  const m = new VisionTransformer({ ...SMALL, conv_stem: [4, 8, 16] });
  const stem = m.patch_embed.backbone;
  assert.ok(stem);
  const x = randn([2, 1, 28, 28]);
  const sides: number[] = [];
  noGrad(() => {
    let h = x;
    for (const layer of stem.toArray()) {
      h = layer.forward(h);
      sides.push(h.shape[2]);
    }
  });
  assert.deepEqual(sides, [28, 14, 7]);
  assert.deepEqual(m.patch_embed.proj.weight.shape, [32, 16, 1, 1]);
  assert.deepEqual(m.gridSize, [7, 7]);
  const names = [...m.stateDict().keys()].filter((k) => k.startsWith('patch_embed.'));
  assert.ok(names.includes('patch_embed.backbone.0.conv.weight'));
  assert.ok(names.includes('patch_embed.backbone.2.bn.running_var'));
  assert.ok(names.includes('patch_embed.proj.bias'));
  const tokens = noGrad(() => m.patch_embed.forward(x));
  assert.deepEqual(tokens.shape, [2, 7, 7, 32]);
});

test('conv_stem: the 1x1 projection equals a conv over the stem features, and every parameter gets a gradient', () => {
  manualSeed(1);
  const m = createModel('vit_tiny_patch16_224', { ...SMALL, conv_stem: [4, 8] });
  m.eval();
  const x = randn([2, 1, 28, 28]);
  const pe = (m as VisionTransformer).patch_embed;
  noGrad(() => {
    const f = pe.backbone!.forward(x); // (B, 8, 7, 7)
    const viaConv = pe.proj.forward(f); // (B, 32, 7, 7)
    const tokens = pe.forward(x); // (B, 7, 7, 32)
    assertClose(tokens.permute([0, 3, 1, 2]), viaConv, 1e-5);
  });
  m.train();
  m.forward(x).sum().backward();
  for (const [name, p] of m.namedParameters()) assert.ok(p.grad, `${name} has no gradient`);
});

test('conv_stem: a checkpoint round-trips (batch-norm statistics included)', () => {
  manualSeed(2);
  const a = new VisionTransformer({ ...SMALL, conv_stem: [4, 8] });
  a.train();
  noGrad(() => a.forward(randn([4, 1, 28, 28]))); // move the running statistics off their init
  a.eval();
  const file = join(mkdtempSync(join(tmpdir(), 'glimpse-stem-')), 'm.safetensors');
  writeSafetensors(file, a.stateDict());
  const b = new VisionTransformer({ ...SMALL, conv_stem: [4, 8] });
  b.loadStateDict(readSafetensors(file).tensors);
  b.eval();
  const x = randn([2, 1, 28, 28]);
  noGrad(() => assertClose(b.forward(x), a.forward(x), 1e-6));
});

test('conv_stem: too few convs for the patch size is a clear error', () => {
  assert.throws(
    () => new VisionTransformer({ ...SMALL, img_size: 32, patch_size: 8, conv_stem: [4, 8] }),
    /conv_stem of 2 convs cannot reach patch_size 8/,
  );
});
