import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { manualSeed, noGrad, rand, randn, tensor } from '../../src/index.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import {
  AnchorGenerator,
  BoxCoder,
  batchedNms,
  boxArea,
  boxConvert,
  boxIou,
  clipBoxesToImage,
  generalizedBoxIou,
  generalizedBoxIouLoss,
  nms,
  removeSmallBoxes,
  roiAlign,
} from '../../src/vision/boxes.js';
import { assertClose } from '../helpers/assert.js';
import { get, loadFixture, tolerance } from '../helpers/fixtures.js';
import { gradcheck } from '../helpers/gradcheck.js';

manualSeed(11);

/** n random valid xyxy boxes inside [0, 40]. */
function randomBoxes(n: number): Tensor {
  const r = rand([n, 4]);
  const d = r.data;
  for (let i = 0; i < n; i++) {
    const x = d[4 * i] * 30;
    const y = d[4 * i + 1] * 30;
    d.set([x, y, x + 2 + d[4 * i + 2] * 15, y + 2 + d[4 * i + 3] * 15], 4 * i);
  }
  return r;
}

describe('torchvision box ops parity (test/fixtures/torch/torchvision_boxes)', () => {
  const m = loadFixture('torch/torchvision_boxes.io.safetensors');
  const tol = tolerance('torch', 'torchvision_boxes');
  const b1 = get(m, 'boxes1_xyxy');
  const b2 = get(m, 'boxes2_xyxy');

  test('box_iou and generalized_box_iou', () => {
    assertClose(boxIou(b1, b2), get(m, 'box_iou'), tol, 'box_iou');
    assertClose(generalizedBoxIou(b1, b2), get(m, 'generalized_box_iou'), tol, 'generalized_box_iou');
  });

  test('box_convert xyxy → cxcywh, and back through every format', () => {
    assertClose(boxConvert(b1, 'xyxy', 'cxcywh'), get(m, 'cxcywh'), tol, 'cxcywh');
    for (const f of ['xywh', 'cxcywh'] as const) {
      assertClose(boxConvert(boxConvert(b1, 'xyxy', f), f, 'xyxy'), b1, 1e-5, `xyxy → ${f} → xyxy`);
    }
    assertClose(
      boxConvert(boxConvert(b1, 'xyxy', 'xywh'), 'xywh', 'cxcywh'),
      get(m, 'cxcywh'),
      tol,
      'xywh → cxcywh',
    );
  });

  test('nms at two thresholds keeps exactly torchvision indices, in order', () => {
    const boxes = get(m, 'nms_boxes');
    const scores = get(m, 'nms_scores');
    for (const t of ['0.3', '0.6']) {
      assert.deepEqual(
        [...nms(boxes, scores, Number(t)).data],
        [...get(m, `nms_keep_iou${t}`).data],
        `iou ${t}`,
      );
    }
  });

  test('batched_nms suppresses only within a category', () => {
    const keep = batchedNms(b1, get(m, 'batched_nms_scores'), get(m, 'batched_nms_idxs'), 0.2);
    assert.deepEqual([...keep.data], [...get(m, 'batched_nms_keep_iou0.2').data]);
  });

  test('roi_align 7x7, spatial scale 0.5, sampling ratio 2, aligned', () => {
    const out = roiAlign(get(m, 'roi_align.features'), get(m, 'roi_align.rois'), 7, {
      spatialScale: 0.5,
      samplingRatio: 2,
      aligned: true,
    });
    assertClose(out, get(m, 'roi_align.out_7x7_scale0.5_sr2_aligned'), tol, 'roi_align');
  });
});

describe('generalized_box_iou_loss parity (test/fixtures/torch/torch_losses)', () => {
  test('reduction none', () => {
    const m = loadFixture('torch/torch_losses.io.safetensors');
    const loss = generalizedBoxIouLoss(get(m, 'giou.b1'), get(m, 'giou.b2'));
    assertClose(loss, get(m, 'giou_loss.none'), tolerance('torch', 'torch_losses'), 'giou_loss');
  });
});

describe('box ops: known answers', () => {
  test('IoU and GIoU of hand-placed boxes', () => {
    const a = tensor([[0, 0, 2, 2]]);
    const b = tensor([
      [1, 1, 3, 3], // inter 1, union 7, enclosing 9
      [4, 0, 6, 2], // disjoint: IoU 0, enclosing 12, union 8
      [0, 0, 2, 2], // identical
    ]);
    assertClose(boxIou(a, b), [1 / 7, 0, 1], 1e-6, 'iou');
    assertClose(generalizedBoxIou(a, b), [1 / 7 - 2 / 9, -4 / 12, 1], 1e-6, 'giou');
    assertClose(
      generalizedBoxIouLoss(tensor([[0, 0, 2, 2]]), tensor([[4, 0, 6, 2]]), { eps: 0 }),
      [4 / 3],
      1e-6,
    );
    assertClose(boxArea(b), [4, 4, 4], 0);
  });

  test('GIoU loss reductions and gradient vs finite differences', () => {
    const a = randomBoxes(5);
    const b = randomBoxes(5);
    const none = generalizedBoxIouLoss(a, b);
    const total = [...none.data].reduce((s, v) => s + v, 0);
    assertClose(generalizedBoxIouLoss(a, b, { reduction: 'sum' }), [total], 1e-5);
    assertClose(generalizedBoxIouLoss(a, b, { reduction: 'mean' }), [total / 5], 1e-5);
    gradcheck((x, y) => generalizedBoxIouLoss(x, y), [a, b], { eps: 1e-2, name: 'generalizedBoxIouLoss' });
    gradcheck((x, y) => generalizedBoxIou(x, y), [randomBoxes(3), randomBoxes(4)], {
      name: 'generalizedBoxIou',
    });
  });

  test('nms keeps everything below the threshold and suppresses duplicates', () => {
    const boxes = tensor([
      [0, 0, 10, 10],
      [0, 0, 10, 10.5], // IoU 0.95 with box 0
      [20, 20, 30, 30],
    ]);
    assert.deepEqual([...nms(boxes, tensor([0.5, 0.9, 0.1]), 0.5).data], [1, 2]);
    assert.deepEqual([...nms(boxes, tensor([0.5, 0.9, 0.1]), 0.99).data], [1, 0, 2]);
    assert.deepEqual(
      [...batchedNms(boxes, tensor([0.5, 0.9, 0.1]), tensor([0, 1, 0], undefined, 'int64'), 0.5).data],
      [1, 0, 2],
    );
    assert.equal(nms(tensor(new Float32Array(0), [0, 4]), tensor(new Float32Array(0), [0]), 0.5).size, 0);
  });

  test('clip and remove small boxes', () => {
    const b = tensor([
      [-5, -5, 5, 5],
      [8, 8, 30, 40],
      [3, 3, 3.0005, 9],
    ]);
    assertClose(clipBoxesToImage(b, [20, 10]), [0, 0, 5, 5, 8, 8, 10, 20, 3, 3, 3.0005, 9], 1e-6);
    assert.deepEqual([...removeSmallBoxes(b, 1e-3).data], [0, 1]);
  });

  test('roiAlign: constant map averages to the constant; unaligned adaptive sampling; gradient', () => {
    const x = noGrad(() => randn([2, 3, 9, 11]).mul(0).add(2.5));
    const out = roiAlign(x, [tensor([[1, 1, 6, 5]]), tensor([[0, 0, 10, 8]])], [3, 4]);
    assert.deepEqual(out.shape, [2, 3, 3, 4]);
    assertClose(out, new Float32Array(out.size).fill(2.5), 1e-5, 'constant');
    const feats = randn([1, 2, 6, 7]);
    gradcheck(
      (f) => roiAlign(f, tensor([[0, 0.7, 1.2, 5.1, 4.4]]), 2, { samplingRatio: -1, spatialScale: 1 }),
      [feats],
      { name: 'roiAlign' },
    );
    assert.throws(() => roiAlign(feats, tensor([[3, 0, 0, 2, 2]]), 2), /batch index 3/);
  });

  test('BoxCoder: encode then decode is the identity; decode clamps dw, dh', () => {
    const coder = new BoxCoder([10, 10, 5, 5]);
    const anchors = randomBoxes(6);
    const targets = randomBoxes(6);
    const deltas = coder.encode(targets, anchors);
    assertClose(coder.decode(deltas, anchors), targets, 1e-4, 'roundtrip');
    const huge = tensor([[0, 0, 100, 100]]);
    const decoded = new BoxCoder().decode(huge, tensor([[0, 0, 16, 16]]));
    assertClose(decoded, [-492, -492, 508, 508], 1e-3, 'clamped at log(1000/16)');
  });

  test('AnchorGenerator: base anchors are torchvision rounded (ratio outer, size inner)', () => {
    const g = new AnchorGenerator({ sizes: [[32]], aspectRatios: [[0.5, 1, 2]] });
    // w = 32/sqrt(r), h = 32 sqrt(r): 45.25 x 22.63, 32 x 32, 22.63 x 45.25
    assertClose(g.cellAnchors[0], [-23, -11, 23, 11, -16, -16, 16, 16, -11, -23, 11, 23], 0);
    const all = g.gridAnchors([16, 24], [[2, 3]]);
    assert.deepEqual(all.shape, [18, 4]);
    // cell (y=1, x=2) with stride 8: shift (16, 8), anchor index 1 (square)
    assertClose(all.data.subarray(4 * (5 * 3 + 1), 4 * (5 * 3 + 2)), [0, -8, 32, 24], 0);
  });
});

describe('box ops: bad input', () => {
  test('negative width or height is a clear error', () => {
    const bad = tensor([
      [0, 0, 5, 5],
      [4, 4, 2, 8],
    ]);
    assert.throws(() => boxIou(bad, bad), /boxIou: boxes1\[1\] = \[4, 4, 2, 8\].*x2 >= x1/);
    assert.throws(() => generalizedBoxIou(tensor([[0, 0, 1, 1]]), bad), /boxes2\[1\]/);
    assert.throws(() => generalizedBoxIouLoss(bad, bad), /generalizedBoxIouLoss/);
    assert.throws(() => nms(bad, tensor([0.1, 0.2]), 0.5), /nms: boxes\[1\]/);
    assert.throws(() => boxIou(tensor([[0, 0, NaN, 1]]), bad), /not an \(x1, y1, x2, y2\) box/);
  });

  test('shape and format errors', () => {
    assert.throws(() => boxConvert(tensor([[1, 2, 3]]), 'xyxy', 'cxcywh'), /\(\.\.\., 4\)/);
    assert.throws(
      () => boxConvert(tensor([[1, 2, 3, 4]]), 'xyxy', 'yxyx' as 'xyxy'),
      /format must be one of/,
    );
    assert.throws(() => nms(tensor([[0, 0, 1, 1]]), tensor([0.1, 0.2]), 0.5), /scores must be \(N,\)/);
    assert.throws(() => new AnchorGenerator({ sizes: [[16], [32]], aspectRatios: [[1]] }), /2 levels/);
  });

  test('empty inputs give empty outputs', () => {
    const none = tensor(new Float32Array(0), [0, 4]);
    assert.deepEqual(boxIou(none, tensor([[0, 0, 1, 1]])).shape, [0, 1]);
    assert.deepEqual(generalizedBoxIouLoss(none, none, { reduction: 'mean' }).item(), 0);
  });
});
