import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FashionDetection, stackImages, toDetrTarget } from '../../src/data/fashion_detection.js';
import { readFashionMnistDir } from '../../src/data/fashion_mnist.js';
import { fixturePath } from '../helpers/fixtures.js';

const items = readFashionMnistDir(fixturePath('fashion_mnist_slice'), 'train');

describe('FashionDetection (on the committed Fashion-MNIST slice)', () => {
  const ds = new FashionDetection(items, { length: 60, seed: 4 });

  test('a sample is a pure function of (seed, index)', () => {
    const again = new FashionDetection(items, { length: 60, seed: 4 });
    for (const i of [0, 17, 59]) assert.deepEqual(again.get(i), ds.get(i));
    assert.notDeepEqual(new FashionDetection(items, { length: 60, seed: 5 }).get(0), ds.get(0));
  });

  test('1-4 items, boxes tight around the pasted pixels, never overlapping, labels from the items', () => {
    const counts = new Set<number>();
    for (let i = 0; i < ds.length; i++) {
      const s = ds.get(i);
      const n = 64;
      counts.add(s.labels.length);
      assert.ok(s.labels.length >= 1 && s.labels.length <= 4);
      s.boxes.forEach(([x1, y1, x2, y2], k) => {
        assert.ok(
          0 <= x1 && x1 < x2 && x2 <= n && 0 <= y1 && y1 < y2 && y2 <= n,
          `box ${k} inside the canvas`,
        );
        assert.ok(Number.isInteger(s.labels[k]) && s.labels[k] >= 0 && s.labels[k] < 10);
        // tight: each edge row / column of the box holds a pixel above the threshold
        const above = (x: number, y: number) => s.image.data[y * n + x] > 0.1;
        const row = (y: number) => Array.from({ length: x2 - x1 }, (_, d) => above(x1 + d, y)).some(Boolean);
        const col = (x: number) => Array.from({ length: y2 - y1 }, (_, d) => above(x, y1 + d)).some(Boolean);
        assert.ok(row(y1) && row(y2 - 1) && col(x1) && col(x2 - 1), `box ${k} of sample ${i} is tight`);
        for (const [j, b] of s.boxes.entries()) {
          if (j === k) continue;
          const overlap = x1 < b[2] && b[0] < x2 && y1 < b[3] && b[1] < y2;
          assert.ok(!overlap, `boxes ${k} and ${j} of sample ${i} overlap`);
        }
      });
      // only the boxed pixels are pasted (no noise by default)
      for (let p = 0; p < n * n; p++) {
        const [x, y] = [p % n, Math.floor(p / n)];
        if (s.image.data[p] > 0)
          assert.ok(
            s.boxes.some((b) => x >= b[0] && x < b[2] && y >= b[1] && y < b[3]),
            `pixel (${x}, ${y}) outside every box`,
          );
      }
    }
    assert.ok(counts.size >= 3, `item counts seen: ${[...counts]}`);
  });

  test('DETR targets are normalized cxcywh; batches stack', () => {
    const s = ds.get(3);
    const t = toDetrTarget(s);
    const [x1, y1, x2, y2] = s.boxes[0];
    assert.deepEqual(
      [...t.boxes.data.subarray(0, 4)].map((v) => Number(v.toFixed(5))),
      [
        Number(((x1 + x2) / 128).toFixed(5)),
        Number(((y1 + y2) / 128).toFixed(5)),
        Number(((x2 - x1) / 64).toFixed(5)),
        Number(((y2 - y1) / 64).toFixed(5)),
      ],
    );
    assert.deepEqual(stackImages([ds.get(0), ds.get(1)]).shape, [2, 1, 64, 64]);
  });

  test('options are checked', () => {
    assert.throws(() => new FashionDetection(items, { canvas: 20 }), /fit the 20-pixel canvas/);
    assert.throws(
      () => new FashionDetection(items, { items: [3, 1] }),
      /items must be integers \[min, max\]/,
    );
    assert.throws(() => ds.get(60), /index 60 is outside 0\.\.59/);
  });
});
