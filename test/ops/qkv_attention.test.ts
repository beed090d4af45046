import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, listBackends, manualSeed, randn, withBackend } from '../../src/index.js';
import { Attention } from '../../src/models/vit.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { gradcheck } from '../helpers/gradcheck.js';

manualSeed(11);

/** The permute/unbind/SDPA/transpose path qkvAttention replaces. */
function reference(qkv: Tensor, heads: number): Tensor {
  const [B, N, C3] = qkv.shape;
  const C = C3 / 3;
  const [q, k, v] = F.unbind(F.permute(F.reshape(qkv, [B, N, 3, heads, C / heads]), [2, 0, 3, 1, 4]), 0);
  const s = F.softmax(F.mul(F.matmul(q, F.transpose(k, -2, -1)), 1 / Math.sqrt(C / heads)), -1);
  return F.reshape(F.transpose(F.matmul(s, v), 1, 2), [B, N, C]);
}

describe('qkvAttention', () => {
  for (const backend of listBackends()) {
    test(`${backend}: output and gradient equal the composed path (odd sizes)`, () => {
      withBackend(backend, () => {
        for (const [B, N, H, D] of [
          [2, 7, 3, 5],
          [1, 17, 2, 16],
          [3, 50, 4, 32],
        ]) {
          const qkv = randn([B, N, 3 * H * D]);
          qkv.requiresGrad = true;
          const w = randn([B, N, H * D]);
          const y = F.qkvAttention(qkv, H);
          F.sum(F.mul(y, w)).backward();
          const got = qkv.grad!;
          qkv.grad = null;
          const ref = reference(qkv, H);
          F.sum(F.mul(ref, w)).backward();
          assertClose(y, ref, 1e-5, `forward ${[B, N, H, D]}`);
          assertClose(got, qkv.grad!, 1e-5, `gradient ${[B, N, H, D]}`);
        }
      });
    });
  }

  test('gradient matches finite differences', () => {
    gradcheck((qkv) => F.qkvAttention(qkv, 2), [randn([2, 5, 12])], { name: 'qkvAttention' });
  });

  test('ViT Attention: the fast path equals the attention-capturing path', () => {
    const attn = new Attention(24, 3);
    const x = randn([2, 9, 24]);
    const captured: Tensor[] = [];
    assertClose(attn.forward(x), attn.forward(x, captured), 1e-5);
    assert.equal(captured.length, 1);
  });

  test('rejects a width that does not split into q, k, v of the heads', () => {
    assert.throws(() => F.qkvAttention(randn([1, 4, 10]), 2), /qkvAttention: expected float32 qkv/);
  });
});
