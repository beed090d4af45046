/**
 * The two segmentation models trained here (docs/segmentation/models, recipes in
 * docs/segmentation/README.md) against the issue's Dice targets on their presets' test splits.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { locateFashionMnist } from '../../src/data/fashion_mnist.js';
import '../../src/index.js';
import { loadSegmentationCheckpoint } from '../../src/segment/model.js';
import { evaluateSegmentation, getSegmentPreset, loadPresetData } from '../../src/segment/train.js';

const models = join(import.meta.dirname, '..', '..', 'docs', 'segmentation', 'models');

async function testDice(preset: string, file: string): Promise<number> {
  const p = getSegmentPreset(preset);
  const { model } = loadSegmentationCheckpoint(join(models, file));
  const split = await loadPresetData(p, 'test', { seed: 0 });
  const summary = evaluateSegmentation(model, split, { mean: p.mean, std: p.std, batchSize: 16 });
  return summary.meanForegroundDice;
}

describe('the trained segmentation models (docs/segmentation/models)', () => {
  test('UNETR: mean foreground Dice >= 0.80 on the 100 volumes of the shapes3d test split', async () => {
    const dice = await testDice('shapes3d', 'unetr_shapes3d.safetensors');
    assert.ok(dice >= 0.8, `Dice ${dice.toFixed(4)}`);
  });

  test('TransUNet: mean foreground Dice >= 0.85 on the 1000 canvases of the fashion2d test split', {
    skip: locateFashionMnist('test')
      ? false
      : 'Fashion-MNIST test files not found (install dataset-fashion-mnist or set GLIMPSE_DATA)',
  }, async () => {
    const dice = await testDice('fashion2d', 'transunet_fashion2d.safetensors');
    assert.ok(dice >= 0.85, `Dice ${dice.toFixed(4)}`);
  });
});
