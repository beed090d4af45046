import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nn, optim, tensor } from '../../src/index.js';
import { Module, Parameter } from '../../src/nn/module.js';
import { assertClose } from '../helpers/assert.js';
import { get, loadFixture } from '../helpers/fixtures.js';

const ref = loadFixture('optim/torch_optim.safetensors');
const STEPS = 4;

/** The fixture's two groups: w with the case's settings, b with lr/2 and no weight decay. */
function runCase(make: (w: Parameter, b: Parameter) => optim.Optimizer, name: string): void {
  const w = new Parameter(get(ref, 'w0').cloneData());
  const b = new Parameter(get(ref, 'b0').cloneData());
  const opt = make(w, b);
  for (let i = 0; i < STEPS; i++) {
    w.grad = get(ref, `grad.${i}.w`).cloneData();
    b.grad = get(ref, `grad.${i}.b`).cloneData();
    opt.step();
    assertClose(w, get(ref, `${name}.${i}.w`), 1e-6, `${name} step ${i} w`);
    assertClose(b, get(ref, `${name}.${i}.b`), 1e-6, `${name} step ${i} b`);
  }
}

describe('optimizers match torch.optim over 4 steps with two parameter groups', () => {
  test('SGD', () =>
    runCase(
      (w, b) => new optim.SGD([{ params: [w] }, { params: [b], lr: 0.05, weightDecay: 0 }], { lr: 0.1 }),
      'sgd',
    ));
  test('SGD momentum + dampening + weight decay', () =>
    runCase(
      (w, b) =>
        new optim.SGD([{ params: [w] }, { params: [b], lr: 0.05, weightDecay: 0 }], {
          lr: 0.1,
          momentum: 0.9,
          dampening: 0.1,
          weightDecay: 0.01,
        }),
      'sgd_momentum',
    ));
  test('SGD nesterov', () =>
    runCase(
      (w, b) =>
        new optim.SGD([{ params: [w] }, { params: [b], lr: 0.05, weightDecay: 0 }], {
          lr: 0.1,
          momentum: 0.9,
          nesterov: true,
          weightDecay: 0.05,
        }),
      'sgd_nesterov',
    ));
  test('Adam with L2 weight decay', () =>
    runCase(
      (w, b) =>
        new optim.Adam([{ params: [w] }, { params: [b], lr: 0.005, weightDecay: 0 }], {
          lr: 0.01,
          weightDecay: 0.02,
        }),
      'adam',
    ));
  test('Adam amsgrad', () =>
    runCase(
      (w, b) =>
        new optim.Adam([{ params: [w] }, { params: [b], lr: 0.005, weightDecay: 0 }], {
          lr: 0.01,
          betas: [0.8, 0.99],
          eps: 1e-6,
          amsgrad: true,
        }),
      'adam_amsgrad',
    ));
  test('AdamW (decoupled weight decay)', () =>
    runCase(
      (w, b) =>
        new optim.AdamW([{ params: [w] }, { params: [b], lr: 0.005, weightDecay: 0 }], {
          lr: 0.01,
          weightDecay: 0.05,
        }),
      'adamw',
    ));
});

describe('hand-computed updates', () => {
  test('AdamW two steps on a scalar: decay, bias correction, eps outside the sqrt', () => {
    const p = new Parameter(tensor([1.0]));
    const opt = new optim.AdamW([p], { lr: 0.1, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0.5 });
    let x = 1.0;
    let m = 0;
    let v = 0;
    for (const [t, g] of [
      [1, 2.0],
      [2, -1.0],
    ]) {
      p.grad = tensor([g]);
      opt.step();
      x *= 1 - 0.1 * 0.5;
      m = 0.9 * m + 0.1 * g;
      v = 0.999 * v + 0.001 * g * g;
      x -= ((0.1 / (1 - 0.9 ** t)) * m) / (Math.sqrt(v) / Math.sqrt(1 - 0.999 ** t) + 1e-8);
      assertClose(p, [x], 1e-6, `step ${t}`);
    }
  });

  test('SGD momentum: the first step uses the raw gradient, later ones dampen', () => {
    const p = new Parameter(tensor([0.0]));
    const opt = new optim.SGD([p], { lr: 1, momentum: 0.5, dampening: 0.5 });
    p.grad = tensor([1]);
    opt.step();
    assertClose(p, [-1], 0);
    p.grad = tensor([1]);
    opt.step(); // buf = 0.5 * 1 + 0.5 * 1 = 1
    assertClose(p, [-2], 0);
  });

  test('parameters without a gradient are left alone and get no state', () => {
    const a = new Parameter(tensor([1, 2]));
    const b = new Parameter(tensor([3]));
    const opt = new optim.Adam([a, b]);
    a.grad = tensor([0.1, 0.2]);
    opt.step();
    assert.deepEqual([...b.data], [3]);
    assert.equal(opt.state.has(b), false);
    opt.zeroGrad();
    assert.equal(a.grad, null);
  });
});

describe('gradient clipping', () => {
  for (const tag of ['2', 'inf'] as const) {
    test(`clipGradNorm_ norm ${tag} matches torch.nn.utils.clip_grad_norm_`, () => {
      const w = new Parameter(get(ref, 'w0'));
      const b = new Parameter(get(ref, 'b0'));
      w.grad = get(ref, 'grad.0.w').cloneData();
      b.grad = get(ref, 'grad.0.b').cloneData();
      const total = optim.clipGradNorm_([w, b], 0.5, tag === '2' ? 2 : Number.POSITIVE_INFINITY);
      assertClose([total], get(ref, `clip.${tag}.total`), 1e-6, 'total norm');
      assertClose(w.grad, get(ref, `clip.${tag}.w`), 1e-6, 'w grad');
      assertClose(b.grad, get(ref, `clip.${tag}.b`), 1e-6, 'b grad');
    });
  }
  test('gradients under the limit are unchanged', () => {
    const p = new Parameter(tensor([0, 0]));
    p.grad = tensor([0.3, 0.4]);
    assert.ok(Math.abs(optim.clipGradNorm_([p], 1) - 0.5) < 1e-7);
    assert.deepEqual([...p.grad.data], [...tensor([0.3, 0.4]).data]);
  });
});

describe('state dict', () => {
  const trajectory = (opt: optim.Optimizer, p: Parameter, from: number, to: number) => {
    for (let i = from; i < to; i++) {
      p.grad = tensor([Math.sin(i), Math.cos(i), 0.5 - i]);
      opt.step();
    }
  };
  for (const [name, make] of [
    ['AdamW', (p: Parameter) => new optim.AdamW([p], { lr: 0.05, amsgrad: true })],
    ['SGD', (p: Parameter) => new optim.SGD([p], { lr: 0.05, momentum: 0.9, nesterov: true })],
  ] as Array<[string, (p: Parameter) => optim.Optimizer]>) {
    test(`${name}: save after 3 steps, load into a fresh optimizer, continue == uninterrupted`, () => {
      const p1 = new Parameter(tensor([1, -2, 3]));
      const o1 = make(p1);
      trajectory(o1, p1, 0, 6);

      const p2 = new Parameter(tensor([1, -2, 3]));
      const o2 = make(p2);
      trajectory(o2, p2, 0, 3);
      const sd = o2.stateDict();
      o2.paramGroups[0].lr = 123; // changes after saving must not leak into the saved copy
      const p3 = new Parameter(p2.cloneData());
      const o3 = make(p3);
      o3.loadStateDict(sd);
      assert.equal(o3.paramGroups[0].lr, 0.05);
      trajectory(o3, p3, 3, 6);
      assert.deepEqual([...p3.data], [...p1.data]);
    });
  }

  test('loading state for different parameters fails and changes nothing', () => {
    const a = new Parameter(tensor([1, 2, 3]));
    const o = new optim.AdamW([a]);
    a.grad = tensor([1, 1, 1]);
    o.step();
    const b = new Parameter(tensor([1, 2]));
    const ob = new optim.AdamW([b], { lr: 0.5 });
    assert.throws(
      () => ob.loadStateDict(o.stateDict()),
      /exp_avg' of parameter 0 is \[3\] but the parameter is \[2\]/,
    );
    assert.equal(ob.paramGroups[0].lr, 0.5);
    const two = new optim.AdamW([{ params: [new Parameter(tensor([1, 2, 3]))] }, { params: [b] }]);
    assert.throws(() => two.loadStateDict(o.stateDict()), /1 parameter groups, this optimizer 2/);
  });
});

describe('validation', () => {
  test('bad hyperparameters and empty parameter lists are one-line errors', () => {
    const p = new Parameter(tensor([1]));
    assert.throws(() => new optim.AdamW([]), /AdamW: got an empty parameter list/);
    assert.throws(() => new optim.AdamW([p], { lr: -1 }), /invalid learning rate -1/);
    assert.throws(() => new optim.Adam([p], { betas: [1, 0.9] }), /invalid betas \[1, 0.9\]/);
    assert.throws(() => new optim.SGD([p], { nesterov: true }), /nesterov needs momentum > 0/);
    assert.throws(() => new optim.SGD([{ params: [p] }, { params: [p] }]), /more than one group/);
  });
});

describe('schedules', () => {
  test('cosine with warmup: linear ramp, base at the end of warmup, minLr at the end', () => {
    const s = optim.cosineSchedule({
      baseLr: 1,
      minLr: 0.1,
      totalSteps: 110,
      warmupSteps: 10,
      warmupInitLr: 0,
    });
    assertClose([s(0), s(5), s(10), s(60), s(110), s(500)], [0, 0.5, 1, 0.55, 0.1, 0.1], 1e-12);
    assert.ok(s(30) > s(31));
  });
  test('step schedule and linear warmup', () => {
    const s = optim.stepSchedule({ baseLr: 1, stepSize: 3, gamma: 0.5 });
    assert.deepEqual([0, 2, 3, 6, 7].map(s), [1, 1, 0.5, 0.25, 0.25]);
    const w = optim.linearWarmup({ baseLr: 2, warmupSteps: 4 });
    assert.deepEqual([0, 1, 4, 9].map(w), [0, 0.5, 2, 2]);
    assert.throws(
      () => optim.cosineSchedule({ baseLr: 1, totalSteps: 5, warmupSteps: 5 }),
      /must exceed warmupSteps/,
    );
  });
  test('setLr scales by each group lrScale', () => {
    const o = new optim.SGD([
      { params: [new Parameter(tensor([1]))], lrScale: 0.5 },
      { params: [new Parameter(tensor([1]))] },
    ]);
    optim.setLr(o, 0.2);
    assert.deepEqual(
      o.paramGroups.map((g) => g.lr),
      [0.1, 0.2],
    );
  });
});

describe('weight-decay exclusion', () => {
  class Tiny extends Module {
    cls_token = new Parameter(tensor([0, 0], [1, 1, 2]));
    pos_embed = new Parameter(tensor([0, 0, 0, 0], [1, 2, 2]));
    fc = new nn.Linear(2, 3);
    norm = new nn.LayerNorm(3);
    head = new nn.Linear(3, 2);
    gamma = new Parameter(tensor([1, 1, 1, 1], [2, 2]));
    noWeightDecay(): string[] {
      return ['gamma'];
    }
  }
  test('biases, norms, tokens and declared names go to the no-decay group', () => {
    const model = new Tiny();
    model.head.weight.requiresGrad = false;
    const g = optim.splitWeightDecay(model);
    assert.deepEqual(g.decayNames, ['fc.weight']);
    assert.deepEqual(g.noDecayNames, [
      'cls_token',
      'pos_embed',
      'gamma',
      'fc.bias',
      'norm.weight',
      'norm.bias',
      'head.bias',
    ]);
    const groups = optim.paramGroupsWeightDecay(model, { weightDecay: 0.05 });
    assert.deepEqual(
      groups.map((x) => [x.params.length, x.weightDecay]),
      [
        [7, 0],
        [1, 0.05],
      ],
    );
    const opt = new optim.AdamW(groups, { lr: 0.1 });
    assert.equal(opt.paramGroups[0].weightDecay, 0);
  });
});
