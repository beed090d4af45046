import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { subsetDataset } from '../../src/data/dataset.js';
import { createModel, getModelEntry } from '../../src/models/registry.js';
import { TRAIN_PRESETS } from '../../src/train/presets.js';
import { recipeModelArgs, recipeTransforms } from '../../src/train/recipe.js';
import { train } from '../../src/train/trainer.js';
import { LookupTeacher, sliceData } from './helpers/tiny.js';

const data = sliceData();
const recipeData = { train: data.train, eval: data.eval, mean: [0.286], std: [0.353] };

describe('Fashion-MNIST presets', () => {
  for (const [name, preset] of Object.entries(TRAIN_PRESETS)) {
    test(`${name} builds a 28x28, 1-channel, 10-class ${getModelEntry(preset.model).family} model`, () => {
      const args = recipeModelArgs(preset, recipeData);
      assert.equal(args.num_classes, 10);
      assert.equal(args.in_chans, 1);
      const model = createModel(preset.model, args);
      assert.equal(model.numClasses, 10);
      if (name.startsWith('vit') || name.startsWith('deit')) {
        assert.ok(
          model.numParameters() <= 2e6,
          `${name} has ${model.numParameters()} parameters; the issue allows 2M`,
        );
      }
      const t = recipeTransforms(preset, recipeData);
      assert.equal(typeof t.train, 'function');
    });
  }
  test('the distilled preset and the plain ViT share architecture and schedule', () => {
    const a = TRAIN_PRESETS.vit_fashion;
    const b = TRAIN_PRESETS.deit_fashion_distilled;
    assert.deepEqual(a.modelArgs, b.modelArgs);
    for (const k of [
      'epochs',
      'lr',
      'batchSize',
      'warmupEpochs',
      'weightDecay',
      'labelSmoothing',
      'augment',
      'seed',
    ] as const) {
      assert.equal(a[k], b[k], k);
    }
    assert.ok(b.teacher);
  });
});

test('a zoo DeiT with a distillation token trains against a teacher (forwardHeads path)', async () => {
  const train100 = subsetDataset(
    data.train,
    Array.from({ length: 100 }, (_, i) => i),
  );
  const teacher = new LookupTeacher(train100, (y) => y);
  const student = createModel('deit_tiny_distilled_patch16_224', {
    img_size: 28,
    patch_size: 7,
    embed_dim: 16,
    depth: 1,
    num_heads: 2,
    in_chans: 1,
    num_classes: 10,
  });
  const r = await train({ model: student, train: train100, teacher, epochs: 2, batchSize: 25, lr: 3e-3 });
  assert.equal(r.steps, 8);
  assert.ok(Number.isFinite(r.history[1].train_loss));
  assert.ok(r.history[1].train_loss < r.history[0].train_loss + 0.5);
});
