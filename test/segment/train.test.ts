import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { locateFashionMnist } from '../../src/data/fashion_mnist.js';
import { TransUNet, TransUnetTokenProbe } from '../../src/models/transunet.js';
import { manualSeed, randn } from '../../src/index.js';
import { loadSegmentationCheckpoint } from '../../src/segment/model.js';
import { SEGMENT_PRESETS, trainSegmentation } from '../../src/segment/train.js';
import type { Tensor } from '../../src/tensor/tensor.js';

/** A small TransUNet for 64x64 canvases (the fashion2d preset's input), 11 classes. */
const SMALL = {
  resnetWidth: 8,
  gnGroups: 4,
  hiddenSize: 32,
  numLayers: 1,
  numHeads: 2,
  mlpDim: 64,
  decoderChannels: [8, 8, 4, 4],
  headChannels: 8,
};

describe('TransUnetTokenProbe (the encoder stage)', () => {
  test('logits at input resolution from the shared encoder; gradients reach it and the head, not the decoder', () => {
    manualSeed(3);
    const model = new TransUNet({ imgSize: 64, inChans: 1, numClasses: 11, ...SMALL });
    const probe = new TransUnetTokenProbe(model);
    assert.equal(probe.transformer, model.transformer);
    const logits = probe.forward(randn([2, 1, 64, 64]));
    assert.deepEqual(logits.shape, [2, 11, 64, 64]);
    logits.sum().backward();
    const nonzero = (t: Tensor) => t.grad !== null && [...t.grad.data].some((v) => v !== 0);
    assert.ok(nonzero(probe.head.weight), 'no gradient on the token head');
    assert.ok(
      nonzero(model.transformer.embeddings.position_embeddings),
      'no gradient on the position embeddings',
    );
    assert.ok(
      model.decoder.parameters().every((p) => p.grad === null),
      'the decoder got gradients',
    );
    const own = new Set(model.transformer.parameters());
    assert.deepEqual(
      probe.parameters().filter((p) => !own.has(p)),
      probe.head.parameters(),
      "the probe's parameters are the encoder's and the head's",
    );
  });
});

const fashion = locateFashionMnist('train') && locateFashionMnist('test');

describe('trainSegmentation stage encoder', () => {
  const dir = mkdtempSync(join(tmpdir(), 'glimpse-segtrain-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('trains the encoder only and writes a whole TransUNet that --init continues', {
    skip: fashion ? false : 'Fashion-MNIST not found (install dataset-fashion-mnist or set GLIMPSE_DATA)',
  }, async () => {
    const options = { trainSize: 32, testSize: 4, batchSize: 16, modelConfig: SMALL, seed: 5 };
    const enc = await trainSegmentation('fashion2d', { ...options, out: join(dir, 'enc'), stage: 'encoder' });
    assert.equal(enc.steps, 2);
    manualSeed(5);
    const fresh = new TransUNet({ ...SEGMENT_PRESETS.fashion2d.modelConfig, ...SMALL });
    const saved = loadSegmentationCheckpoint(enc.checkpoint).model as TransUNet;
    const after = new Map(saved.namedParameters());
    const differs = (name: string, p: Tensor) =>
      [...p.data].some((v, i) => v !== (after.get(name) as Tensor).data[i]);
    const changed = fresh.namedParameters().filter(([name, p]) => differs(name, p));
    assert.ok(changed.length > 0, 'nothing was trained');
    assert.ok(
      changed.every(([name]) => name.startsWith('transformer.')),
      `changed: ${changed.map(([n]) => n)}`,
    );
    assert.ok(changed.some(([name]) => name.startsWith('transformer.embeddings.hybrid_model.')));
    const full = await trainSegmentation('fashion2d', {
      ...options,
      out: join(dir, 'full'),
      init: enc.checkpoint,
    });
    assert.equal(full.steps, 2);
    assert.ok(full.summary.meanForegroundDice >= 0 && full.summary.meanForegroundDice <= 1);
    await assert.rejects(
      trainSegmentation('shapes3d', { trainSize: 4, testSize: 1, out: join(dir, 'u'), stage: 'encoder' }),
      /stage 'encoder' is for TransUNet; preset shapes3d trains a unetr/,
    );
  });
});
