import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, nn, noGrad, randn, readSafetensors, tensor } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath, get, loadFixture, tolerance } from '../helpers/fixtures.js';

manualSeed(11);

describe('nn.Transformer parity with torch (torch_transformer fixture)', () => {
  const io = loadFixture('torch/torch_transformer.io.safetensors');
  const tol = tolerance('torch', 'torch_transformer');
  const build = () => {
    const model = new nn.Transformer({
      dModel: 32,
      nhead: 4,
      numEncoderLayers: 2,
      numDecoderLayers: 2,
      dimFeedforward: 64,
      dropout: 0,
      batchFirst: true,
    });
    // strict: every torch key present, none extra, shapes equal
    model.loadStateDict(readSafetensors(fixturePath('torch/torch_transformer.safetensors')).tensors);
    return model.eval();
  };
  const padding = get(io, 'src_key_padding_mask').to('bool');
  const masks = { tgtMask: get(io, 'tgt_mask'), srcKeyPaddingMask: padding, memoryKeyPaddingMask: padding };

  test('the generated causal mask is torch.nn.Transformer.generate_square_subsequent_mask', () => {
    assertClose(nn.Transformer.generateSquareSubsequentMask(4), get(io, 'tgt_mask'), 0, 'tgt_mask');
  });

  test('output with causal tgt mask and padding masks, and grad wrt src', () => {
    const model = build();
    const src = get(io, 'src').cloneData().setRequiresGrad();
    const out = model.forward(src, get(io, 'tgt'), masks);
    assertClose(out, get(io, 'output'), tol, 'output');
    out.backward(get(io, 'upstream'));
    assertClose(src.grad as Tensor, get(io, 'grad.src'), tol, 'grad.src');
  });

  test('tgtIsCausal without a mask, and captured attention, give the same output', () => {
    const model = build();
    const { tgtMask: _, ...rest } = masks;
    const causal = noGrad(() =>
      model.forward(get(io, 'src'), get(io, 'tgt'), { ...rest, tgtIsCausal: true }),
    );
    assertClose(causal, get(io, 'output'), tol, 'tgtIsCausal');
    const r = noGrad(() =>
      model.forward(get(io, 'src'), get(io, 'tgt'), { ...masks, captureAttention: true }),
    );
    assertClose(r.output, get(io, 'output'), tol, 'captured output');
    assert.equal(r.encoderAttentions.length, 2);
    assert.deepEqual(r.encoderAttentions[0].shape, [2, 4, 6, 6]);
    assert.deepEqual(r.decoderSelfAttentions[1].shape, [2, 4, 4, 4]);
    assert.deepEqual(r.decoderCrossAttentions[0].shape, [2, 4, 4, 6]);
    const self = r.decoderSelfAttentions[0];
    const cross = r.decoderCrossAttentions[0];
    for (let h = 0; h < 4; h++) {
      // causal: target position 0 sees only itself; padded memory (batch 0, keys 4, 5) gets no weight
      assert.equal(self.data[h * 16], 1);
      for (let i = 0; i < 4; i++) for (const j of [4, 5]) assert.equal(cross.data[(h * 4 + i) * 6 + j], 0);
    }
  });
});

describe('Transformer layers', () => {
  test('state dict names are torch names', () => {
    const model = new nn.Transformer({
      dModel: 8,
      nhead: 2,
      numEncoderLayers: 1,
      numDecoderLayers: 1,
      dimFeedforward: 16,
    });
    const keys = [...model.stateDict().keys()];
    for (const k of [
      'encoder.layers.0.self_attn.in_proj_weight',
      'encoder.layers.0.linear1.weight',
      'encoder.layers.0.norm2.bias',
      'encoder.norm.weight',
      'decoder.layers.0.multihead_attn.out_proj.weight',
      'decoder.layers.0.norm3.weight',
      'decoder.norm.bias',
    ]) {
      assert.ok(keys.includes(k), `missing ${k}`);
    }
    assert.equal(keys.length, 12 + 18 + 4);
  });

  test('an encoder built from one layer starts with copies of it (torch deep-copies)', () => {
    const layer = new nn.TransformerEncoderLayer({ dModel: 8, nhead: 2, dimFeedforward: 16 });
    const encoder = new nn.TransformerEncoder(layer, 3);
    const w = layer.linear1.weight;
    for (const l of encoder.layers) {
      assert.notEqual(l.linear1.weight, w);
      assertClose(l.linear1.weight, w, 0, 'copied weight');
    }
  });

  test('pre-norm (normFirst) layers compose as x + f(norm(x))', () => {
    const layer = new nn.TransformerEncoderLayer({
      dModel: 8,
      nhead: 2,
      dimFeedforward: 16,
      normFirst: true,
      activation: 'gelu',
      batchFirst: true,
    }).eval();
    const x = randn([2, 5, 8]);
    const y = noGrad(() => layer.forward(x));
    const expected = noGrad(() => {
      const n1 = layer.norm1.forward(x);
      const h = x.add(layer.self_attn.forward(n1, n1, n1, { needWeights: false }).output);
      return h.add(layer.linear2.forward(F.gelu(layer.linear1.forward(layer.norm2.forward(h)))));
    });
    assertClose(y, expected, 1e-5, 'pre-norm layer');
  });

  test('dropout is active in training mode only', () => {
    const layer = new nn.TransformerEncoderLayer({ dModel: 8, nhead: 2, dimFeedforward: 16, dropout: 0.5 });
    const x = randn([3, 2, 8]);
    const a = noGrad(() => layer.eval().forward(x));
    const b = noGrad(() => layer.eval().forward(x));
    assertClose(a, b, 0, 'eval is deterministic');
    const c = noGrad(() => layer.train().forward(x));
    assert.throws(() => assertClose(c, a, 1e-3), /differ/);
  });

  test('decoder layer with a key padding mask on the target ignores padded targets as keys', () => {
    const layer = new nn.TransformerDecoderLayer({
      dModel: 8,
      nhead: 2,
      dimFeedforward: 16,
      batchFirst: true,
    }).eval();
    const tgt = randn([1, 4, 8]);
    const memory = randn([1, 3, 8]);
    const pad = tensor([[false, false, true, true]], [1, 4], 'bool');
    const r = noGrad(() => layer.forward(tgt, memory, { tgtKeyPaddingMask: pad, captureAttention: true }));
    for (let h = 0; h < 2; h++)
      for (let i = 0; i < 4; i++) assert.equal(r.selfAttention.data[(h * 4 + i) * 4 + 3], 0);
    // changing a padded target token changes only its own row, never the others
    const tgt2 = tgt.cloneData();
    for (let c = 0; c < 8; c++) tgt2.data[3 * 8 + c] += 1;
    const out2 = noGrad(() => layer.forward(tgt2, memory, { tgtKeyPaddingMask: pad }));
    assertClose(out2.slice(1, 0, 3), r.output.slice(1, 0, 3), 1e-6, 'unpadded rows unchanged');
  });

  test('src and tgt must agree with dModel and batch', () => {
    const model = new nn.Transformer({ dModel: 8, nhead: 2, numEncoderLayers: 1, numDecoderLayers: 1 });
    assert.throws(() => model.forward(randn([3, 2, 8]), randn([4, 3, 8])), /same batch size/);
    assert.throws(() => model.forward(randn([3, 2, 6]), randn([4, 2, 6])), /dModel 8/);
  });
});
