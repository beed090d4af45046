// F.linear's fused activation: without gradients the activation runs in the GEMM's epilogue and must equal activation(linear(x)) on every backend; with
// gradients it must be exactly the separate ops, so autograd is unchanged. The native epilogue's GELU
// is checked against the js kernels' exact erf GELU (float64 erf) over the whole range, tails included,
// for every instruction set.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { withBackend } from '../../src/backend/backend.js';
import { jsKernels } from '../../src/backend/js/index.js';
import { nativeKernels, nativeStatus, setNativeIsa } from '../../src/backend/native.js';
import { manualSeed, noGrad, randn } from '../../src/index.js';
import { gelu, relu } from '../../src/ops/elementwise.js';
import { linear } from '../../src/ops/matmul.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';

const status = nativeStatus();
const backends = status.loaded ? ['js', 'native'] : ['js'];

function grads(ts: Tensor[]): Float32Array[] {
  return ts.map((t) => {
    assert.ok(t.grad, 'gradient missing');
    return t.grad.data as Float32Array;
  });
}

describe('linear with a fused activation', () => {
  for (const backend of backends) {
    for (const activation of ['gelu', 'relu'] as const) {
      test(`${backend}: no-grad ${activation} in the epilogue equals ${activation}(linear(x)) on odd shapes`, () => {
        withBackend(backend, () => {
          manualSeed(3);
          for (const [lead, inF, outF] of [
            [[1], 1, 1],
            [[3, 5], 37, 29],
            [[2, 197], 70, 131],
          ] as const) {
            const x = randn([...lead, inF]).mul(3);
            const w = randn([outF, inF]);
            const b = randn([outF]);
            const act = activation === 'gelu' ? gelu : relu;
            const [fused, plain] = noGrad(() => [linear(x, w, b, { activation }), act(linear(x, w, b))]);
            assert.deepEqual(fused.shape, plain.shape);
            assertClose(
              fused.data as Float32Array,
              plain.data as Float32Array,
              1e-5,
              `${lead} ${inF} ${outF}`,
            );
            const noBias = noGrad(() => linear(x, w, null, { activation }));
            assertClose(noBias.data as Float32Array, act(linear(x, w)).data as Float32Array, 1e-5, 'no bias');
          }
        });
      });
    }

    test(`${backend}: with gradients the activation is the separate op (same values and gradients)`, () => {
      withBackend(backend, () => {
        manualSeed(4);
        const [x, w, b] = [randn([4, 9]), randn([6, 9]), randn([6])].map((t) => t.setRequiresGrad());
        const y = linear(x, w, b, { activation: 'gelu' });
        assert.ok(y.requiresGrad, 'the fused path must keep the graph');
        y.mul(y).sum().backward();
        const [x2, w2, b2] = [x, w, b].map((t) => t.detach().setRequiresGrad());
        const y2 = gelu(linear(x2, w2, b2));
        y2.mul(y2).sum().backward();
        assertClose(y.data as Float32Array, y2.data as Float32Array, 1e-6, 'values');
        const [gx, gw, gb] = grads([x, w, b]);
        const [gx2, gw2, gb2] = grads([x2, w2, b2]);
        assertClose(gx, gx2, 1e-6, 'grad x');
        assertClose(gw, gw2, 1e-6, 'grad w');
        assertClose(gb, gb2, 1e-6, 'grad b');
      });
    });
  }

  test('an unknown activation is an error naming it', () => {
    assert.throws(
      () => linear(randn([2, 3]), randn([4, 3]), null, { activation: 'tanh' as 'gelu' }),
      /linear: unknown activation 'tanh'/,
    );
  });
});

describe('native GEMM epilogue GELU vs the exact erf GELU', {
  skip: status.loaded ? false : status.reason,
}, () => {
  const defaultIsa = status.isa ?? 'scalar';
  after(() => setNativeIsa(defaultIsa));
  // c = gelu(a * 1): a column of values through a k = 1 product, from the far negative tail to +10.
  const n = 4001;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = -10 + (20 * i) / (n - 1);
  const one = new Float32Array([1]);
  const expected = new Float32Array(n);
  jsKernels.gemm({ a, b: one, c: expected, batch: 1, m: n, n: 1, k: 1, activation: 'gelu' });
  for (const isa of status.isas ?? []) {
    test(`${isa}: within 1e-6 absolute + relative over [-10, 10]`, () => {
      setNativeIsa(isa);
      const actual = new Float32Array(n);
      nativeKernels!.gemm({ a, b: one, c: actual, batch: 1, m: n, n: 1, k: 1, activation: 'gelu' });
      assertClose(actual, expected, 1e-6, `${isa} gelu`);
      // Near 0 (|x| < 3) GELU's value carries the signal: relative error ~1e-7 there.
      for (let i = 0; i < n; i++) {
        if (Math.abs(a[i]) > 3 || expected[i] === 0) continue;
        const rel = Math.abs(actual[i] - expected[i]) / Math.abs(expected[i]);
        assert.ok(
          rel < 2e-6,
          `${isa}: gelu(${a[i]}) = ${actual[i]}, expected ${expected[i]} (relative ${rel})`,
        );
      }
    });
  }
});
