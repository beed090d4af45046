/**
 * The ST-CNN trained here with the self-supervised terms (docs/stn/congealing, recipe in
 * docs/stn/README.md, section "Congealing") against the CNN trained with the same data, epochs and
 * parameter budget, on the demo's 2,000 distorted test images: the "clear margin" and
 * "upright and centered", measured from the transformer's thetas and each image's known distortion.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadDemoModel, rectification, thetasOf, transformersOf } from '../../src/cli/commands/stn.js';
import { loadDistortedFashionMnist } from '../../src/data/distorted_fashion_mnist.js';
import { locateFashionMnist } from '../../src/data/fashion_mnist.js';
import { evaluate } from '../../src/train/trainer.js';

const docs = join(import.meta.dirname, '..', '..', 'docs', 'stn');

const skip = locateFashionMnist('test')
  ? false
  : 'Fashion-MNIST test files not found (install dataset-fashion-mnist or set GLIMPSE_DATA)';

describe('the trained series ST-CNN (docs/stn/congealing)', () => {
  test('test error at least 10 points below the CNN of the same budget; outputs centered and upright', {
    skip,
  }, async () => {
    const st = loadDemoModel(join(docs, 'congealing'), 'st-series').model;
    const cnn = loadDemoModel(join(docs, 'congealing_cnn'), 'cnn').model;
    const stParams = st.numParameters();
    const cnnParams = cnn.numParameters();
    // "similar parameter count": both matched to the demo's budget, within 3% of each other
    assert.ok(Math.abs(cnnParams / stParams - 1) < 0.03, `CNN ${cnnParams}, ST-CNN ${stParams}`);
    const testSet = await loadDistortedFashionMnist('test', { canvas: 42, limit: 2000, seed: 1 });
    const stError = 1 - (await evaluate(st, testSet)).acc;
    const cnnError = 1 - (await evaluate(cnn, testSet)).acc;
    assert.ok(stError < cnnError - 0.1, `ST-CNN ${stError}, CNN ${cnnError}`);
    const indices = Array.from({ length: testSet.length }, (_, i) => i);
    const r = rectification(thetasOf(transformersOf(st, testSet, indices)[0]), testSet, indices);
    // the input: 15.7% center offset, 34.8 degrees of rotation RMS
    assert.ok(r.center.after < 0.08, `center offset ${r.center.after}`);
    assert.ok(r.angle.after < 20, `rotation left ${r.angle.after}`);
    const upright = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Shirt', 'Ankle boot'];
    for (const name of upright) {
      const left = r.angleByClass[testSet.classes.indexOf(name)];
      assert.ok(left < 13, `${name}: ${left.toFixed(1)} degrees left`);
    }
    const sneaker = r.angleByClass[testSet.classes.indexOf('Sneaker')];
    assert.ok(sneaker < 15, `Sneaker: ${sneaker.toFixed(1)} degrees left`);
  });
});
