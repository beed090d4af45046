import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type Box, meanAveragePrecision } from '../../src/vision/average_precision.js';

const near = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) < 1e-9, `${what}: ${a} vs ${b}`);
const det = (box: Box, score: number, label = 0) => ({ box, score, label });

describe('meanAveragePrecision: hand-computed cases', () => {
  test('perfect detections score 1 at every threshold', () => {
    const gt = [{ boxes: [[0, 0, 10, 10] as Box, [20, 20, 30, 30] as Box], labels: [0, 1] }];
    const r = meanAveragePrecision([[det([0, 0, 10, 10], 0.9, 0), det([20, 20, 30, 30], 0.8, 1)]], gt);
    near(r.map, 1, 'map');
    near(r.map50, 1, 'map50');
    near(r.map75, 1, 'map75');
  });

  test('a higher-scored false positive halves precision at full recall: AP 0.5', () => {
    const gt = [{ boxes: [[0, 0, 10, 10] as Box], labels: [0] }];
    // ranked: FP (p = 0/1), TP (p = 1/2, r = 1) → interpolated precision 0.5 at every recall point
    const r = meanAveragePrecision([[det([50, 50, 60, 60], 0.9), det([0, 0, 10, 10], 0.5)]], gt);
    near(r.map50, 0.5, 'map50');
  });

  test('half the objects found: precision 1 up to recall 0.5, i.e. 51 of 101 points', () => {
    const gt = [{ boxes: [[0, 0, 10, 10] as Box, [20, 0, 30, 10] as Box], labels: [0, 0] }];
    const r = meanAveragePrecision([[det([0, 0, 10, 10], 0.9)]], gt);
    near(r.map50, 51 / 101, 'map50');
  });

  test('a box with IoU 0.6 counts at thresholds 0.50, 0.55, 0.60 only: AP 3/10', () => {
    const gt = [{ boxes: [[0, 0, 10, 10] as Box], labels: [0] }];
    // [0, 0, 10, 6]: inter 60, union 100
    const r = meanAveragePrecision([[det([0, 0, 10, 6], 0.9)]], gt);
    near(r.map50, 1, 'map50');
    near(r.map75, 0, 'map75');
    near(r.map, 3 / 10, 'map');
  });

  test('duplicates are false positives; wrong class does not match; images and classes average', () => {
    const gt = [
      { boxes: [[0, 0, 10, 10] as Box], labels: [0] },
      { boxes: [[0, 0, 10, 10] as Box], labels: [1] },
      { boxes: [], labels: [] }, // an image without objects
    ];
    const dets = [
      [det([0, 0, 10, 10], 0.9, 0), det([0, 0, 10, 10], 0.8, 0)], // TP then duplicate FP: AP 1 (FP ranks after full recall)
      [det([0, 0, 10, 10], 0.9, 2)], // right box, class 2 (no ground truth): class 1 AP 0, class 2 ignored
      [],
    ];
    const r = meanAveragePrecision(dets, gt, { iouThresholds: [0.5] });
    near(r.perClass.get(0)?.ap50 ?? -1, 1, 'class 0');
    near(r.perClass.get(1)?.ap50 ?? -1, 0, 'class 1');
    assert.equal(r.perClass.has(2), false);
    near(r.map50, 0.5, 'map50');
    assert.ok(Number.isNaN(r.map75), 'no 0.75 threshold');
  });

  test('each ground truth matches once: the better-overlapping detection among equals', () => {
    const gt = [{ boxes: [[0, 0, 10, 10] as Box, [12, 0, 22, 10] as Box], labels: [0, 0] }];
    // one detection straddles both; the second exactly covers box 0, which the first already took
    const dets = [[det([2, 0, 12, 10], 0.9), det([0, 0, 10, 10], 0.8)]];
    const r = meanAveragePrecision(dets, gt, { iouThresholds: [0.5] });
    // first: IoU 0.667 with box 0 → TP; second: box 0 taken, IoU 0 with box 1 → FP. recall 0.5 at precision 1
    near(r.map50, 51 / 101, 'map50');
  });
});

describe('meanAveragePrecision: bad input', () => {
  test('mismatched lengths and negative-size boxes are clear errors', () => {
    assert.throws(() => meanAveragePrecision([[]], []), /one \(possibly empty\) list per image/);
    assert.throws(
      () => meanAveragePrecision([[]], [{ boxes: [[5, 0, 2, 3]], labels: [0] }]),
      /negative width or height/,
    );
    assert.throws(
      () => meanAveragePrecision([[]], [{ boxes: [[0, 0, 2, 3]], labels: [] }]),
      /1 ground-truth boxes but 0 labels/,
    );
  });
});
