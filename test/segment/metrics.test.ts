import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Generator } from '../../src/ops/creation.js';
import {
  confusionCounts,
  dicePerClass,
  distanceToNearest,
  hausdorffDistance,
  hd95,
  iouPerClass,
  maskEdges,
  percentile,
  SegmentationMetrics,
} from '../../src/segment/index.js';

/** A (h, w) mask with the box [y0, y1] x [x0, x1] (inclusive) set. */
function box2d(h: number, w: number, [y0, y1]: [number, number], [x0, x1]: [number, number]): Uint8Array {
  const m = new Uint8Array(h * w);
  for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) m[y * w + x] = 1;
  return m;
}

function box3d(n: number, lo: number, hi: number): Uint8Array {
  const m = new Uint8Array(n * n * n);
  for (let z = lo; z <= hi; z++)
    for (let y = lo; y <= hi; y++) for (let x = lo; x <= hi; x++) m[(z * n + y) * n + x] = 1;
  return m;
}

describe('Dice and IoU', () => {
  test('identical masks score 1, disjoint masks 0, absent classes NaN', () => {
    const a = [0, 1, 1, 2, 2, 2, 0, 0];
    assert.deepEqual(dicePerClass(a, a, 4).slice(0, 3), [1, 1, 1]);
    assert.ok(Number.isNaN(dicePerClass(a, a, 4)[3]), 'class 3 is in neither map');
    const p = [1, 1, 0, 0];
    const t = [0, 0, 1, 1];
    assert.deepEqual(dicePerClass(p, t, 2), [0, 0]);
    assert.deepEqual(iouPerClass(p, t, 2), [0, 0]);
  });

  test('partial overlap: Dice 2|A∩B|/(|A|+|B|), IoU |A∩B|/|A∪B|', () => {
    // class 1: predicted on 2 pixels, true on 4, overlapping on 2
    const p = [1, 1, 0, 0, 0, 0];
    const t = [1, 1, 1, 1, 0, 0];
    const c = confusionCounts(p, t, 2);
    assert.deepEqual([...c.tp], [2, 2]);
    assert.deepEqual([...c.fp], [2, 0]);
    assert.deepEqual([...c.fn], [0, 2]);
    assert.ok(Math.abs(dicePerClass(p, t, 2)[1] - 4 / 6) < 1e-12);
    assert.ok(Math.abs(iouPerClass(p, t, 2)[1] - 0.5) < 1e-12);
    // background: predicted on 4, true on 2, overlap 2
    assert.ok(Math.abs(dicePerClass(p, t, 2)[0] - 4 / 6) < 1e-12);
  });

  test('SegmentationMetrics pools counts over images and also averages per image', () => {
    const m = new SegmentationMetrics(['bg', 'a', 'b']);
    m.update([1, 1, 0, 0], [1, 1, 0, 0], [2, 2]); // a perfect, b absent
    m.update([1, 0, 2, 2], [1, 1, 2, 0], [2, 2]); // a: tp 1 fn 1; b: tp 1 fp 1
    const s = m.summary();
    assert.equal(s.images, 2);
    // pooled a: tp 3, fn 1 → 6/7; b: tp 1, fp 1 → 2/3
    assert.ok(Math.abs(s.dice[1] - 6 / 7) < 1e-12);
    assert.ok(Math.abs(s.dice[2] - 2 / 3) < 1e-12);
    assert.ok(Math.abs(s.meanForegroundDice - (6 / 7 + 2 / 3) / 2) < 1e-12);
    // per image a: (1 + 2/3) / 2; b only in image 2: 2/3
    assert.ok(Math.abs(s.imageDice[1] - (1 + 2 / 3) / 2) < 1e-12);
    assert.ok(Math.abs(s.imageDice[2] - 2 / 3) < 1e-12);
    assert.deepEqual(s.hd95, []);
    // MONAI's ignore_empty: b predicted in an image whose truth lacks it leaves b's per-image mean as it
    // was (pooled: one more false positive)
    m.update([2, 0, 0, 0], [0, 0, 0, 0], [2, 2]);
    const t = m.summary();
    assert.ok(Math.abs(t.imageDice[2] - 2 / 3) < 1e-12);
    assert.ok(Math.abs(t.dice[2] - 2 / 4) < 1e-12);
    // rows truth, columns prediction: one a pixel taken for bg, one bg pixel for b
    assert.deepEqual(s.confusion, [
      [2, 0, 1],
      [1, 3, 0],
      [0, 0, 1],
    ]);
  });

  test('labels outside the classes and length mismatches are errors', () => {
    assert.throws(() => confusionCounts([0, 3], [0, 1], 3), /outside 0\.\.2/);
    assert.throws(() => confusionCounts([0], [0, 1], 3), /same pixels/);
  });
});

describe('distance transform', () => {
  test('matches brute force on random 2D and 3D masks, with anisotropic spacing', () => {
    const g = new Generator(5);
    for (const [shape, spacing] of [
      [
        [9, 13],
        [1, 1],
      ],
      [
        [7, 5, 6],
        [2, 0.5, 1],
      ],
      [
        [1, 11],
        [1, 3],
      ],
    ] as Array<[number[], number[]]>) {
      const size = shape.reduce((a, b) => a * b, 1);
      const seeds = Uint8Array.from({ length: size }, () => (g.next() < 0.08 ? 1 : 0));
      seeds[3] = 1;
      const d = distanceToNearest(seeds, shape, spacing);
      const coords = (i: number) => {
        const c: number[] = [];
        for (let a = shape.length - 1; a >= 0; a--) {
          c.unshift(i % shape[a]);
          i = Math.floor(i / shape[a]);
        }
        return c;
      };
      for (let i = 0; i < size; i++) {
        let best = Number.POSITIVE_INFINITY;
        const ci = coords(i);
        for (let j = 0; j < size; j++) {
          if (!seeds[j]) continue;
          const cj = coords(j);
          best = Math.min(best, Math.hypot(...ci.map((v, a) => (v - cj[a]) * spacing[a])));
        }
        assert.ok(Math.abs(d[i] - best) < 1e-9, `shape [${shape}] pixel ${i}: ${d[i]} vs ${best}`);
      }
    }
  });

  test('no seeds: every distance is infinite', () => {
    assert.ok(distanceToNearest(new Uint8Array(6), [2, 3]).every((v) => v === Number.POSITIVE_INFINITY));
  });
});

describe('HD95', () => {
  test('edges are the mask minus its cross erosion; the image border counts as outside', () => {
    const square = box2d(5, 5, [0, 3], [1, 3]);
    const e = maskEdges(square, [5, 5]);
    // interior pixels (1, 2) and (2, 2) have all four neighbours inside; (0, 2) touches the border
    assert.equal(e[1 * 5 + 2], 0);
    assert.equal(e[2 * 5 + 2], 0);
    assert.equal(e[0 * 5 + 2], 1);
    assert.equal(
      e.reduce((a, b) => a + b, 0),
      12 - 2,
    );
  });

  test('single pixels 3 apart: 3; a line shifted by 4: 4 (and 2 at spacing 0.5)', () => {
    const a = new Uint8Array(100);
    const b = new Uint8Array(100);
    a[5 * 10 + 5] = 1;
    b[5 * 10 + 8] = 1;
    assert.equal(hd95(a, b, [10, 10]), 3);
    const line = box2d(12, 12, [2, 2], [1, 9]);
    const shifted = box2d(12, 12, [6, 6], [1, 9]);
    assert.equal(hd95(line, shifted, [12, 12]), 4);
    assert.equal(hd95(line, shifted, [12, 12], { spacing: [0.5, 1] }), 2);
  });

  test('2D: an 11x11 square vs the square inset by 2 → 2√2 (hand-computed)', () => {
    // Inset → outer: every inner edge pixel is 2 from the outer edge. Outer → inset: of the 40 outer
    // edge pixels, 28 are 2 away, 8 (next to corners) √5 and 4 (corners) 2√2; the 95th percentile of
    // 40 values sits at rank 0.95·39 = 37.05, inside the four corners: 2√2.
    const outer = box2d(15, 15, [2, 12], [2, 12]);
    const inner = box2d(15, 15, [4, 10], [4, 10]);
    assert.ok(Math.abs(hd95(inner, outer, [15, 15]) - 2 * Math.SQRT2) < 1e-12);
    assert.ok(
      Math.abs(hausdorffDistance(inner, outer, [15, 15], { directed: true, percentile: 95 }) - 2) < 1e-12,
    );
    assert.ok(Math.abs(hausdorffDistance(inner, outer, [15, 15]) - 2 * Math.SQRT2) < 1e-12, 'max');
    assert.ok(Math.abs(hausdorffDistance(inner, outer, [15, 15], { percentile: 50 }) - 2) < 1e-12, 'median');
  });

  test('3D: an 11^3 cube vs the cube inset by 2 → 3 (hand-computed)', () => {
    // Outer surface (602 voxels) → inset cube: per axis 2 coords are 2 outside [2, 8], 2 are 1 outside,
    // 7 inside, so the squared distances are 4 (294 voxels), 5 (168), 6 (24), 8 (84), 9 (24), 12 (8).
    // Rank 0.95·601 = 570.95 falls in the 9s (ranks 570..593): distance 3. Inset → outer: 2.
    const outer = box3d(13, 1, 11);
    const inner = box3d(13, 3, 9);
    assert.equal(
      maskEdges(outer, [13, 13, 13]).reduce((a, b) => a + b, 0),
      602,
    );
    assert.equal(hd95(inner, outer, [13, 13, 13]), 3);
    assert.ok(Math.abs(hausdorffDistance(inner, outer, [13, 13, 13]) - Math.sqrt(12)) < 1e-12);
  });

  test('empty masks: NaN when both are empty, Infinity when one is', () => {
    const empty = new Uint8Array(16);
    const one = new Uint8Array(16);
    one[5] = 1;
    assert.ok(Number.isNaN(hd95(empty, empty, [4, 4])));
    assert.equal(hd95(one, empty, [4, 4]), Number.POSITIVE_INFINITY);
  });

  test('percentile interpolates linearly as numpy', () => {
    assert.equal(percentile([1, 2, 3, 4], 50), 2.5);
    assert.ok(Math.abs(percentile([0, 10], 95) - 9.5) < 1e-12);
    assert.equal(percentile([7], 95), 7);
  });

  test('SegmentationMetrics reports per-class HD95 of images holding the class in both maps', () => {
    const m = new SegmentationMetrics(['bg', 'a'], { hd95: true });
    const a = box2d(12, 12, [2, 2], [1, 9]);
    const b = box2d(12, 12, [6, 6], [1, 9]);
    m.update(a, b, [12, 12]);
    m.update(a, new Uint8Array(144), [12, 12]); // class only predicted: no finite HD95, left out
    assert.equal(m.summary().hd95[1], 4);
  });
});
