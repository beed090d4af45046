import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cosineSchedule } from '../../src/optim/schedule.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { type TrainOptions, train } from '../../src/train/trainer.js';
import { TinyMlp, tinyRunOptions } from './helpers/tiny.js';

/** A plain run on the committed slice: 3 epochs of 10 steps, half an epoch of warmup. */
function options(overrides: (model: TinyMlp) => Partial<TrainOptions>): TrainOptions {
  const base = tinyRunOptions(null, { mixup: null, ema: null, clipGrad: null, trainTransform: undefined });
  const model = base.model as TinyMlp;
  return { ...base, eval: undefined, ...overrides(model) };
}

describe('train: per-group learning rates (paramGroups)', () => {
  test("a group's lr is lrScale times the run's: on the cosine, or held at the peak after the warmup", async () => {
    const seen: Array<{ step: number; lr: number; groupLrs: number[] }> = [];
    const o = options((m) => ({
      paramGroups: [
        { params: [m.fc1.weight, m.fc1.bias as Tensor], lrScale: 10, schedule: 'constant' },
        { params: [m.fc2.weight], lrScale: 0.5 },
      ],
      onStep: ({ step, lr, groupLrs }) => seen.push({ step, lr, groupLrs: groupLrs ?? [] }),
    }));
    await train(o);
    assert.equal(seen.length, 30);
    // the run's own schedule, for comparison: warmup over 5 steps, then cosine to minLr
    const schedule = cosineSchedule({
      baseLr: 3e-3,
      minLr: 1e-6,
      totalSteps: 30,
      warmupSteps: 5,
      warmupInitLr: 1e-6,
    });
    for (const { step, lr, groupLrs } of seen) {
      const s = step - 1; // onStep reports the step count after the update
      assert.ok(Math.abs(lr - schedule(s)) < 1e-12, `run lr at step ${s}`);
      const constant = s < 5 ? schedule(s) * 10 : 3e-2;
      assert.ok(Math.abs(groupLrs[0] - constant) < 1e-12, `group 0 lr ${groupLrs[0]} at step ${s}`);
      assert.ok(Math.abs(groupLrs[1] - 0.5 * schedule(s)) < 1e-12, `group 1 lr ${groupLrs[1]} at step ${s}`);
    }
    // the last step: the run's lr has decayed near minLr, the constant group has not
    assert.ok(seen[29].lr < 1e-4 && seen[29].groupLrs[0] === 3e-2);
  });

  test('the lr reaches the optimizer: a group with lrScale 0 never moves, the rest trains', async () => {
    let model: TinyMlp | null = null;
    const o = options((m) => {
      model = m;
      return { paramGroups: [{ params: [m.fc2.weight, m.fc2.bias as Tensor], lrScale: 0 }] };
    });
    const m = model as unknown as TinyMlp;
    const before = { fc1: m.fc1.weight.data.slice(), fc2: m.fc2.weight.data.slice() };
    await train(o);
    assert.deepEqual(m.fc2.weight.data, before.fc2, 'fc2 moved with lrScale 0');
    assert.ok(
      m.fc1.weight.data.some((v, i) => v !== before.fc1[i]),
      'fc1 did not train',
    );
  });

  test('groups of lrScale 1 on the cosine train exactly like no groups', async () => {
    const run = async (grouped: boolean) => {
      const seen: Array<number[] | undefined> = [];
      let model: TinyMlp | null = null;
      const o = options((m) => {
        model = m;
        return {
          epochs: 1,
          paramGroups: grouped ? [{ params: [m.fc1.weight, m.fc2.bias as Tensor] }] : undefined,
          onStep: ({ groupLrs }) => seen.push(groupLrs),
        };
      });
      await train(o);
      return { seen, weights: (model as unknown as TinyMlp).fc1.weight.data.slice() };
    };
    const plain = await run(false);
    const grouped = await run(true);
    assert.ok(plain.seen.every((g) => g === undefined));
    assert.ok(grouped.seen.every((g) => g?.length === 1));
    assert.deepEqual(grouped.weights, plain.weights);
  });

  test('errors: a parameter in two groups, a tensor not in the model, a bad lrScale or schedule', async () => {
    const other = new TinyMlp();
    const cases: Array<[(m: TinyMlp) => TrainOptions['paramGroups'], RegExp]> = [
      [
        (m) => [{ params: [m.fc1.weight] }, { params: [m.fc1.weight] }],
        /in paramGroups\[0\] and paramGroups\[1\]; each may be in one group/,
      ],
      [() => [{ params: [other.fc1.weight] }], /1 tensor\(s\) in paramGroups are not trainable parameters/],
      [(m) => [{ params: [m.fc1.weight], lrScale: -1 }], /paramGroups\[0\]\.lrScale must be >= 0, got -1/],
      [
        (m) => [{ params: [m.fc1.weight], schedule: 'step' as 'constant' }],
        /paramGroups\[0\]\.schedule must be 'cosine' or 'constant', got 'step'/,
      ],
    ];
    for (const [groups, message] of cases) {
      await assert.rejects(train(options((m) => ({ paramGroups: groups(m) }))), message);
    }
  });
});
