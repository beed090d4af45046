import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImageDataset, Sample } from '../../src/data/dataset.js';
import { stratifiedSubset, subsetDataset } from '../../src/data/dataset.js';
import { readFashionMnistDir } from '../../src/data/fashion_mnist.js';
import { type Batch, DataLoader } from '../../src/data/loader.js';
import { compose, randAugment, randomCrop, randomErasing } from '../../src/data/transforms.js';
import { fixturePath } from '../helpers/fixtures.js';

const train = readFashionMnistDir(fixturePath('fashion_mnist_slice'), 'train');

async function collect(it: AsyncGenerator<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe('DataLoader', () => {
  test('batch count, shapes, dtypes and the last partial batch', async () => {
    const loader = new DataLoader(train, { batchSize: 64 });
    assert.equal(loader.numBatches, 8);
    const batches = await collect(loader.epoch(0));
    assert.equal(batches.length, 8);
    assert.deepEqual(batches[0].images.shape, [64, 1, 28, 28]);
    assert.equal(batches[0].labels.dtype, 'int64');
    assert.deepEqual(batches[7].images.shape, [500 - 7 * 64, 1, 28, 28]);
    assert.deepEqual(
      batches.flatMap((b) => b.indices),
      Array.from({ length: 500 }, (_, i) => i),
    );
    assert.equal(batches[0].labels.data[0], train.label(0));
    const dropped = new DataLoader(train, { batchSize: 64, dropLast: true });
    assert.equal(dropped.numBatches, 7);
    assert.equal((await collect(dropped.epoch(0))).length, 7);
  });

  test('bad batch sizes are one-line errors', () => {
    assert.throws(
      () => new DataLoader(train, { batchSize: 0 }),
      /DataLoader: batchSize must be a positive integer, got 0/,
    );
    assert.throws(() => new DataLoader(train, { batchSize: 2.5 }), /got 2.5/);
    assert.throws(
      () => new DataLoader(train, { batchSize: 600, dropLast: true }),
      /leaves no batch from 500 samples/,
    );
  });

  test('seeded shuffling: a permutation per epoch, the same for the same seed, new each epoch', () => {
    const a = new DataLoader(train, { batchSize: 10, shuffle: true, seed: 4 });
    const b = new DataLoader(train, { batchSize: 10, shuffle: true, seed: 4 });
    const c = new DataLoader(train, { batchSize: 10, shuffle: true, seed: 5 });
    assert.deepEqual(a.order(3), b.order(3));
    assert.notDeepEqual(a.order(3), a.order(4));
    assert.notDeepEqual(a.order(3), c.order(3));
    assert.deepEqual(
      [...a.order(0)].sort((x, y) => x - y),
      Array.from({ length: 500 }, (_, i) => i),
    );
  });

  test('resuming at a batch gives exactly the batches of the full epoch (transforms and mixup included)', async () => {
    const options = {
      batchSize: 32,
      shuffle: true,
      seed: 9,
      transform: compose([randomCrop(28, { padding: 2 }), randAugment(), randomErasing({ p: 0.5 })]),
      mixup: { mixupAlpha: 0.8, cutmixAlpha: 1, numClasses: 10, labelSmoothing: 0.1 },
    };
    const full = await collect(new DataLoader(train, options).epoch(2));
    const tail = await collect(new DataLoader(train, options).epoch(2, { startBatch: 11 }));
    assert.equal(tail.length, full.length - 11);
    tail.forEach((b, i) => {
      const f = full[11 + i];
      assert.equal(b.batch, f.batch);
      assert.deepEqual(b.indices, f.indices);
      assert.deepEqual(b.images.data, f.images.data);
      assert.deepEqual(b.targets?.data, f.targets?.data);
    });
    assert.deepEqual(full[0].targets?.shape, [32, 10]);
  });

  test('prefetch requests the next batches before the current one is handed out', async () => {
    const requested: number[] = [];
    const slow: ImageDataset = {
      length: 40,
      classes: ['a', 'b'],
      imageShape: [1, 2, 2],
      label: (i) => i % 2,
      get: async (i): Promise<Sample> => {
        requested.push(i);
        await new Promise((r) => setTimeout(r, 1));
        return {
          image: { data: new Float32Array(4).fill(i), channels: 1, height: 2, width: 2 },
          label: i % 2,
        };
      },
    };
    const loader = new DataLoader(slow, { batchSize: 4, prefetch: 2 });
    const it = loader.epoch(0);
    const first = await it.next();
    assert.deepEqual((first.value as Batch).indices, [0, 1, 2, 3]);
    assert.equal(requested.length, 12, 'batches 0, 1 and 2 requested when batch 0 is yielded');
    const lazy = new DataLoader(slow, { batchSize: 4, prefetch: 0 });
    requested.length = 0;
    await lazy.epoch(0).next();
    assert.equal(requested.length, 4);
    const rest = await collect(it);
    assert.equal(rest.length, 9);
    assert.ok(loader.waitMs >= 0);
  });

  test('a failing sample rejects when its batch is reached, with the dataset error', async () => {
    const broken: ImageDataset = {
      ...subsetDataset(train, [0, 1, 2, 3]),
      get: (i) => (i === 3 ? Promise.reject(new Error('disk on fire')) : train.get(i)),
    };
    const it = new DataLoader(broken, { batchSize: 2 }).epoch(0);
    await it.next();
    await assert.rejects(it.next(), /disk on fire/);
  });
});

describe('subsets', () => {
  test('stratified subsets keep class shares equal and are seeded', () => {
    const s = stratifiedSubset(train, 100, 1);
    assert.equal(s.length, 100);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < s.length; i++) counts[s.label(i)]++;
    assert.deepEqual(counts, new Array(10).fill(10));
    const again = stratifiedSubset(train, 100, 1);
    assert.deepEqual(
      Array.from({ length: 100 }, (_, i) => again.label(i)),
      Array.from({ length: 100 }, (_, i) => s.label(i)),
    );
    assert.throws(() => stratifiedSubset(train, 0, 1), /n must be an integer in 1..500/);
    assert.throws(() => subsetDataset(train, [500]), /index 500 is outside the dataset/);
  });
});
