import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, nn, noGrad, randn, tensor } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { gradcheck } from '../helpers/gradcheck.js';

manualSeed(5);

describe('dropout', () => {
  test('p = 0 and training = false are the identity (same tensor)', () => {
    const x = randn([4, 5]);
    assert.equal(F.dropout(x, 0), x);
    assert.equal(F.dropout(x, 0.7, false), x);
    const m = new nn.Dropout(0.5).eval();
    assert.equal(m.forward(x), x);
  });

  test('drops about p of the elements and scales survivors by 1/(1-p); gradient follows the mask', () => {
    const x = F.ones([20000]).setRequiresGrad();
    const y = F.dropout(x, 0.25);
    let zeros = 0;
    for (const v of y.data) {
      if (v === 0) zeros++;
      else assert.ok(Math.abs(v - 1 / 0.75) < 1e-6);
    }
    assert.ok(Math.abs(zeros / 20000 - 0.25) < 0.02, `dropped fraction ${zeros / 20000}`);
    y.sum().backward();
    assertClose(x.grad as Tensor, y, 0, 'grad equals the scaled mask');
    assert.ok(Array.from(F.dropout(randn([5]), 1).data).every((v) => v === 0));
    assert.throws(() => F.dropout(x, 1.5), /dropout: probability must be in \[0, 1\], got 1.5/);
  });
});

describe('dropPath', () => {
  test('identity when not training or p = 0 (timm defaults: training false)', () => {
    const x = randn([3, 4]);
    assert.equal(F.dropPath(x, 0.5), x);
    assert.equal(F.dropPath(x, 0, true), x);
    assert.equal(new nn.DropPath(0.3).eval().forward(x), x);
  });

  test('drops whole samples and keeps the expected value', () => {
    const x = F.full([4000, 2, 3], 2);
    const y = F.dropPath(x, 0.3, true);
    let kept = 0;
    for (let b = 0; b < 4000; b++) {
      const vals = Array.from(y.data.slice(b * 6, (b + 1) * 6));
      assert.ok(
        vals.every((v) => v === vals[0]),
        'a sample is kept or dropped as a whole',
      );
      if (vals[0] !== 0) {
        kept++;
        assert.ok(Math.abs(vals[0] - 2 / 0.7) < 1e-5);
      }
    }
    const mean = F.mean(y).item();
    assert.ok(Math.abs(mean - 2) < 0.1, `mean ${mean} should stay near 2`);
    assert.ok(Math.abs(kept / 4000 - 0.7) < 0.03);
    const unscaled = F.dropPath(x, 0.3, true, false);
    assert.ok(
      Array.from(unscaled.data).every((v) => v === 0 || v === 2),
      'scaleByKeep false keeps values',
    );
  });
});

describe('embedding', () => {
  test('looks up rows, shapes (...indices, dim)', () => {
    const w = randn([5, 3]);
    const idx = tensor(
      [
        [4, 0],
        [2, 2],
      ],
      [2, 2],
      'int64',
    );
    const y = F.embedding(idx, w);
    assert.deepEqual(y.shape, [2, 2, 3]);
    assertClose(
      y.slice(1, 0, 1).reshape([2, 3]),
      F.indexSelect(w, 0, tensor([4, 2], [2], 'int64')),
      0,
      'rows',
    );
    assert.throws(() => F.embedding(tensor([5], [1], 'int64'), w), /index 5 out of range for 5 embeddings/);
    assert.throws(() => F.embedding(tensor([1]), w), /indices must be int32\/int64/);
  });

  test('gradient wrt weight (finite differences); repeated indices accumulate; paddingIdx gets none', () => {
    const idx = tensor([1, 3, 1, 0, 3, 3], [2, 3], 'int32');
    gradcheck((w) => F.embedding(idx, w), [randn([4, 5])], { name: 'embedding' });
    const w = randn([4, 2]).setRequiresGrad();
    F.embedding(idx, w, { paddingIdx: -1 }).sum().backward();
    assert.deepEqual(Array.from((w.grad as Tensor).data), [1, 1, 2, 2, 0, 0, 0, 0]);
  });

  test('nn.Embedding: weight named like torch, padding row zeroed at init', () => {
    const e = new nn.Embedding(6, 4, { paddingIdx: 2 });
    assert.deepEqual([...e.stateDict().keys()], ['weight']);
    assert.deepEqual(Array.from(e.weight.data.slice(8, 12)), [0, 0, 0, 0]);
    const y = e.forward(tensor([2, 5], [2], 'int64'));
    assertClose(y.slice(0, 1, 2).reshape([4]), e.weight.slice(0, 5, 6).reshape([4]), 0, 'row 5');
  });
});

describe('LayerScale, Mlp, activations', () => {
  test('LayerScale: gamma (timm name) starts at initValues; gradients wrt input and gamma', () => {
    const ls = new nn.LayerScale(4, 0.1);
    assert.deepEqual([...ls.stateDict().keys()], ['gamma']);
    assert.deepEqual(Array.from(ls.gamma.data), [0.1, 0.1, 0.1, 0.1].map(Math.fround));
    ls.gamma.data.set([0.5, -1, 2, 0.3]);
    gradcheck((x) => ls.forward(x), [randn([3, 4])], { name: 'LayerScale x' });
    const x0 = randn([3, 4]);
    gradcheck(() => ls.forward(x0), [ls.gamma], { name: 'LayerScale gamma' });
  });

  test('Mlp: timm names, hidden/out features, bias and norm options', () => {
    const mlp = new nn.Mlp(6, { hiddenFeatures: 10, outFeatures: 3 });
    assert.deepEqual([...mlp.stateDict().keys()], ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    assert.ok(mlp.norm instanceof nn.Identity);
    const noBias = new nn.Mlp(6, { bias: [true, false], normLayer: (d) => new nn.LayerNorm(d) });
    assert.deepEqual(
      [...noBias.stateDict().keys()],
      ['fc1.weight', 'fc1.bias', 'norm.weight', 'norm.bias', 'fc2.weight'],
    );
    const x = randn([2, 6]);
    const expected = noGrad(() => mlp.fc2.forward(F.gelu(mlp.fc1.forward(x))));
    assertClose(
      noGrad(() => mlp.forward(x)),
      expected,
      1e-6,
      'fc1 → GELU → fc2',
    );
    assert.deepEqual(mlp.forward(randn([4, 5, 6])).shape, [4, 5, 3]);
  });

  test('Mlp gradients (finite differences) wrt input and fc1 weight', () => {
    const mlp = new nn.Mlp(4, { hiddenFeatures: 7, actLayer: () => new nn.SiLU() }).eval();
    gradcheck((x) => mlp.forward(x), [randn([3, 4])], { name: 'Mlp x' });
    const x0 = randn([3, 4]);
    gradcheck(() => mlp.forward(x0), [mlp.fc1.weight], { name: 'Mlp fc1.weight' });
  });

  test('activation modules are the functional ops', () => {
    const x = randn([3, 5]);
    const pairs: Array<[{ forward(x: Tensor): Tensor }, Tensor]> = [
      [new nn.GELU(), F.gelu(x)],
      [new nn.GELU({ approximate: 'tanh' }), F.gelu(x, { approximate: 'tanh' })],
      [new nn.ReLU(), F.relu(x)],
      [new nn.SiLU(), F.silu(x)],
      [new nn.Tanh(), F.tanh(x)],
      [new nn.Sigmoid(), F.sigmoid(x)],
    ];
    for (const [m, y] of pairs) assertClose(m.forward(x), y, 0, m.constructor.name);
    assert.throws(
      () => assertClose(new nn.GELU({ approximate: 'tanh' }).forward(x), F.gelu(x), 1e-7),
      /differ/,
    );
  });
});
