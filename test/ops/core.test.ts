import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, noGrad, randn, tensor } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { gradcheck } from '../helpers/gradcheck.js';

manualSeed(1);
const pos = (shape: number[]) => randn(shape).abs().add(0.5);

describe('elementwise gradients (finite differences)', () => {
  const shapes: Array<[number[], number[]]> = [
    [
      [3, 1, 5],
      [4, 1],
    ],
    [[1], [2, 3]],
    [
      [2, 3],
      [2, 3],
    ],
    [[7], []],
  ];
  for (const [sa, sb] of shapes) {
    for (const op of ['add', 'sub', 'mul', 'div', 'maximum', 'minimum', 'atan2'] as const) {
      test(`${op} ${JSON.stringify(sa)} x ${JSON.stringify(sb)}`, () => {
        const b = op === 'div' ? pos(sb) : randn(sb);
        gradcheck((x, y) => F[op](x, y), [randn(sa), b], { name: op });
      });
    }
  }
  test('pow (both operands)', () => gradcheck((x, y) => F.pow(x, y), [pos([3, 4]), randn([4])]));
  const unary: Array<[string, (x: Tensor) => Tensor, (s: number[]) => Tensor]> = [
    ['exp', F.exp, randn],
    ['log', F.log, pos],
    ['sqrt', F.sqrt, pos],
    ['rsqrt', F.rsqrt, pos],
    ['abs', F.abs, pos],
    ['tanh', F.tanh, randn],
    ['sigmoid', F.sigmoid, randn],
    ['relu', F.relu, pos],
    ['gelu', (x) => F.gelu(x), randn],
    ['gelu tanh', (x) => F.gelu(x, { approximate: 'tanh' }), randn],
    ['silu', F.silu, randn],
    ['erf', F.erf, randn],
    ['softplus', F.softplus, randn],
    ['sin', F.sin, randn],
    ['cos', F.cos, randn],
    ['square', F.square, randn],
    ['reciprocal', F.reciprocal, pos],
    ['log1p', F.log1p, pos],
    ['expm1', F.expm1, randn],
    ['neg', F.neg, randn],
  ];
  for (const [name, f, make] of unary) {
    for (const shape of [[1], [3, 5], [2, 1, 7]]) {
      test(`${name} ${JSON.stringify(shape)}`, () => gradcheck(f, [make(shape)], { name }));
    }
  }
});

describe('reductions, shapes, matmul, softmax, layerNorm gradients', () => {
  const cases: Array<[string, (x: Tensor) => Tensor, number[]]> = [
    ['sum all', (x) => x.sum(), [3, 4]],
    ['sum dims keepdim', (x) => F.sum(x, [0, 2], true), [2, 3, 5]],
    ['mean', (x) => F.mean(x, -1), [4, 7]],
    ['var', (x) => F.variance(x, 1), [3, 5]],
    ['std', (x) => F.std(x, [0]), [6, 2]],
    ['max dim', (x) => F.max(x, 1), [3, 6]],
    ['min all', (x) => F.min(x), [5]],
    ['amax', (x) => F.amax(x, [1, 2]), [2, 3, 4]],
    ['logsumexp', (x) => F.logsumexp(x, 1), [3, 5]],
    ['permute', (x) => x.permute([2, 0, 1]), [2, 3, 4]],
    ['expand', (x) => x.expand([3, 2, 5]), [2, 1]],
    ['slice step', (x) => F.slice(x, 1, 1, 7, 2), [3, 8]],
    ['pad', (x) => F.pad(x, [1, 2, 0, 1], 3), [2, 3]],
    ['pad crop', (x) => F.pad(x, [-1, 1]), [2, 4]],
    ['roll', (x) => F.roll(x, [1, -2], [0, 1]), [3, 5]],
    ['flip', (x) => F.flip(x, [0, 1]), [3, 4]],
    ['repeat', (x) => F.repeat(x, [2, 1, 3]), [2, 3]],
    ['cat/stack', (x) => F.stack([x, F.cat([x.slice(0, 0, 1), x.slice(0, 1)], 0)], 1), [3, 2]],
    ['softmax dim 0', (x) => F.softmax(x, 0), [4, 3]],
    ['softmax last', (x) => F.softmax(x, -1), [2, 1, 9]],
    ['logSoftmax', (x) => F.logSoftmax(x, 1), [3, 5, 2]],
    ['indexSelect', (x) => F.indexSelect(x, 1, tensor([2, 0, 2], [3], 'int64')), [2, 4]],
    [
      'gather',
      (x) =>
        F.gather(
          x,
          1,
          tensor(
            [
              [0, 0],
              [2, 1],
            ],
            [2, 2],
            'int64',
          ),
        ),
      [2, 3],
    ],
    ['where', (x) => F.where(F.gt(x, 0), x, x.mul(3)), [4, 4]],
  ];
  for (const [name, f, shape] of cases) test(name, () => gradcheck(f, [randn(shape)], { name }));
  test('matmul broadcasting shapes', () => {
    for (const [sa, sb] of [
      [
        [3, 4],
        [4, 5],
      ],
      [
        [2, 3, 4],
        [4, 1],
      ],
      [
        [2, 1, 3, 4],
        [5, 4, 2],
      ],
      [[4], [4, 3]],
      [[2, 3, 4], [4]],
    ]) {
      gradcheck((a, b) => F.matmul(a, b), [randn(sa), randn(sb)], { name: `matmul ${sa} @ ${sb}` });
    }
  });
  test('linear with bias', () =>
    gradcheck((x, w, b) => F.linear(x, w, b), [randn([2, 3, 5]), randn([4, 5]), randn([4])]));
  test('layerNorm with affine', () =>
    gradcheck((x, w, b) => F.layerNorm(x, [6], w, b), [randn([3, 6]), randn([6]), randn([6])], {
      rtol: 3e-2,
    }));
  test('layerNorm over two dims, no affine', () =>
    gradcheck((x) => F.layerNorm(x, [2, 3]), [randn([4, 2, 3])]));
});

describe('forward semantics', () => {
  test('matmul matches a hand computation', () => {
    const a = tensor([
      [1, 2],
      [3, 4],
    ]);
    const b = tensor([
      [5, 6],
      [7, 8],
    ]);
    assert.deepEqual(a.matmul(b).toArray(), [
      [19, 22],
      [43, 50],
    ]);
  });
  test('softmax rows sum to one and a fully masked row is NaN like torch', () => {
    const s = F.softmax(
      tensor([
        [1, 2, 3],
        [-Infinity, -Infinity, -Infinity],
      ]),
      -1,
    );
    assertClose(s.slice(0, 0, 1).sum(), tensor([1]), 1e-6);
    assert.ok(Number.isNaN(s.data[3]));
  });
  test('broadcast errors name the op and both shapes', () => {
    assert.throws(() => randn([2, 3]).add(randn([4])), /add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
    assert.throws(
      () => randn([2, 3]).matmul(randn([4, 2])),
      /matmul: inner dimensions differ: \[2, 3\] @ \[4, 2\]/,
    );
    assert.throws(() => randn([2, 3]).reshape([4]), /reshape: cannot reshape \[2, 3\]/);
  });
  test('NaN propagates through max and relu', () => {
    const x = tensor([1, Number.NaN, 3]);
    assert.ok(Number.isNaN(x.max().item()));
    assert.ok(Number.isNaN(F.relu(x).data[1]));
  });
  test('argmax, integer dtypes and comparisons', () => {
    const x = tensor([
      [1, 5, 2],
      [7, 0, 7],
    ]);
    const am = x.argmax(1);
    assert.equal(am.dtype, 'int64');
    assert.deepEqual(am.toArray(), [1, 0]);
    assert.equal(F.gt(x, 2).dtype, 'bool');
    assert.deepEqual(F.maskedFill(x, F.gt(x, 4), -1).toArray(), [
      [1, -1, 2],
      [-1, 0, -1],
    ]);
  });
});

describe('autograd', () => {
  test('gradients accumulate across backward calls and reused tensors', () => {
    const x = tensor([1, 2, 3]).setRequiresGrad();
    x.mul(x).sum().backward();
    assert.deepEqual(Array.from(x.grad!.data), [2, 4, 6]);
    x.mul(2).sum().backward();
    assert.deepEqual(Array.from(x.grad!.data), [4, 6, 8]);
  });
  test('noGrad records nothing and detach cuts the graph', () => {
    const x = randn([3]).setRequiresGrad();
    const y = noGrad(() => x.mul(2));
    assert.equal(y.requiresGrad, false);
    const z = x.detach().mul(2);
    assert.equal(z.requiresGrad, false);
    assert.throws(() => z.sum().backward(), /does not require grad/);
  });
  test('a deep chain does not overflow the stack', () => {
    const x = randn([4]).setRequiresGrad();
    let y = x;
    for (let i = 0; i < 20000; i++) y = y.add(1e-6);
    y.sum().backward();
    assertClose(x.grad!, tensor([1, 1, 1, 1]), 1e-6);
  });
  test('only float tensors may require grad', () => {
    assert.throws(
      () => tensor([1, 2], [2], 'int64').setRequiresGrad(),
      /only float32 tensors can require grad/,
    );
  });
});
