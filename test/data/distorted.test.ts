import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  DistortedDataset,
  drawDistorted,
  type InMemoryImageDataset,
  loadDistortedFashionMnist,
} from '../../src/data/distorted_fashion_mnist.js';
import { readFashionMnistDir } from '../../src/data/fashion_mnist.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath } from '../helpers/fixtures.js';

const SLICE = fixturePath('fashion_mnist_slice');
const base = readFashionMnistDir(SLICE, 'train');

/** A toy base dataset of n random 28x28 items. */
function toyBase(n: number): InMemoryImageDataset {
  const items = Array.from({ length: n }, (_, i) =>
    Float32Array.from({ length: 784 }, (_, j) => ((i * 7919 + j * 104729) % 1000) / 1000),
  );
  return {
    length: n,
    classes: ['a', 'b'],
    imageShape: [1, 28, 28],
    get: (i) => ({ image: { data: items[i], channels: 1, height: 28, width: 28 }, label: i % 2 }),
    label: (i) => i % 2,
  };
}

describe('DistortedDataset', () => {
  test('deterministic: the same seed gives the same images; another seed different ones', () => {
    const a = new DistortedDataset(base, { seed: 7, clutter: 4, canvas: 60 });
    const b = new DistortedDataset(base, { seed: 7, clutter: 4, canvas: 60 });
    const c = new DistortedDataset(base, { seed: 8, clutter: 4, canvas: 60 });
    for (const i of [0, 17, 499]) {
      assert.deepEqual(a.get(i).image.data, b.get(i).image.data, `item ${i}`);
      assert.notDeepEqual(a.get(i).image.data, c.get(i).image.data, `item ${i} with another seed`);
      assert.equal(a.get(i).label, base.label(i));
    }
  });

  test('a sample does not depend on which samples were read before it', () => {
    const fresh = new DistortedDataset(base, { seed: 3, clutter: 2 }).get(42).image.data;
    const used = new DistortedDataset(base, { seed: 3, clutter: 2 });
    for (let i = 0; i < 40; i++) used.get(i);
    assert.deepEqual(used.get(42).image.data, fresh);
  });

  test('distortions stay in range and the scaled item box inside the canvas', () => {
    const ds = new DistortedDataset(base, { seed: 1 });
    assert.deepEqual(ds.imageShape, [1, 42, 42]);
    let minAngle = Infinity;
    let maxAngle = -Infinity;
    for (let i = 0; i < base.length; i++) {
      const d = ds.distortion(i);
      assert.ok(Math.abs(d.angle) <= 60, `angle ${d.angle}`);
      assert.ok(d.scale >= 0.7 && d.scale <= 1.2, `scale ${d.scale}`);
      const half = 14 * d.scale;
      for (const c of [d.cx, d.cy])
        assert.ok(c - half >= -0.5 - 1e-9 && c + half <= 41.5 + 1e-9, `center ${c} half ${half}`);
      minAngle = Math.min(minAngle, d.angle);
      maxAngle = Math.max(maxAngle, d.angle);
    }
    // 500 uniform draws cover the range
    assert.ok(minAngle < -55 && maxAngle > 55, `angles span [${minAngle}, ${maxAngle}]`);
  });

  test('no rotation, unit scale, centered: the item is copied exactly into the middle of the canvas', () => {
    const ds = new DistortedDataset(base, { rotation: 0, scale: [1, 1], translate: false, canvas: 42 });
    const item = base.get(5).image.data;
    const out = ds.get(5).image.data;
    for (let y = 0; y < 42; y++) {
      for (let x = 0; x < 42; x++) {
        const inside = y >= 7 && y < 35 && x >= 7 && x < 35;
        const expected = inside ? item[(y - 7) * 28 + (x - 7)] : 0;
        assert.ok(
          Math.abs(out[y * 42 + x] - expected) < 1e-6,
          `pixel (${x}, ${y}): ${out[y * 42 + x]} vs ${expected}`,
        );
      }
    }
  });

  test('drawDistorted: 90 degrees turns the item clockwise on screen, scale 2 doubles it', () => {
    const item = base.get(9).image.data;
    const rotated = new Float32Array(28 * 28);
    drawDistorted(item, 28, 28, { angle: 90, scale: 1, cx: 13.5, cy: 13.5 }, rotated, 28);
    const expected = new Float32Array(28 * 28);
    // clockwise: item pixel (x, y) lands at (27 - y, x)
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) expected[x * 28 + (27 - y)] = item[y * 28 + x];
    assertClose(rotated, expected, 1e-5, 'rotated');
    const zoomed = new Float32Array(56 * 56);
    drawDistorted(item, 28, 28, { angle: 0, scale: 2, cx: 27, cy: 27 }, zoomed, 56);
    // canvas pixel 2k reads item pixel k, 2k + 1 the midpoint of k and k + 1
    for (let k = 0; k < 27; k++) {
      const row = 2 * 11 * 56;
      assert.ok(Math.abs(zoomed[row + 2 * k] - item[11 * 28 + k]) < 1e-6, `even pixel ${k}`);
      const mid = (item[11 * 28 + k] + item[11 * 28 + k + 1]) / 2;
      assert.ok(Math.abs(zoomed[row + 2 * k + 1] - mid) < 1e-6, `odd pixel ${k}`);
    }
  });

  test('clutter: pieces of other items, combined by maximum, visible away from the item', () => {
    const toy = toyBase(5);
    const ds = new DistortedDataset(toy, {
      seed: 2,
      clutter: 6,
      clutterSize: 6,
      canvas: 60,
      scale: [0.7, 0.7],
    });
    const d = ds.distortion(3);
    assert.equal(d.clutter.length, 6);
    const out = ds.get(3).image.data;
    for (const p of d.clutter) {
      assert.notEqual(p.source, 3, 'a piece of the item itself');
      const src = toy.get(p.source).image.data;
      for (let y = 0; y < 6; y++) {
        for (let x = 0; x < 6; x++) {
          const v = out[(p.y + y) * 60 + p.x + x];
          assert.ok(v >= src[(p.sy + y) * 28 + p.sx + x] - 1e-7, 'the canvas keeps the maximum');
        }
      }
    }
    const plain = new DistortedDataset(toy, { seed: 2, canvas: 60, scale: [0.7, 0.7] }).get(3).image.data;
    const extra = out.reduce((acc, v, i) => acc + (v > plain[i] ? 1 : 0), 0);
    assert.ok(extra > 0, 'clutter added nothing');
  });

  test('loadDistortedFashionMnist reads a directory, limits the split, and checks its options', async () => {
    const ds = await loadDistortedFashionMnist('test', {
      root: SLICE,
      limit: 50,
      canvas: 60,
      clutter: 4,
      seed: 9,
    });
    assert.equal(ds.length, 50);
    assert.deepEqual(ds.imageShape, [1, 60, 60]);
    assert.equal(ds.get(49).image.data.length, 3600);
    await assert.rejects(
      loadDistortedFashionMnist('test', { root: SLICE, limit: 10_000 }),
      /limit must be an integer in 1\.\.200/,
    );
    assert.throws(() => new DistortedDataset(base, { scale: [1.2, 0.7] }), /scale must be \[min, max\]/);
    assert.throws(() => new DistortedDataset(base, { clutter: 2, clutterSize: 40 }), /clutterSize 40/);
  });
});
