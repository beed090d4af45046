import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { F, manualSeed, nn, noGrad, rand, randint, randn, tensor } from '../../src/index.js';
import type { Reduction } from '../../src/ops/loss.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { get, loadFixture, tolerance } from '../helpers/fixtures.js';
import { gradcheck } from '../helpers/gradcheck.js';
import { reference } from './torch_reference.js';

manualSeed(7);
const REDUCTIONS: Reduction[] = ['none', 'sum', 'mean'];

/** Class indices in [0, classes) with `ignoreIndex` at every `every`-th position. */
function indexTarget(shape: number[], classes: number, ignoreIndex?: number, every = 4): Tensor {
  const t = randint(0, classes, shape);
  if (ignoreIndex !== undefined) for (let i = 1; i < t.size; i += every) t.data[i] = ignoreIndex;
  return t;
}

function probTarget(shape: number[]): Tensor {
  return noGrad(() => F.softmax(randn(shape).mul(2), 1));
}

/** input and target apart by 0.15..2.5 in magnitude, at least 0.05 away from |d| = kink. */
function separated(shape: number[], kink: number): [Tensor, Tensor] {
  const target = randn(shape);
  const d = rand(shape);
  for (let i = 0; i < d.size; i++) {
    let v = 0.15 + 2.35 * d.data[i];
    if (Math.abs(v - kink) < 0.05) v = kink + 0.1;
    d.data[i] = i % 2 ? v : -v;
  }
  return [noGrad(() => target.add(d)), target];
}

describe('loss parity with torch (test/fixtures/torch/torch_losses)', () => {
  const m = loadFixture('torch/torch_losses.io.safetensors');
  const tol = tolerance('torch', 'torch_losses');
  test('crossEntropy with labelSmoothing 0.1 and its gradient', () => {
    const x = get(m, 'ce.logits').cloneData().setRequiresGrad();
    const loss = F.crossEntropy(x, get(m, 'ce.target'), { labelSmoothing: 0.1 });
    assertClose(loss.reshape([1]), get(m, 'ce.label_smoothing0.1'), tol, 'ce');
    loss.backward();
    assertClose(x.grad as Tensor, get(m, 'ce.grad.logits'), tol, 'ce grad');
  });
  test('l1Loss mean', () => {
    assertClose(F.l1Loss(get(m, 'l1.a'), get(m, 'l1.b')).reshape([1]), get(m, 'l1.mean'), tol, 'l1');
  });
  test('binaryCrossEntropyWithLogits mean', () => {
    const loss = F.binaryCrossEntropyWithLogits(get(m, 'bce.logits'), get(m, 'bce.target'));
    assertClose(loss.reshape([1]), get(m, 'bce.mean'), tol, 'bce');
  });
  // The fixture's generalized_box_iou_loss cases are checked with the box ops in test/vision/boxes.test.ts.
});

describe('loss parity with torch (test/ops/loss_reference.json: weights, ignoreIndex, probabilities)', () => {
  const tol = 1e-5;
  test('crossEntropy: class weights + ignoreIndex + labelSmoothing, every reduction and the mean gradient', () => {
    const r = reference('ce_index_weighted');
    const x = r.f('logits').setRequiresGrad();
    const opts = { weight: r.f('weight'), labelSmoothing: r.n('smoothing') };
    const mean = F.crossEntropy(x, r.i('target'), opts);
    assertClose(mean, r.f('mean'), tol, 'mean');
    assertClose(F.crossEntropy(x, r.i('target'), { ...opts, reduction: 'sum' }), r.f('sum'), tol, 'sum');
    assertClose(F.crossEntropy(x, r.i('target'), { ...opts, reduction: 'none' }), r.f('none'), tol, 'none');
    mean.backward();
    assertClose(x.grad as Tensor, r.f('grad_mean'), tol, 'grad');
  });
  test('crossEntropy: smoothing with ignored positions averages over the non-ignored ones', () => {
    const r = reference('ce_index_ignore_smoothing');
    const loss = F.crossEntropy(r.f('logits'), r.i('target'), { labelSmoothing: r.n('smoothing') });
    assertClose(loss, r.f('mean'), tol, 'mean');
  });
  test('crossEntropy: (N, C, H, W) segmentation with ignoreIndex 255 and weights', () => {
    const r = reference('ce_segmentation');
    const x = r.f('logits').setRequiresGrad();
    const loss = F.crossEntropy(x, r.i('target'), {
      weight: r.f('weight'),
      ignoreIndex: r.n('ignore_index'),
      labelSmoothing: r.n('smoothing'),
    });
    assertClose(loss, r.f('mean'), tol, 'mean');
    loss.backward();
    assertClose(x.grad as Tensor, r.f('grad_mean'), tol, 'grad');
  });
  test('crossEntropy: probability targets with weights and smoothing', () => {
    const r = reference('ce_probs');
    const x = r.f('logits').setRequiresGrad();
    const opts = { weight: r.f('weight'), labelSmoothing: r.n('smoothing') };
    const loss = F.crossEntropy(x, r.f('target'), opts);
    assertClose(loss, r.f('mean'), tol, 'mean');
    assertClose(F.crossEntropy(x, r.f('target'), { ...opts, reduction: 'none' }), r.f('none'), tol, 'none');
    loss.backward();
    assertClose(x.grad as Tensor, r.f('grad_mean'), tol, 'grad');
  });
  test('crossEntropy: unbatched (C,) logits with a scalar target', () => {
    const r = reference('ce_unbatched');
    assertClose(F.crossEntropy(r.f('logits'), r.i('target')), r.f('value'), tol, 'value');
  });
  test('nllLoss with weights and ignoreIndex', () => {
    const r = reference('nll');
    const opts = { weight: r.f('weight') };
    assertClose(F.nllLoss(r.f('input'), r.i('target'), opts), r.f('mean'), tol, 'mean');
    assertClose(
      F.nllLoss(r.f('input'), r.i('target'), { ...opts, reduction: 'sum' }),
      r.f('sum'),
      tol,
      'sum',
    );
  });
  test('binaryCrossEntropyWithLogits with weight and posWeight', () => {
    const r = reference('bce_logits');
    const x = r.f('input').setRequiresGrad();
    const opts = { weight: r.f('weight'), posWeight: r.f('pos_weight') };
    const loss = F.binaryCrossEntropyWithLogits(x, r.f('target'), opts);
    assertClose(loss, r.f('mean'), tol, 'mean');
    const none = F.binaryCrossEntropyWithLogits(x, r.f('target'), { ...opts, reduction: 'none' });
    assertClose(none, r.f('none'), tol, 'none');
    loss.backward();
    assertClose(x.grad as Tensor, r.f('grad_mean'), tol, 'grad');
  });
  test('binaryCrossEntropy clamps log at -100 for probabilities 0 and 1', () => {
    const r = reference('bce');
    const loss = F.binaryCrossEntropy(r.f('input'), r.f('target'), { reduction: 'none' });
    assertClose(loss, r.f('none'), tol, 'none');
  });
  test('mseLoss, l1Loss sum, smoothL1Loss beta 0.5, huberLoss delta 0.7', () => {
    const r = reference('regression');
    const [a, b] = [r.f('a'), r.f('b')];
    assertClose(F.mseLoss(a, b), r.f('mse'), tol, 'mse');
    assertClose(F.l1Loss(a, b, { reduction: 'sum' }), r.f('l1_sum'), tol, 'l1 sum');
    assertClose(F.smoothL1Loss(a, b, { beta: 0.5, reduction: 'none' }), r.f('smooth_l1'), tol, 'smooth l1');
    assertClose(F.huberLoss(a, b, { delta: 0.7 }), r.f('huber'), tol, 'huber');
  });
  test('klDiv batchmean, mean (with a zero target) and logTarget', () => {
    const r = reference('kl_div');
    assertClose(
      F.klDiv(r.f('input'), r.f('target'), { reduction: 'batchmean' }),
      r.f('batchmean'),
      tol,
      'bm',
    );
    assertClose(F.klDiv(r.f('input'), r.f('target')), r.f('mean'), tol, 'mean');
    const lt = F.klDiv(r.f('input'), r.f('log_target_input'), { reduction: 'sum', logTarget: true });
    assertClose(lt, r.f('log_target'), tol, 'log target');
  });
  test('cosineSimilarity with broadcasting, normalize p=2 and p=1', () => {
    const r = reference('similarity');
    assertClose(F.cosineSimilarity(r.f('x1'), r.f('x2')), r.f('cosine'), tol, 'cosine');
    assertClose(F.normalize(r.f('v')), r.f('normalize_p2'), tol, 'p2');
    assertClose(F.normalize(r.f('v'), { p: 1, dim: 2 }), r.f('normalize_p1_dim2'), tol, 'p1');
  });
});

describe('loss gradients (finite differences)', () => {
  for (const reduction of REDUCTIONS) {
    test(`crossEntropy index targets, weights + ignoreIndex + smoothing, ${reduction}`, () => {
      const t = indexTarget([7], 5, -100, 3);
      const weight = rand([5]).add(0.2);
      gradcheck((x) => F.crossEntropy(x, t, { weight, labelSmoothing: 0.1, reduction }), [randn([7, 5])], {
        name: 'ce',
      });
    });
    test(`crossEntropy probability targets (grad wrt input and target), weights + smoothing, ${reduction}`, () => {
      const weight = rand([5]).add(0.2);
      gradcheck(
        (x, t) => F.crossEntropy(x, t, { weight, labelSmoothing: 0.2, reduction }),
        [randn([3, 5]), probTarget([3, 5])],
        { name: 'ce probs' },
      );
    });
    test(`nllLoss weights + ignoreIndex, ${reduction}`, () => {
      const t = indexTarget([2, 3], 4, 9, 4);
      const weight = rand([4]).add(0.2);
      gradcheck((x) => F.nllLoss(x, t, { weight, ignoreIndex: 9, reduction }), [randn([2, 4, 3])], {
        name: 'nll',
      });
    });
    test(`binaryCrossEntropyWithLogits weight + posWeight (input and target), ${reduction}`, () => {
      const weight = rand([3, 1]).add(0.5);
      const posWeight = rand([5]).mul(3);
      gradcheck(
        (x, t) => F.binaryCrossEntropyWithLogits(x, t, { weight, posWeight, reduction }),
        [randn([3, 5]).mul(3), rand([3, 5])],
        { name: 'bce logits' },
      );
    });
    test(`binaryCrossEntropy weight (input and target), ${reduction}`, () => {
      const p = rand([4, 3]).mul(0.9).add(0.05);
      const weight = rand([3]);
      gradcheck((x, t) => F.binaryCrossEntropy(x, t, { weight, reduction }), [p, rand([4, 3])], {
        name: 'bce',
        eps: 1e-3,
      });
    });
    test(`l1Loss, mseLoss, ${reduction}`, () => {
      const [a, b] = separated([3, 7], 0);
      gradcheck((x, y) => F.l1Loss(x, y, { reduction }), [a, b], { name: 'l1' });
      gradcheck((x, y) => F.mseLoss(x, y, { reduction }), [randn([2, 5]), randn([2, 5])], { name: 'mse' });
    });
    test(`smoothL1Loss (beta 1 and 0.5), huberLoss (delta 0.7), ${reduction}`, () => {
      const [a, b] = separated([5, 3], 1);
      gradcheck((x, y) => F.smoothL1Loss(x, y, { reduction }), [a, b], { name: 'smooth l1' });
      const [c, d] = separated([5, 3], 0.5);
      gradcheck((x, y) => F.smoothL1Loss(x, y, { beta: 0.5, reduction }), [c, d], { name: 'smooth l1 b' });
      const [e, f] = separated([5, 3], 0.7);
      gradcheck((x, y) => F.huberLoss(x, y, { delta: 0.7, reduction }), [e, f], { name: 'huber' });
    });
    test(`klDiv (input and target), plain and logTarget, ${reduction}`, () => {
      const input = noGrad(() => F.logSoftmax(randn([3, 4]), 1));
      // targets away from 0, where d(t log t)/dt = log t + 1 bends too fast for finite differences
      const target = rand([3, 4]).mul(0.7).add(0.3);
      gradcheck((x, t) => F.klDiv(x, t, { reduction }), [input, target], { name: 'kl' });
      const logT = noGrad(() => F.logSoftmax(randn([3, 4]), 1));
      gradcheck((x, t) => F.klDiv(x, t, { reduction, logTarget: true }), [input.cloneData(), logT], {
        name: 'kl log',
      });
    });
  }
  test('crossEntropy (N, C, H, W) with ignoreIndex and weights, odd sizes', () => {
    const t = indexTarget([2, 3, 5], 3, 255, 4);
    const weight = rand([3]).add(0.3);
    gradcheck(
      (x) => F.crossEntropy(x, t, { weight, ignoreIndex: 255, labelSmoothing: 0.05 }),
      [randn([2, 3, 3, 5])],
      { name: 'ce seg' },
    );
  });
  test('crossEntropy probability targets on (N, C, d) and klDiv batchmean', () => {
    gradcheck((x, t) => F.crossEntropy(x, t), [randn([2, 3, 5]), probTarget([2, 3, 5])], {
      name: 'ce probs 3d',
    });
    const input = noGrad(() => F.logSoftmax(randn([3, 5]), 1));
    const target = rand([3, 5]).mul(0.7).add(0.3);
    gradcheck((x, t) => F.klDiv(x, t, { reduction: 'batchmean' }), [input, target], { name: 'kl bm' });
  });
  test('crossEntropy unbatched and int32 targets', () => {
    gradcheck((x) => F.crossEntropy(x, tensor([3], [], 'int32')), [randn([6])], { name: 'ce 1d' });
    gradcheck((x) => F.crossEntropy(x, tensor([1, 0, 2], [3], 'int32')), [randn([3, 3])], { name: 'ce i32' });
  });
  test('cosineSimilarity (broadcast) and normalize p = 2, 1, 3, Infinity', () => {
    gradcheck((a, b) => F.cosineSimilarity(a, b), [randn([3, 5]), randn([1, 5])], { name: 'cos' });
    gradcheck((a, b) => F.cosineSimilarity(a, b, { dim: -1 }), [randn([2, 3, 4]), randn([3, 4])], {
      name: 'cos',
    });
    for (const p of [2, 1, 3, Infinity]) {
      // distinct magnitudes away from 0: |x| and max|x| have kinks there
      const x = tensor(
        Array.from({ length: 30 }, (_, i) => (i % 3 ? 1 : -1) * (0.3 + ((i * 7) % 30) * 0.1)),
        [2, 5, 3],
      );
      gradcheck((v) => F.normalize(v, { p, dim: 1 }), [x], { name: `normalize p=${p}` });
    }
  });
});

describe('loss semantics', () => {
  test('crossEntropy equals -log softmax at the target and the hard case of probability targets', () => {
    const x = randn([4, 6]);
    const t = tensor([5, 0, 3, 3], [4], 'int64');
    const oneHot = tensor(
      Array.from({ length: 24 }, (_, i) => (t.data[Math.floor(i / 6)] === i % 6 ? 1 : 0)),
      [4, 6],
    );
    const lsm = F.logSoftmax(x, 1);
    const expected = [0, 1, 2, 3].map((i) => -lsm.data[i * 6 + t.data[i]]);
    assertClose(F.crossEntropy(x, t, { reduction: 'none' }), expected, 1e-6, 'index');
    assertClose(F.crossEntropy(x, oneHot, { reduction: 'none' }), expected, 1e-6, 'one-hot');
    assertClose(
      F.crossEntropy(x, t, { labelSmoothing: 0.3 }),
      F.crossEntropy(x, oneHot, { labelSmoothing: 0.3 }),
      1e-6,
      'smoothing agrees',
    );
  });
  test('crossEntropy is stable for huge logits and every ignored position gives NaN (as torch)', () => {
    const x = tensor([1e4, -1e4, 0, 3e4, 3e4, -5e3], [2, 3]);
    const loss = F.crossEntropy(x, tensor([1, 0], [2], 'int64'));
    assert.ok(Number.isFinite(loss.item()), `loss ${loss.item()}`);
    assertClose(loss, [(2e4 + Math.log(2)) / 2], 1e-6, 'value');
    assert.ok(Number.isNaN(F.crossEntropy(randn([2, 3]), tensor([-100, -100], [2], 'int64')).item()));
  });
  test('binaryCrossEntropyWithLogits stays finite for logits of ±200', () => {
    const x = tensor([200, -200, 200, -200], [4]).setRequiresGrad();
    const loss = F.binaryCrossEntropyWithLogits(x, tensor([1, 0, 0, 1], [4]), { reduction: 'none' });
    assertClose(loss, [0, 0, 200, 200], 1e-6, 'values');
    loss.sum().backward();
    assertClose(x.grad as Tensor, [0, 0, 1, -1], 1e-6, 'grad');
  });
  test('errors name the function and the problem', () => {
    const x = randn([3, 4]);
    assert.throws(
      () => F.crossEntropy(x, tensor([0, 4, 1], [3], 'int64')),
      /crossEntropy: target 4 .*4 classes/,
    );
    assert.throws(
      () => F.crossEntropy(x, tensor([0, 1], [2], 'int64')),
      /crossEntropy: input \[3, 4\].*\[3\]/,
    );
    assert.throws(
      () => F.crossEntropy(x, randn([3])),
      /float targets are class probabilities .*int32 or int64/,
    );
    assert.throws(() => F.crossEntropy(x, probTarget([3, 4]), { ignoreIndex: 0 }), /ignoreIndex/);
    assert.throws(() => F.crossEntropy(x, tensor([0, 1, 2], [3], 'int64'), { weight: randn([3]) }), /weight/);
    assert.throws(
      () => F.binaryCrossEntropy(tensor([0.5, 1.2]), tensor([1, 0])),
      /probabilities in \[0, 1\]/,
    );
    assert.throws(
      () => F.mseLoss(randn([3, 1]), randn([3])),
      /mseLoss: target \[3\] must have the input's shape/,
    );
    assert.throws(() => F.l1Loss(x, x, { reduction: 'avg' as Reduction }), /reduction must be/);
  });
  test('loss modules wrap the functions and keep class weights as torch-named buffers', () => {
    const x = randn([5, 3]);
    const t = indexTarget([5], 3);
    const weight = rand([3]).add(0.1);
    const ce = new nn.CrossEntropyLoss({ weight, labelSmoothing: 0.1 });
    assert.deepEqual([...ce.stateDict().keys()], ['weight']);
    assertClose(ce.forward(x, t), F.crossEntropy(x, t, { weight, labelSmoothing: 0.1 }), 0, 'ce');
    const bce = new nn.BCEWithLogitsLoss({ posWeight: rand([3]) });
    assert.deepEqual([...bce.stateDict().keys()], ['pos_weight']);
    const y = rand([5, 3]);
    assertClose(
      new nn.SmoothL1Loss({ beta: 0.5 }).forward(x, y),
      F.smoothL1Loss(x, y, { beta: 0.5 }),
      0,
      'sl1',
    );
    assertClose(
      new nn.MSELoss({ reduction: 'sum' }).forward(x, y),
      F.mseLoss(x, y, { reduction: 'sum' }),
      0,
      'mse',
    );
    assert.equal(new nn.L1Loss().forward(x, y).item(), F.l1Loss(x, y).item());
  });
});
