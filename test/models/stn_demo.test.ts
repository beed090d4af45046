/** `glimpse stn-demo` end to end on a few real images: the files it writes, its saved weights, its errors. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { after, describe, test } from 'node:test';
import {
  loadDemoModel,
  modelOptions,
  rectification,
  thetasOf,
  transformersOf,
} from '../../src/cli/commands/stn.js';
import { manualSeed } from '../../src/ops/creation.js';
import { loadDistortedFashionMnist } from '../../src/data/distorted_fashion_mnist.js';
import { locateFashionMnist } from '../../src/data/fashion_mnist.js';
import { StnClassifier } from '../../src/models/stn.js';

const dir = mkdtempSync(join(tmpdir(), 'glimpse-stn-demo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const glimpse = runCli;

const skip =
  locateFashionMnist('train') && locateFashionMnist('test')
    ? false
    : 'Fashion-MNIST not found (install dataset-fashion-mnist or set GLIMPSE_DATA)';

describe('glimpse stn-demo', () => {
  test('a series ST-CNN with every self-supervised term: results, figure and weights that reload to the same transforms', {
    skip,
  }, async () => {
    const out = join(dir, 'series');
    const r = await glimpse([
      'stn-demo',
      ...['--models', 'st-series', '--transform', 'rotation', '--localization', 'conv,moments'],
      ...['--train', '64', '--test', '32', '--epochs', '1', '--batch-size', '16'],
      ...[
        '--equivariance',
        '1',
        '--class-turn-prior',
        '1',
        '--class-template',
        '1',
        '--no-progress',
        '--out',
        out,
      ],
    ]);
    assert.equal(r.code, 0, r.err);
    for (const f of ['results.json', 'stn_rectified.png', 'st-series.safetensors'])
      assert.ok(existsSync(join(out, f)), f);
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    assert.equal(results.settings.classTemplate, 1);
    const [report] = results.models;
    const { model } = loadDemoModel(out, 'st-series');
    const testSet = await loadDistortedFashionMnist('test', { canvas: 42, limit: 32, seed: 1 });
    const indices = Array.from({ length: 32 }, (_, i) => i);
    const again = rectification(thetasOf(transformersOf(model, testSet, indices)[0]), testSet, indices);
    // the file holds the trained weights, not the seed's initial ones
    manualSeed(results.settings.seed);
    const fresh = new StnClassifier(modelOptions(results.settings, 'st-series', report.hidden));
    assert.ok(
      model.head.weight.data.some((v, i) => v !== fresh.head.weight.data[i]),
      'the saved head equals the initial one',
    );
    assert.ok(Math.abs(again.angle.after - report.rectification[0].angle.after) < 1e-3);
    assert.ok(Math.abs(again.center.after - report.rectification[0].center.after) < 1e-5);
  });

  test('a negative weight is refused with a one-line error, and nothing is written', async () => {
    const out = join(dir, 'refused');
    const r = await glimpse(['stn-demo', '--class-template', '-1', '--out', out]);
    assert.notEqual(r.code, 0);
    assert.match(r.err.trim(), /--class-template/);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.ok(!existsSync(join(out, 'results.json')));
  });
});
