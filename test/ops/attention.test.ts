import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attention, attentionBackward } from '../../src/backend/js/attention.js';
import { hasOwnKernel, kernels } from '../../src/backend/backend.js';
import { F, listBackends, manualSeed, noGrad, randn, tensor, withBackend } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { gradcheck } from '../helpers/gradcheck.js';

manualSeed(3);

/** softmax(q k^T * scale + mask) v from plain ops: the definition the fused path must match. */
function reference(q: Tensor, k: Tensor, v: Tensor, additive: Tensor | null, scale: number): Tensor {
  let s = F.mul(F.matmul(q, k.transpose(-2, -1)), scale);
  if (additive) s = F.add(s, additive);
  return F.matmul(F.softmax(s, -1), v);
}

const causal = (n: number, m: number) =>
  F.where(F.ge(F.arange(n).reshape([n, 1]), F.arange(m)), 0, -Infinity);

describe('scaledDotProductAttention forward', () => {
  test('matches the composed definition: 4-D, 3-D and 2-D inputs, float and bool masks', () => {
    const cases: Array<[number[], number[], number[] | null]> = [
      [
        [2, 3],
        [2, 3],
        [1, 3, 5, 7],
      ],
      [[4], [4], [5, 7]],
      [[], [], null],
      [
        [2, 3],
        [2, 1],
        [2, 1, 1, 7],
      ],
    ];
    for (const [qLead, kvLead, maskShape] of cases) {
      const q = randn([...qLead, 5, 4]);
      const k = randn([...kvLead, 7, 4]);
      const v = randn([...kvLead, 7, 6]);
      const mask = maskShape ? randn(maskShape) : null;
      const got = noGrad(() => F.scaledDotProductAttention(q, k, v, { attnMask: mask }));
      assertClose(got, reference(q, k, v, mask, 0.5), 1e-5, `lead ${qLead}/${kvLead}`);
      const keep = F.gt(randn([5, 7]), -1);
      const withBool = noGrad(() => F.scaledDotProductAttention(q, k, v, { attnMask: keep, scale: 0.3 }));
      assertClose(withBool, reference(q, k, v, F.where(keep, 0, -Infinity), 0.3), 1e-5, 'bool mask');
    }
  });

  test('masks that broadcast over keys or have more than two leading dims are honoured', () => {
    const q = randn([2, 2, 2, 3, 4]);
    const k = randn([2, 2, 2, 5, 4]);
    const v = randn([2, 2, 2, 5, 4]);
    const perQuery = randn([3, 1]);
    const perHead = randn([2, 1, 2, 1, 5]);
    for (const m of [perQuery, perHead]) {
      const got = noGrad(() => F.scaledDotProductAttention(q, k, v, { attnMask: m }));
      assertClose(got, reference(q, k, v, m, 0.5), 1e-5, `mask ${m.shape}`);
    }
  });

  test('causal: the first query attends only to the first key (top-left aligned for Nq != Nk)', () => {
    const q = randn([1, 2, 4, 3]);
    const k = randn([1, 2, 6, 3]);
    const v = randn([1, 2, 6, 3]);
    const { output, probs } = noGrad(() =>
      F.scaledDotProductAttention(q, k, v, { isCausal: true, returnProbs: true }),
    );
    for (let h = 0; h < 2; h++) {
      assert.equal(probs.data[h * 24], 1);
      for (let c = 0; c < 3; c++) assert.ok(Math.abs(output.data[h * 12 + c] - v.data[h * 18 + c]) < 1e-6);
      for (let i = 0; i < 4; i++)
        for (let j = i + 1; j < 6; j++) assert.equal(probs.data[h * 24 + i * 6 + j], 0);
    }
    assertClose(output, reference(q, k, v, causal(4, 6), 1 / Math.sqrt(3)), 1e-5, 'causal');
    const both = noGrad(() =>
      F.scaledDotProductAttention(q, k, v, { isCausal: true, attnMask: randn([4, 6]).abs() }),
    );
    assert.equal(both.shape.length, 4);
  });

  test('a query with every key masked gets zero probabilities and output (torch SDPA), not NaN', () => {
    const q = randn([1, 1, 3, 4]);
    const k = randn([1, 1, 5, 4]);
    const v = randn([1, 1, 5, 2]);
    const keep = tensor(
      [
        [true, true, false, true, true],
        [false, false, false, false, false],
        [true, false, false, false, false],
      ],
      [3, 5],
      'bool',
    );
    const fused = noGrad(() => F.scaledDotProductAttention(q, k, v, { attnMask: keep, returnProbs: true }));
    for (let j = 0; j < 5; j++) assert.equal(fused.probs.data[5 + j], 0);
    assert.deepEqual(Array.from(fused.output.data.slice(2, 4)), [0, 0]);
    assertClose(fused.output.slice(2, 2, 3), v.slice(2, 0, 1), 1e-6, 'single allowed key');
    // the composed path (probabilities on the graph) agrees, with finite gradients
    const qg = q.cloneData().setRequiresGrad();
    const composed = F.scaledDotProductAttention(qg, k, v, { attnMask: keep, returnProbs: true });
    assertClose(composed.output, fused.output, 1e-6, 'composed vs fused');
    assertClose(composed.probs, fused.probs, 1e-6, 'composed probs');
    composed.output.sum().backward();
    assert.ok(Array.from((qg.grad as Tensor).data).every(Number.isFinite));
    assert.deepEqual(Array.from((qg.grad as Tensor).data.slice(4, 8)), [0, 0, 0, 0]);
  });

  test('returnProbs: probabilities sum to one per query and reproduce the output', () => {
    const q = randn([2, 3, 4]);
    const k = randn([2, 5, 4]);
    const v = randn([2, 5, 3]);
    const { output, probs } = noGrad(() => F.scaledDotProductAttention(q, k, v, { returnProbs: true }));
    assertClose(F.sum(probs, -1), F.ones([2, 3]), 1e-6, 'row sums');
    assertClose(F.matmul(probs, v), output, 1e-6, 'probs @ v');
  });

  test('bad shapes and dtypes give one clear error', () => {
    assert.throws(
      () => F.scaledDotProductAttention(randn([2, 3, 4]), randn([2, 5, 3]), randn([2, 5, 3])),
      /scaledDotProductAttention: expected q \(\.\.\., Nq, D\)/,
    );
    assert.throws(
      () =>
        F.scaledDotProductAttention(randn([3, 4]), randn([5, 4]), randn([5, 4]), { attnMask: randn([3, 4]) }),
      /attnMask \[3, 4\] does not broadcast/,
    );
    assert.throws(
      () =>
        F.scaledDotProductAttention(randn([3, 4]), randn([5, 4]), randn([5, 4]), {
          attnMask: F.arange(5, undefined, 1, 'int32'),
        }),
      /must be bool/,
    );
  });
});

describe('scaledDotProductAttention gradients (finite differences)', () => {
  const shapes = (): Tensor[] => [randn([2, 2, 3, 4]), randn([2, 2, 5, 4]), randn([2, 2, 5, 3])];
  test('no mask', () =>
    gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v), shapes(), { name: 'sdpa' }));
  test('additive mask', () => {
    const mask = randn([2, 1, 3, 5]);
    gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v, { attnMask: mask }), shapes(), {
      name: 'sdpa float mask',
    });
  });
  test('a float mask that requires grad (a learned bias) gets its gradient summed over broadcast dims', () => {
    gradcheck(
      (q, k, v, bias) => F.scaledDotProductAttention(q, k, v, { attnMask: bias }),
      [...shapes(), randn([1, 2, 3, 5])],
      { name: 'sdpa learned bias' },
    );
  });
  test('bool mask with a fully masked row', () => {
    const keep = tensor(
      [
        [true, false, true, true, false],
        [false, false, false, false, false],
        [true, true, true, true, true],
      ],
      [3, 5],
      'bool',
    );
    gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v, { attnMask: keep }), shapes(), {
      name: 'sdpa bool mask',
    });
  });
  test('causal, on the fused and on the composed (returnProbs) path', () => {
    gradcheck((q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true }), shapes(), {
      name: 'sdpa causal',
    });
    gradcheck(
      (q, k, v) => F.scaledDotProductAttention(q, k, v, { isCausal: true, returnProbs: true }).output,
      shapes(),
      {
        name: 'sdpa causal composed',
      },
    );
  });
  test('broadcast key/value heads receive summed gradients', () => {
    gradcheck(
      (q, k, v) => F.scaledDotProductAttention(q, k, v, { scale: 0.7 }),
      [randn([2, 3, 4, 4]), randn([2, 1, 5, 4]), randn([2, 1, 5, 2])],
      { name: 'sdpa broadcast kv' },
    );
  });
  test('dropout on the probabilities (fixed seed)', () => {
    gradcheck(
      (q, k, v) => {
        manualSeed(21);
        return F.scaledDotProductAttention(q, k, v, { dropoutP: 0.3 });
      },
      shapes(),
      { name: 'sdpa dropout' },
    );
  });
  test('probabilities returned on the graph take gradients (retainGrad)', () => {
    const [q, k, v] = shapes().map((t) => t.setRequiresGrad());
    const { output, probs } = F.scaledDotProductAttention(q, k, v, { returnProbs: true });
    probs.retainGrad();
    const g = randn(output.shape);
    output.backward(g);
    // d(sum(out * g))/d(probs) = g @ v^T
    assertClose(probs.grad as Tensor, F.matmul(g, v.transpose(-2, -1)), 1e-5, 'grad wrt probs');
  });
});

describe('attention kernel (js reference)', () => {
  test('backward from stored probabilities equals backward with recomputation', () => {
    const [B, H, nq, nk, d, dv] = [2, 3, 4, 6, 5, 3];
    const rnd = (n: number) => randn([n]).data as Float32Array;
    const args = {
      q: rnd(B * H * nq * d),
      k: rnd(B * H * nk * d),
      v: rnd(B * H * nk * dv),
      out: new Float32Array(B * H * nq * dv),
      batch: B,
      heads: H,
      nq,
      nk,
      d,
      dv,
      scale: 0.4,
      mask: rnd(H * nq * nk),
      maskStrides: [0, nq * nk, nk] as [number, number, number],
      causal: true,
      probs: new Float32Array(B * H * nq * nk),
    };
    attention(args);
    const gradOut = rnd(B * H * nq * dv);
    const grads = () => ({
      gq: new Float32Array(args.q.length),
      gk: new Float32Array(args.k.length),
      gv: new Float32Array(args.v.length).fill(7), // overwritten, not accumulated
    });
    const a = grads();
    const b = grads();
    attentionBackward({ ...args, gradOut, ...a });
    attentionBackward({ ...args, probs: undefined, gradOut, ...b });
    assertClose(a.gq, b.gq, 1e-6, 'gq');
    assertClose(a.gk, b.gk, 1e-6, 'gk');
    assertClose(a.gv, b.gv, 1e-6, 'gv');
  });
});

describe('attention kernels of other backends against js', () => {
  const others = listBackends().filter(
    (name) => name !== 'js' && withBackend(name, () => hasOwnKernel('attention')),
  );
  const skip = others.length === 0 ? 'no backend other than js implements attention' : false;
  test('forward (with probabilities) and backward on odd shapes, masks and causal', { skip }, () => {
    const rnd = (n: number) => randn([n]).data as Float32Array;
    const shapes = [
      [1, 1, 1, 1, 1, 1],
      [2, 3, 5, 7, 9, 3],
      [1, 2, 17, 33, 64, 64],
      [3, 1, 13, 13, 8, 5],
    ];
    for (const name of others) {
      for (const [batch, heads, nq, nk, d, dv] of shapes) {
        for (const variant of ['plain', 'mask', 'causal'] as const) {
          const base = {
            q: rnd(batch * heads * nq * d),
            k: rnd(batch * heads * nk * d),
            v: rnd(batch * heads * nk * dv),
            batch,
            heads,
            nq,
            nk,
            d,
            dv,
            scale: 1 / Math.sqrt(d),
            mask: variant === 'mask' ? rnd(batch * nq * nk) : undefined,
            maskStrides: variant === 'mask' ? ([nq * nk, 0, nk] as [number, number, number]) : undefined,
            causal: variant === 'causal',
          };
          const run = (backend: string) =>
            withBackend(backend, () => {
              const args = {
                ...base,
                out: new Float32Array(batch * heads * nq * dv),
                probs: new Float32Array(batch * heads * nq * nk),
              };
              kernels().attention(args);
              const grads = {
                gradOut: new Float32Array(args.out.length).fill(0.5),
                gq: new Float32Array(base.q.length),
                gk: new Float32Array(base.k.length),
                gv: new Float32Array(base.v.length),
              };
              kernels().attentionBackward({ ...args, probs: undefined, ...grads });
              return { out: args.out, probs: args.probs, ...grads };
            });
          const ref = run('js');
          const got = run(name);
          const what = `${name} ${variant} [${batch}, ${heads}, ${nq}, ${nk}, ${d}, ${dv}]`;
          for (const key of ['out', 'probs', 'gq', 'gk', 'gv'] as const) {
            assertClose(got[key], ref[key], 1e-4, `${what} ${key}`);
          }
        }
      }
    }
  });
});
