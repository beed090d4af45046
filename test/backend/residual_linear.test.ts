// F.linear's `residual` (the add accumulated by the GEMM, beta = 1) equals the separate add on the js
// and native backends at odd shapes and thread counts, leaves gradients to the unfused ops, and ViT's
// Block gives the same outputs with its residual adds fused (no grad) as unfused (grad recorded). Also:
// weights pre-packed for the native backend fail with a clear error on another backend.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { getBackend, withBackend } from '../../src/backend/backend.js';
import { nativeStatus, prepackForInference, setNativeThreads } from '../../src/backend/native.js';
import { F, manualSeed, noGrad, randn } from '../../src/index.js';
import { Block } from '../../src/models/vit.js';
import { GELU, Mlp } from '../../src/nn/layers.js';
import { Linear } from '../../src/nn/linear.js';
import { Sequential } from '../../src/nn/module.js';
import { assertClose } from '../helpers/assert.js';

const status = nativeStatus();
const backends = status.loaded ? ['js', 'native'] : ['js'];

function blockOf(dim: number, heads: number): Block {
  return new Block(dim, heads, {
    mlpRatio: 2.5,
    qkvBias: true,
    initValues: null,
    projDrop: 0.1,
    attnDrop: 0,
    dropPath: 0.1,
    normEps: 1e-6,
    actLayer: 'gelu',
  });
}

describe('linear with residual', () => {
  const threads0 = status.threads ?? 1;
  after(() => {
    if (status.loaded) setNativeThreads(threads0);
  });

  for (const backend of backends) {
    for (const threads of backend === 'native' ? [1, 3] : [1]) {
      test(`${backend}, ${threads} thread(s): equals residual + linear(x), with and without bias`, () =>
        withBackend(backend, () => {
          if (backend === 'native') setNativeThreads(threads);
          for (const [rows, inF, outF] of [
            [1, 37, 45],
            [13, 64, 96],
            [197, 33, 5],
          ]) {
            manualSeed(rows);
            const x = randn([rows, inF]);
            const w = randn([outF, inF]);
            const b = randn([outF]);
            const r = randn([rows, outF]);
            for (const bias of [b, null]) {
              const expected = F.add(r, F.linear(x, w, bias));
              const fused = noGrad(() => F.linear(x, w, bias, { residual: r }));
              assertClose(fused, expected, 1e-5, `${rows}x${inF}x${outF} bias ${bias !== null}`);
              assert.notEqual(fused.data, r.data, 'a fresh result by default');
              const rCopy = r.clone();
              const inPlace = noGrad(() =>
                F.linear(x, w, bias, { residual: rCopy, overwriteResidual: true }),
              );
              assert.equal(inPlace.data, rCopy.data, 'overwriteResidual accumulates into the residual');
              assertClose(inPlace, expected, 1e-5, 'overwriteResidual');
            }
          }
          // 3-d input, and a residual sharing the input's storage is not overwritten while read.
          const x3 = randn([2, 7, 16]);
          const w3 = randn([16, 16]);
          const expected = F.add(x3, F.linear(x3, w3));
          const y = noGrad(() => F.linear(x3, w3, null, { residual: x3, overwriteResidual: true }));
          assertClose(y, expected, 1e-5, 'residual = input');
        }));
    }
  }

  test('with gradients recorded it is the separate add, with its gradients', () => {
    manualSeed(1);
    const x = randn([5, 6]).setRequiresGrad();
    const w = randn([4, 6]).setRequiresGrad();
    const r = randn([5, 4]).setRequiresGrad();
    const y = F.linear(x, w, null, { residual: r, overwriteResidual: true });
    assert.ok(y.requiresGrad);
    y.mul(y).sum().backward();
    const [gx, gw, gr] = [x.grad, w.grad, r.grad];
    for (const t of [x, w, r]) t.grad = null;
    const y2 = F.add(r, F.linear(x, w));
    assertClose(y, y2, 1e-6, 'value');
    y2.mul(y2).sum().backward();
    assertClose(gx!, x.grad!, 1e-5, 'dx');
    assertClose(gw!, w.grad!, 1e-5, 'dw');
    assertClose(gr!, r.grad!, 1e-5, 'dr');
  });

  test('with an activation too: residual + act(linear(x)), with and without gradients', () => {
    manualSeed(4);
    const x = randn([9, 8]);
    const w = randn([6, 8]);
    const b = randn([6]);
    const r = randn([9, 6]);
    for (const activation of ['gelu', 'relu'] as const) {
      const act = activation === 'gelu' ? F.gelu : F.relu;
      const expected = F.add(r, act(F.linear(x, w, b)));
      assertClose(
        noGrad(() => F.linear(x, w, b, { activation, residual: r })),
        expected,
        1e-5,
        `${activation} no grad`,
      );
      const xg = x.clone().setRequiresGrad();
      const y = F.linear(xg, w, b, { activation, residual: r });
      assert.ok(y.requiresGrad);
      assertClose(y, expected, 1e-5, `${activation} grad`);
    }
  });

  test('a residual of another shape fails with a clear error', () => {
    assert.throws(
      () => noGrad(() => F.linear(randn([3, 4]), randn([5, 4]), null, { residual: randn([5]) })),
      /linear: residual \[5\] does not match the output \[3, 5\]/,
    );
  });

  for (const backend of backends) {
    test(`${backend}: ViT Block and Mlp give the same outputs fused (no grad) and unfused (grad)`, () =>
      withBackend(backend, () => {
        manualSeed(11);
        const blk = blockOf(48, 4);
        blk.eval();
        const x = randn([3, 11, 48]);
        const fused = noGrad(() => blk.forward(x));
        const xg = x.clone().setRequiresGrad();
        const unfused = blk.forward(xg);
        assert.ok(unfused.requiresGrad);
        assertClose(fused, unfused, 1e-5, 'block');
        // With attention maps captured (the permuted path) too; the input is left as it was.
        const maps: ReturnType<typeof randn>[] = [];
        const x0 = x.clone();
        assertClose(
          noGrad(() => blk.forward(x, maps)),
          unfused,
          1e-5,
          'block with attentions',
        );
        assertClose(x, x0, 0, 'input untouched');
        assert.equal(maps.length, 1);
        const mlp = new Mlp(48, { hiddenFeatures: 70 });
        const r = randn([3, 11, 48]);
        assertClose(
          noGrad(() => mlp.forward(x, r)),
          F.add(r, mlp.forward(x)),
          1e-5,
          'mlp residual',
        );
        // Training mode (dropout, drop path active) keeps the unfused ops.
        blk.train();
        manualSeed(5);
        const t1 = noGrad(() => blk.forward(x));
        assert.ok(t1.shape.every((d, i) => d === x.shape[i]));
      }));
  }
});

describe('pre-packed weights on another backend', {
  skip: status.loaded ? false : 'native addon not loaded',
}, () => {
  test('linear and matmul fail with a clear error instead of reading panels', () => {
    assert.equal(getBackend(), 'native');
    manualSeed(2);
    const fc = new Linear(37, 64);
    const model = new Sequential([fc, new GELU(), new Linear(64, 45)]);
    const x = randn([4, 37]);
    const y = noGrad(() => model.forward(x));
    prepackForInference(model);
    assertClose(
      noGrad(() => model.forward(x)),
      y,
      1e-6,
      'native still works',
    );
    assert.throws(
      () => withBackend('js', () => noGrad(() => model.forward(x))),
      /linear: a weight was pre-packed for inference by the 'native' backend \(prepackForInference\) but 'js' is active/,
    );
    assert.throws(
      () => withBackend('js', () => F.matmul(fc.weight, F.transpose(x, 0, 1))),
      /pre-packed for inference by the 'native' backend/,
    );
    assert.throws(
      () => withBackend('js', () => noGrad(() => F.linear(x, fc.weight, null, { residual: randn([4, 64]) }))),
      /linear: a weight was pre-packed/,
    );
  });
});
