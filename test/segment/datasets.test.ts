import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readFashionMnistDir } from '../../src/data/fashion_mnist.js';
import { FashionSegmentation, Shapes3D, segmentationBatch } from '../../src/data/segmentation.js';
import { fixturePath } from '../helpers/fixtures.js';

const source = readFashionMnistDir(fixturePath('fashion_mnist_slice'), 'train');

describe('FashionSegmentation (2D)', () => {
  test('deterministic in (seed, index); another seed gives other canvases', () => {
    const a = new FashionSegmentation(source, { length: 20, seed: 3 });
    const b = new FashionSegmentation(source, { length: 20, seed: 3 });
    const c = new FashionSegmentation(source, { length: 20, seed: 4 });
    for (const i of [0, 7, 19]) {
      assert.deepEqual(a.get(i), b.get(i));
      assert.notDeepEqual(a.get(i).mask, c.get(i).mask);
    }
    assert.notDeepEqual(a.get(0).mask, a.get(1).mask);
  });

  test('the mask is exactly the pixels above the threshold, labelled with their item class + 1', () => {
    const ds = new FashionSegmentation(source, { length: 30, seed: 1, items: [1, 4], maskThreshold: 0.2 });
    assert.deepEqual(ds.shape, [1, 64, 64]);
    assert.equal(ds.classes.length, 11);
    const seen = new Set<number>();
    for (let i = 0; i < ds.length; i++) {
      const { image, mask } = ds.get(i);
      for (let p = 0; p < mask.length; p++) {
        assert.equal(
          mask[p] > 0,
          image[p] > 0.2,
          `canvas ${i} pixel ${p}: intensity ${image[p]}, label ${mask[p]}`,
        );
        if (mask[p]) seen.add(mask[p]);
      }
    }
    assert.ok(seen.size >= 5, `only classes ${[...seen]} appeared`);
    assert.ok([...seen].every((k) => k >= 1 && k <= 10));
  });

  test('noise is added after the masks are taken; a batch stacks images and int32 masks', () => {
    const clean = new FashionSegmentation(source, { length: 4, seed: 2 });
    const noisy = new FashionSegmentation(source, { length: 4, seed: 2, noise: 0.1 });
    assert.deepEqual(noisy.get(1).mask, clean.get(1).mask);
    assert.notDeepEqual(noisy.get(1).image, clean.get(1).image);
    const { images, masks } = segmentationBatch(clean, [0, 3]);
    assert.deepEqual(images.shape, [2, 1, 64, 64]);
    assert.deepEqual(masks.shape, [2, 64, 64]);
    assert.equal(masks.dtype, 'int32');
    assert.deepEqual([...masks.data.subarray(4096)], [...clean.get(3).mask]);
  });
});

describe('Shapes3D', () => {
  test('deterministic; volumes hold 1-3 labelled solids brighter than the background', () => {
    const a = new Shapes3D({ length: 12, seed: 9 });
    const b = new Shapes3D({ length: 12, seed: 9 });
    assert.deepEqual(a.shape, [1, 32, 32, 32]);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < a.length; i++) {
      const s = a.get(i);
      assert.deepEqual(s, b.get(i));
      let inside = 0;
      let outside = 0;
      let nIn = 0;
      for (let v = 0; v < s.mask.length; v++) {
        counts[s.mask[v]]++;
        if (s.mask[v]) {
          inside += s.image[v];
          nIn++;
        } else outside += s.image[v];
      }
      assert.ok(nIn > 50, `volume ${i} has only ${nIn} object voxels`);
      assert.ok(inside / nIn > outside / (s.mask.length - nIn) + 0.2, `volume ${i}: objects not brighter`);
    }
    assert.ok(
      counts.every((c) => c > 0),
      `class voxel counts ${counts}`,
    );
  });

  test('solids do not touch: every labelled voxel has no differently labelled face neighbour', () => {
    const ds = new Shapes3D({ length: 6, size: 40, objects: [3, 3], seed: 1 });
    assert.deepEqual(ds.shape, [1, 40, 40, 40]);
    for (let i = 0; i < ds.length; i++) {
      const { mask } = ds.get(i);
      const n = 40;
      for (let v = 0; v < mask.length; v++) {
        if (!mask[v]) continue;
        for (const d of [1, n, n * n]) {
          for (const u of [v - d, v + d]) {
            if (u >= 0 && u < mask.length && mask[u])
              assert.equal(mask[u], mask[v], `volume ${i} voxel ${v}`);
          }
        }
      }
    }
  });

  test('options are checked', () => {
    assert.throws(() => new Shapes3D({ size: 8 }), /size must be an integer >= 16/);
    assert.throws(() => new Shapes3D({ objectScale: 3 }), /fit the widest solid/);
    assert.throws(() => new Shapes3D({ objects: [2, 1] }), /objects must be integers/);
    assert.throws(() => new Shapes3D({ length: 2 }).get(2), /index 2 is outside 0\.\.1/);
  });
});
