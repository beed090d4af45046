import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, nn, noGrad, randn, readSafetensors, tensor } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath, get, loadFixture, tolerance } from '../helpers/fixtures.js';
import { gradcheck } from '../helpers/gradcheck.js';

manualSeed(7);

describe('MultiheadAttention parity with torch (torch_mha fixture)', () => {
  const io = loadFixture('torch/torch_mha.io.safetensors');
  const tol = tolerance('torch', 'torch_mha');
  const build = () => {
    const mha = new nn.MultiheadAttention(32, 4, { batchFirst: true });
    mha.loadStateDict(readSafetensors(fixturePath('torch/torch_mha.safetensors')).tensors);
    return mha.eval();
  };
  const masks = {
    keyPaddingMask: get(io, 'key_padding_mask').to('bool'),
    attnMask: get(io, 'attn_mask'),
  };

  test('output and per-head weights', () => {
    const mha = build();
    const { output, weights } = noGrad(() =>
      mha.forward(get(io, 'query'), get(io, 'key'), get(io, 'value'), {
        ...masks,
        averageAttnWeights: false,
      }),
    );
    assertClose(output, get(io, 'output'), tol, 'output');
    assert.deepEqual(weights?.shape, [2, 4, 5, 7]);
    assertClose(weights as Tensor, get(io, 'attn_weights_per_head'), tol, 'attn_weights_per_head');
  });

  test('grad wrt query, with and without weights requested', () => {
    for (const needWeights of [true, false]) {
      const mha = build();
      const query = get(io, 'query').cloneData().setRequiresGrad();
      const { output, weights } = mha.forward(query, get(io, 'key'), get(io, 'value'), {
        ...masks,
        needWeights,
      });
      assert.equal(weights === null, !needWeights);
      output.backward(get(io, 'upstream'));
      assertClose(
        query.grad as Tensor,
        get(io, 'grad.query'),
        tol,
        `grad.query (needWeights ${needWeights})`,
      );
    }
  });

  test('averaged weights are the head mean; seq-first layout gives the same result', () => {
    const mha = build();
    const q = get(io, 'query');
    const k = get(io, 'key');
    const v = get(io, 'value');
    const avg = noGrad(() => mha.forward(q, k, v, masks)).weights as Tensor;
    assertClose(avg, F.mean(get(io, 'attn_weights_per_head'), 1), tol, 'averaged weights');
    const seqFirst = new nn.MultiheadAttention(32, 4);
    seqFirst.loadStateDict(mha.stateDict());
    const t = (x: Tensor) => x.transpose(0, 1);
    const out = noGrad(() => seqFirst.forward(t(q), t(k), t(v), masks)).output;
    assertClose(t(out), get(io, 'output'), tol, 'seq-first output');
  });
});

describe('MultiheadAttention behaviour', () => {
  test('state dict names follow torch (packed and separate projections)', () => {
    const packed = new nn.MultiheadAttention(8, 2);
    assert.deepEqual([...packed.stateDict().keys()].sort(), [
      'in_proj_bias',
      'in_proj_weight',
      'out_proj.bias',
      'out_proj.weight',
    ]);
    const separate = new nn.MultiheadAttention(8, 2, { kdim: 6, vdim: 5, bias: false });
    const sd = separate.stateDict();
    assert.deepEqual([...sd.keys()].sort(), [
      'k_proj_weight',
      'out_proj.weight',
      'q_proj_weight',
      'v_proj_weight',
    ]);
    assert.deepEqual(sd.get('k_proj_weight')?.shape, [8, 6]);
    assert.deepEqual(sd.get('v_proj_weight')?.shape, [8, 5]);
  });

  test('keyPaddingMask zeroes the weights on padded keys', () => {
    const mha = new nn.MultiheadAttention(8, 2, { batchFirst: true }).eval();
    const x = randn([2, 5, 8]);
    const pad = tensor(
      [
        [false, false, false, true, true],
        [false, false, false, false, false],
      ],
      [2, 5],
      'bool',
    );
    const { weights } = noGrad(() =>
      mha.forward(x, x, x, { keyPaddingMask: pad, averageAttnWeights: false }),
    );
    const w = weights as Tensor; // (2, 2, 5, 5)
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 5; i++) {
        let rowSum = 0;
        for (let j = 0; j < 5; j++) {
          const p = w.data[((0 * 2 + h) * 5 + i) * 5 + j];
          rowSum += p;
          if (j >= 3) assert.equal(p, 0, `padded key ${j} got weight ${p}`);
        }
        assert.ok(Math.abs(rowSum - 1) < 1e-5, `row sums to ${rowSum}`);
      }
    }
    assert.ok(w.data[((1 * 2 + 0) * 5 + 0) * 5 + 4] > 0, 'unpadded batch keeps its last key');
  });

  test('bool attnMask (true = not allowed) equals the additive -inf mask; 3-D masks are per head', () => {
    const mha = new nn.MultiheadAttention(8, 2).eval();
    const x = randn([4, 3, 8]); // (L, B, E)
    const banned = tensor(
      [
        [false, true, false, false],
        [false, false, true, false],
        [true, false, false, false],
        [false, false, false, true],
      ],
      [4, 4],
      'bool',
    );
    const additive = F.where(banned, -Infinity, 0);
    const a = noGrad(() => mha.forward(x, x, x, { attnMask: banned }));
    const b = noGrad(() => mha.forward(x, x, x, { attnMask: additive }));
    assertClose(a.output, b.output, 1e-6, 'bool vs float mask');
    const perHead = F.expand(additive.reshape([1, 4, 4]), [6, 4, 4]);
    const c = noGrad(() => mha.forward(x, x, x, { attnMask: perHead }));
    assertClose(c.output, a.output, 1e-6, '3-D mask');
    assert.equal((a.weights as Tensor).data[1], 0);
  });

  test('isCausal without a mask applies the causal mask', () => {
    const mha = new nn.MultiheadAttention(8, 2, { batchFirst: true }).eval();
    const x = randn([1, 4, 8]);
    const a = noGrad(() => mha.forward(x, x, x, { isCausal: true }));
    const b = noGrad(() =>
      mha.forward(x, x, x, { attnMask: nn.Transformer.generateSquareSubsequentMask(4) }),
    );
    assertClose(a.output, b.output, 1e-6, 'isCausal vs explicit mask');
    assert.equal((a.weights as Tensor).data[0], 1, 'first query attends only to the first key');
  });

  test('unbatched input matches a batch of one', () => {
    const mha = new nn.MultiheadAttention(8, 2, { kdim: 5, vdim: 3 }).eval();
    const q = randn([4, 8]);
    const k = randn([6, 5]);
    const v = randn([6, 3]);
    const pad = tensor([false, false, true, false, false, true], [6], 'bool');
    const a = noGrad(() => mha.forward(q, k, v, { keyPaddingMask: pad }));
    const b = noGrad(() =>
      mha.forward(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), { keyPaddingMask: pad.reshape([1, 6]) }),
    );
    assert.deepEqual(a.output.shape, [4, 8]);
    assert.deepEqual(a.weights?.shape, [4, 6]);
    assertClose(a.output, b.output.reshape([4, 8]), 1e-6, 'unbatched');
  });

  test('gradients wrt query, key and value (finite differences)', () => {
    const mha = new nn.MultiheadAttention(6, 2, { batchFirst: true }).eval();
    const pad = tensor(
      [
        [false, false, false, true],
        [false, false, false, false],
      ],
      [2, 4],
      'bool',
    );
    gradcheck(
      (q, k, v) => mha.forward(q, k, v, { keyPaddingMask: pad, needWeights: false }).output,
      [randn([2, 3, 6]), randn([2, 4, 6]), randn([2, 4, 6])],
      { name: 'MHA q/k/v' },
    );
    gradcheck((x) => mha.forward(x, x, x, { isCausal: true }).output, [randn([2, 3, 6])], {
      name: 'MHA self',
    });
  });

  test('errors name the shapes', () => {
    const mha = new nn.MultiheadAttention(8, 2, { batchFirst: true });
    const x = randn([2, 3, 8]);
    assert.throws(() => mha.forward(x, x, x, { attnMask: randn([3, 4]) }), /attnMask \[3, 4\] must be/);
    assert.throws(() => mha.forward(x, x, x, { keyPaddingMask: randn([3, 3]) }), /keyPaddingMask \[3, 3\]/);
    assert.throws(() => new nn.MultiheadAttention(10, 3), /divisible/);
  });
});
