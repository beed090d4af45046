import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { leakyRelu as fusedLeakyRelu } from '../../src/ops/elementwise.js';
import { randn, tensor } from '../../src/ops/creation.js';
import { add, leakyRelu, mul } from '../../src/ops/elementwise.js';
import { sum } from '../../src/ops/reduce.js';
import { crossEntropy } from '../../src/ops/loss.js';
import { diceCeLoss, diceLoss } from '../../src/segment/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gradcheck } from '../helpers/gradcheck.js';

/** Value and input gradient of `f` at a fresh leaf copy of `x`. */
function valueAndGrad(f: (v: Tensor) => Tensor, x: Tensor): { value: number; grad: Float32Array } {
  const leaf = new Tensor(Float32Array.from(x.data as Float32Array), x.shape);
  leaf.requiresGrad = true;
  const y = f(leaf);
  y.backward();
  return { value: y.item(), grad: leaf.grad?.data as Float32Array };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('diceCeLoss (fused)', () => {
  const logits = mul(randn([3, 4, 5, 6]), 2);
  const target = new Tensor(
    Int32Array.from({ length: 90 }, (_, i) => (i * 7 + Math.floor(i / 11)) % 4),
    [3, 5, 6],
  );
  const weight = tensor([0.5, 1, 2, 1.5]);

  test('value and gradient equal the composed diceLoss + crossEntropy for every option', () => {
    for (const batch of [false, true]) {
      for (const includeBackground of [true, false]) {
        for (const squaredPred of [false, true]) {
          for (const ceWeight of [null, weight]) {
            const dice = { batch, includeBackground, squaredPred };
            const composed = (v: Tensor) =>
              add(
                mul(diceLoss(v, target, dice), 0.7),
                mul(crossEntropy(v, target, { weight: ceWeight }), 1.3),
              );
            const fused = (v: Tensor) =>
              diceCeLoss(v, target, { ...dice, ceWeight, lambdaDice: 0.7, lambdaCe: 1.3 });
            const want = valueAndGrad(composed, logits);
            const got = valueAndGrad(fused, logits);
            const what = `batch ${batch} background ${includeBackground} squared ${squaredPred} weight ${ceWeight !== null}`;
            assert.ok(Math.abs(got.value - want.value) < 1e-5, `${what}: ${got.value} vs ${want.value}`);
            assert.ok(
              maxAbsDiff(got.grad, want.grad) < 1e-6,
              `${what}: gradients differ by ${maxAbsDiff(got.grad, want.grad)}`,
            );
          }
        }
      }
    }
  });

  test('gradients match finite differences (3D, batch Dice, class weights)', () => {
    const x = randn([2, 3, 2, 3, 2]);
    const t = new Tensor(
      Int32Array.from({ length: 24 }, (_, i) => (i * 5) % 3),
      [2, 2, 3, 2],
    );
    gradcheck((v) => diceCeLoss(v, t, { batch: true, ceWeight: tensor([1, 2, 0.5]) }), [x], {
      name: 'diceCeLoss',
    });
  });

  test('rejects targets out of range and class weights of the wrong size', () => {
    assert.throws(
      () => diceCeLoss(logits, new Tensor(new Int32Array(90).fill(4), [3, 5, 6])),
      /diceCeLoss: target 4 at position 0 is out of range for 4 classes/,
    );
    assert.throws(() => diceCeLoss(logits, target, { ceWeight: tensor([1, 2]) }), /ceWeight must be \(4,\)/);
  });
});

describe('fusedLeakyRelu', () => {
  test('equals F.leakyRelu forward and backward', () => {
    const x = randn([2, 3, 4, 5]);
    const upstream = randn([2, 3, 4, 5]);
    for (const slope of [0.01, 0.2]) {
      const want = valueAndGrad((v) => sum(mul(leakyRelu(v, slope), upstream)), x);
      const got = valueAndGrad((v) => sum(mul(fusedLeakyRelu(v, slope), upstream)), x);
      assert.ok(Math.abs(got.value - want.value) < 1e-4);
      assert.ok(maxAbsDiff(got.grad, want.grad) < 1e-7);
    }
  });

  test('gradients match finite differences', () => {
    gradcheck((v) => fusedLeakyRelu(v, 0.1), [randn([3, 4])], { name: 'fusedLeakyRelu' });
  });
});
