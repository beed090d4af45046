import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crossEntropy } from '../../src/ops/loss.js';
import { randn, tensor } from '../../src/ops/creation.js';
import { diceCeLoss, diceLoss, oneHot } from '../../src/segment/index.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gradcheck } from '../helpers/gradcheck.js';

/** MONAI's DiceLoss(softmax, to_onehot_y) written out with loops, per (b, c). */
function referenceDice(
  logits: Tensor,
  target: Tensor,
  opts: { includeBackground: boolean; batch: boolean; squared?: boolean },
): number {
  const [B, C, ...spatial] = logits.shape;
  const n = spatial.reduce((a, b) => a * b, 1);
  const p = new Float64Array(B * C * n);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < n; i++) {
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, logits.data[(b * C + c) * n + i]);
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(logits.data[(b * C + c) * n + i] - max);
      for (let c = 0; c < C; c++)
        p[(b * C + c) * n + i] = Math.exp(logits.data[(b * C + c) * n + i] - max) / z;
    }
  }
  const c0 = opts.includeBackground ? 0 : 1;
  const terms: number[] = [];
  const groups = opts.batch ? [[...Array(B).keys()]] : [...Array(B).keys()].map((b) => [b]);
  for (const bs of groups) {
    for (let c = c0; c < C; c++) {
      let inter = 0;
      let ysum = 0;
      let psum = 0;
      for (const b of bs) {
        for (let i = 0; i < n; i++) {
          const y = target.data[b * n + i] === c ? 1 : 0;
          const pv = p[(b * C + c) * n + i];
          inter += pv * y;
          ysum += y;
          psum += opts.squared ? pv * pv : pv;
        }
      }
      terms.push(1 - (2 * inter + 1e-5) / (ysum + psum + 1e-5));
    }
  }
  return terms.reduce((a, b) => a + b, 0) / terms.length;
}

describe('diceLoss', () => {
  const logits = randn([2, 3, 4, 5]);
  const target = new Tensor(
    Int32Array.from({ length: 40 }, (_, i) => (i * 7) % 3),
    [2, 4, 5],
  );

  test('matches the loop reference (background in/out, per sample/batch, squared)', () => {
    for (const includeBackground of [true, false]) {
      for (const batch of [false, true]) {
        const got = diceLoss(logits, target, { includeBackground, batch }).item();
        const want = referenceDice(logits, target, { includeBackground, batch });
        assert.ok(
          Math.abs(got - want) < 1e-5,
          `includeBackground ${includeBackground} batch ${batch}: ${got} vs ${want}`,
        );
      }
    }
    const sq = diceLoss(logits, target, { squaredPred: true }).item();
    assert.ok(
      Math.abs(sq - referenceDice(logits, target, { includeBackground: true, batch: false, squared: true })) <
        1e-5,
    );
  });

  test('confident correct logits give ~0, confident wrong ones ~1; reduction none is (B, C)', () => {
    const oh = oneHot(target, 3);
    const good = new Tensor(
      Float32Array.from(oh.data, (v) => (v ? 30 : -30)),
      oh.shape,
    );
    assert.ok(diceLoss(good, target).item() < 1e-6);
    const bad = new Tensor(
      Float32Array.from(oh.data, (v) => (v ? -30 : 30)),
      oh.shape,
    );
    assert.ok(diceLoss(bad, target).item() > 0.99);
    assert.deepEqual(diceLoss(logits, target, { reduction: 'none' }).shape, [2, 3]);
    assert.deepEqual(
      diceLoss(logits, target, { reduction: 'none', batch: true, includeBackground: false }).shape,
      [2],
    );
  });

  test('3D inputs', () => {
    const x = randn([1, 2, 3, 3, 2]);
    const t = new Tensor(
      Int32Array.from({ length: 18 }, (_, i) => i % 2),
      [1, 3, 3, 2],
    );
    const want = referenceDice(x, t, { includeBackground: true, batch: false });
    assert.ok(Math.abs(diceLoss(x, t).item() - want) < 1e-5);
  });

  test('gradients match finite differences', () => {
    const x = randn([2, 3, 3, 2]);
    const t = new Tensor(
      Int32Array.from({ length: 12 }, (_, i) => (i * 5) % 3),
      [2, 3, 2],
    );
    gradcheck((v) => diceLoss(v, t, { includeBackground: false }), [x], { name: 'diceLoss' });
    gradcheck((v) => diceCeLoss(v, t, { lambdaDice: 0.7, lambdaCe: 1.3 }), [x], { name: 'diceCeLoss' });
  });

  test('diceCeLoss = lambdaDice · dice + lambdaCe · crossEntropy', () => {
    const want = 0.5 * diceLoss(logits, target).item() + 2 * crossEntropy(logits, target).item();
    assert.ok(Math.abs(diceCeLoss(logits, target, { lambdaDice: 0.5, lambdaCe: 2 }).item() - want) < 1e-5);
  });

  test('errors name the shapes', () => {
    assert.throws(
      () => diceLoss(logits, tensor([0, 1])),
      /diceLoss: logits \[2, 3, 4, 5\] need class-index targets of shape \[2, 4, 5\]/,
    );
    assert.throws(
      () => diceLoss(logits, new Tensor(new Int32Array(40).fill(3), [2, 4, 5])),
      /out of range for 3 classes/,
    );
  });
});
