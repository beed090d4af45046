/**
 * Box utilities with torchvision's semantics: format conversion, area, IoU and generalized IoU
 * (pairwise, and the elementwise GIoU loss), NMS and class-aware NMS, RoIAlign, the R-CNN box coder
 * and the anchor generator. Boxes are float32 (N, 4) tensors, (x1, y1, x2, y2) unless a format says
 * otherwise. IoU, GIoU, the box coder and RoIAlign are differentiable (the first three composed from
 * ops, RoIAlign with its own backward); NMS returns indices and is not.
 */
import { add, clamp, div, exp, log, maximum, minimum, mul, sub } from '../ops/elementwise.js';
import { mean, sum } from '../ops/reduce.js';
import { reshape, select, slice, stack, unbind, unsqueeze } from '../ops/shape.js';
import { isGradEnabled, record } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

export type BoxFormat = 'xyxy' | 'xywh' | 'cxcywh';

const FORMATS: readonly BoxFormat[] = ['xyxy', 'xywh', 'cxcywh'];

function checkBoxShape(boxes: Tensor, op: string, what = 'boxes'): void {
  if (boxes.dtype !== 'float32' || boxes.ndim < 1 || boxes.shape[boxes.ndim - 1] !== 4) {
    throw new Error(
      `${op}: ${what} must be a float32 (..., 4) tensor, got ${boxes.dtype} ${fmt(boxes.shape)}`,
    );
  }
}

/**
 * Rejects (x1, y1, x2, y2) boxes with x2 < x1 or y2 < y1 or non-finite coordinates: every IoU formula
 * silently returns garbage for them (negative areas), so the error is raised where they enter.
 */
export function checkXyxyBoxes(boxes: Tensor, op: string, what = 'boxes'): void {
  checkBoxShape(boxes, op, what);
  const d = boxes.data;
  for (let i = 0; i < d.length; i += 4) {
    const [x1, y1, x2, y2] = [d[i], d[i + 1], d[i + 2], d[i + 3]];
    if (!(x2 >= x1 && y2 >= y1) || !Number.isFinite(x1 + y1 + x2 + y2)) {
      throw new Error(
        `${op}: ${what}[${i / 4}] = [${x1}, ${y1}, ${x2}, ${y2}] is not an (x1, y1, x2, y2) box with x2 >= x1 and y2 >= y1; convert cxcywh/xywh boxes with boxConvert and drop degenerate ones`,
      );
    }
  }
}

/** torchvision.ops.box_convert between 'xyxy', 'xywh' (corner + size) and 'cxcywh' (center + size). */
export function boxConvert(boxes: Tensor, inFmt: BoxFormat, outFmt: BoxFormat): Tensor {
  const op = 'boxConvert';
  for (const f of [inFmt, outFmt]) {
    if (!FORMATS.includes(f))
      throw new Error(`${op}: format must be one of ${FORMATS.join(', ')}, got '${f}'`);
  }
  checkBoxShape(boxes, op);
  if (inFmt === outFmt) return boxes;
  const [a, b, c, d] = unbind(boxes, -1);
  let xyxy: Tensor[];
  if (inFmt === 'xyxy') xyxy = [a, b, c, d];
  else if (inFmt === 'xywh') xyxy = [a, b, add(a, c), add(b, d)];
  else {
    const hw = mul(c, 0.5);
    const hh = mul(d, 0.5);
    xyxy = [sub(a, hw), sub(b, hh), add(a, hw), add(b, hh)];
  }
  const [x1, y1, x2, y2] = xyxy;
  if (outFmt === 'xyxy') return stack(xyxy, -1);
  const w = sub(x2, x1);
  const h = sub(y2, y1);
  if (outFmt === 'xywh') return stack([x1, y1, w, h], -1);
  return stack([mul(add(x1, x2), 0.5), mul(add(y1, y2), 0.5), w, h], -1);
}

/** (..., 4) xyxy → (...) areas. */
export function boxArea(boxes: Tensor): Tensor {
  checkBoxShape(boxes, 'boxArea');
  const [x1, y1, x2, y2] = unbind(boxes, -1);
  return mul(sub(x2, x1), sub(y2, y1));
}

function checkPair(boxes1: Tensor, boxes2: Tensor, op: string): void {
  for (const [b, what] of [
    [boxes1, 'boxes1'],
    [boxes2, 'boxes2'],
  ] as const) {
    if (b.ndim !== 2) throw new Error(`${op}: ${what} must be (N, 4), got ${fmt(b.shape)}`);
    checkXyxyBoxes(b, op, what);
  }
}

/** Pairwise intersection and union, (N, M) each. */
function interUnion(boxes1: Tensor, boxes2: Tensor): { inter: Tensor; union: Tensor } {
  const a = unsqueeze(boxes1, 1); // (N, 1, 4) against (M, 4)
  const lt = maximum(slice(a, 2, 0, 2), slice(boxes2, 1, 0, 2)); // (N, M, 2)
  const rb = minimum(slice(a, 2, 2, 4), slice(boxes2, 1, 2, 4));
  const wh = clamp(sub(rb, lt), 0);
  const inter = mul(select(wh, 2, 0), select(wh, 2, 1));
  const union = sub(add(unsqueeze(boxArea(boxes1), 1), boxArea(boxes2)), inter);
  return { inter, union };
}

/**
 * Pairwise IoU or GIoU without a graph: the matchers' hot path (queries x targets, anchors x
 * ground truth), where composing a dozen broadcast ops would dominate the cost.
 */
function pairwiseRaw(boxes1: Tensor, boxes2: Tensor, generalized: boolean): Tensor {
  const n = boxes1.shape[0];
  const m = boxes2.shape[0];
  const a = boxes1.data;
  const b = boxes2.data;
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const [ax1, ay1, ax2, ay2] = [a[4 * i], a[4 * i + 1], a[4 * i + 2], a[4 * i + 3]];
    const areaA = (ax2 - ax1) * (ay2 - ay1);
    for (let j = 0; j < m; j++) {
      const [bx1, by1, bx2, by2] = [b[4 * j], b[4 * j + 1], b[4 * j + 2], b[4 * j + 3]];
      const inter =
        Math.max(0, Math.min(ax2, bx2) - Math.max(ax1, bx1)) *
        Math.max(0, Math.min(ay2, by2) - Math.max(ay1, by1));
      const union = areaA + (bx2 - bx1) * (by2 - by1) - inter;
      let v = inter / union;
      if (generalized) {
        const enclosing =
          (Math.max(ax2, bx2) - Math.min(ax1, bx1)) * (Math.max(ay2, by2) - Math.min(ay1, by1));
        v -= (enclosing - union) / enclosing;
      }
      out[i * m + j] = v;
    }
  }
  return new Tensor(out, [n, m]);
}

function tracked(boxes1: Tensor, boxes2: Tensor): boolean {
  return isGradEnabled() && (boxes1.requiresGrad || boxes2.requiresGrad);
}

/** torchvision.ops.box_iou: (N, 4), (M, 4) xyxy → (N, M) intersection over union. */
export function boxIou(boxes1: Tensor, boxes2: Tensor): Tensor {
  checkPair(boxes1, boxes2, 'boxIou');
  if (!tracked(boxes1, boxes2)) return pairwiseRaw(boxes1, boxes2, false);
  const { inter, union } = interUnion(boxes1, boxes2);
  return div(inter, union);
}

/**
 * torchvision.ops.generalized_box_iou: (N, 4), (M, 4) xyxy → (N, M) GIoU = IoU - (|C| - |A∪B|) / |C|
 * with C the smallest box enclosing both (Rezatofighi et al.), in [-1, 1].
 */
export function generalizedBoxIou(boxes1: Tensor, boxes2: Tensor): Tensor {
  checkPair(boxes1, boxes2, 'generalizedBoxIou');
  if (!tracked(boxes1, boxes2)) return pairwiseRaw(boxes1, boxes2, true);
  const { inter, union } = interUnion(boxes1, boxes2);
  const a = unsqueeze(boxes1, 1);
  const lt = minimum(slice(a, 2, 0, 2), slice(boxes2, 1, 0, 2));
  const rb = maximum(slice(a, 2, 2, 4), slice(boxes2, 1, 2, 4));
  const wh = clamp(sub(rb, lt), 0);
  const enclosing = mul(select(wh, 2, 0), select(wh, 2, 1));
  return sub(div(inter, union), div(sub(enclosing, union), enclosing));
}

export type BoxLossReduction = 'none' | 'mean' | 'sum';

/**
 * torchvision.ops.generalized_box_iou_loss: 1 - GIoU of matching rows of (N, 4) and (N, 4) xyxy boxes,
 * eps added to the union and the enclosing area (default 1e-7; DETR's loss is eps 0).
 */
export function generalizedBoxIouLoss(
  boxes1: Tensor,
  boxes2: Tensor,
  options: { reduction?: BoxLossReduction; eps?: number } = {},
): Tensor {
  const op = 'generalizedBoxIouLoss';
  const { reduction = 'none', eps = 1e-7 } = options;
  checkXyxyBoxes(boxes1, op, 'boxes1');
  checkXyxyBoxes(boxes2, op, 'boxes2');
  if (boxes1.shape.join() !== boxes2.shape.join()) {
    throw new Error(
      `${op}: boxes1 ${fmt(boxes1.shape)} and boxes2 ${fmt(boxes2.shape)} must pair up row by row`,
    );
  }
  const [x1, y1, x2, y2] = unbind(boxes1, -1);
  const [x1g, y1g, x2g, y2g] = unbind(boxes2, -1);
  const iw = clamp(sub(minimum(x2, x2g), maximum(x1, x1g)), 0);
  const ih = clamp(sub(minimum(y2, y2g), maximum(y1, y1g)), 0);
  const inter = mul(iw, ih);
  const union = sub(add(mul(sub(x2, x1), sub(y2, y1)), mul(sub(x2g, x1g), sub(y2g, y1g))), inter);
  const iou = div(inter, add(union, eps));
  const cw = sub(maximum(x2, x2g), minimum(x1, x1g));
  const ch = sub(maximum(y2, y2g), minimum(y1, y1g));
  const enclosing = mul(cw, ch);
  const giou = sub(iou, div(sub(enclosing, union), add(enclosing, eps)));
  const loss = sub(1, giou);
  if (reduction === 'none') return loss;
  if (reduction === 'sum') return sum(loss);
  if (reduction === 'mean') return loss.size === 0 ? sum(loss) : mean(loss);
  throw new Error(`${op}: reduction must be 'none', 'mean' or 'sum', got '${reduction}'`);
}

function int64(values: ArrayLike<number>): Tensor {
  return new Tensor(Float64Array.from(values), [values.length]);
}

function checkScores(boxes: Tensor, scores: Tensor, op: string): void {
  if (boxes.ndim !== 2) throw new Error(`${op}: boxes must be (N, 4), got ${fmt(boxes.shape)}`);
  checkXyxyBoxes(boxes, op);
  if (scores.ndim !== 1 || scores.size !== boxes.shape[0]) {
    throw new Error(
      `${op}: scores must be (N,) = (${boxes.shape[0]},) for boxes ${fmt(boxes.shape)}, got ${fmt(scores.shape)}`,
    );
  }
  for (let i = 0; i < scores.size; i++) {
    if (Number.isNaN(scores.data[i])) throw new Error(`${op}: scores[${i}] is NaN`);
  }
}

/** Indices of `subset` (positions into boxes) kept by greedy NMS, highest score first. */
function nmsIndices(boxes: Tensor, scores: Tensor, subset: number[], iouThreshold: number): number[] {
  const b = boxes.data;
  const order = [...subset].sort((i, j) => scores.data[j] - scores.data[i] || i - j);
  const suppressed = new Uint8Array(order.length);
  const keep: number[] = [];
  for (let a = 0; a < order.length; a++) {
    if (suppressed[a]) continue;
    const i = order[a];
    keep.push(i);
    const [ix1, iy1, ix2, iy2] = [b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]];
    const iarea = (ix2 - ix1) * (iy2 - iy1);
    for (let c = a + 1; c < order.length; c++) {
      if (suppressed[c]) continue;
      const j = order[c];
      const w = Math.max(0, Math.min(ix2, b[4 * j + 2]) - Math.max(ix1, b[4 * j]));
      const h = Math.max(0, Math.min(iy2, b[4 * j + 3]) - Math.max(iy1, b[4 * j + 1]));
      const inter = w * h;
      const jarea = (b[4 * j + 2] - b[4 * j]) * (b[4 * j + 3] - b[4 * j + 1]);
      if (inter / (iarea + jarea - inter) > iouThreshold) suppressed[c] = 1;
    }
  }
  return keep;
}

/**
 * torchvision.ops.nms: greedy non-maximum suppression. Drops every box whose IoU with a kept,
 * higher-scoring box exceeds iouThreshold; returns the kept indices (int64) by decreasing score.
 */
export function nms(boxes: Tensor, scores: Tensor, iouThreshold: number): Tensor {
  checkScores(boxes, scores, 'nms');
  const all = Array.from({ length: scores.size }, (_, i) => i);
  return int64(nmsIndices(boxes, scores, all, iouThreshold));
}

/**
 * torchvision.ops.batched_nms: NMS within each category of idxs (int32/int64, one per box), never
 * across; kept indices (int64) by decreasing score.
 */
export function batchedNms(boxes: Tensor, scores: Tensor, idxs: Tensor, iouThreshold: number): Tensor {
  const op = 'batchedNms';
  checkScores(boxes, scores, op);
  if (idxs.ndim !== 1 || idxs.size !== scores.size || idxs.dtype === 'float32') {
    throw new Error(
      `${op}: idxs must be an integer (N,) tensor of categories, got ${idxs.dtype} ${fmt(idxs.shape)}`,
    );
  }
  const groups = new Map<number, number[]>();
  for (let i = 0; i < idxs.size; i++) {
    const g = groups.get(idxs.data[i]);
    if (g) g.push(i);
    else groups.set(idxs.data[i], [i]);
  }
  const keep: number[] = [];
  for (const members of groups.values()) keep.push(...nmsIndices(boxes, scores, members, iouThreshold));
  keep.sort((i, j) => scores.data[j] - scores.data[i] || i - j);
  return int64(keep);
}

/** torchvision.ops.clip_boxes_to_image: x clamped to [0, width], y to [0, height]. */
export function clipBoxesToImage(boxes: Tensor, imageSize: readonly [number, number]): Tensor {
  checkBoxShape(boxes, 'clipBoxesToImage');
  const [h, w] = imageSize;
  const [x1, y1, x2, y2] = unbind(boxes, -1);
  const cx = (t: Tensor) => clamp(t, 0, w);
  const cy = (t: Tensor) => clamp(t, 0, h);
  return stack([cx(x1), cy(y1), cx(x2), cy(y2)], -1);
}

/** torchvision.ops.remove_small_boxes: indices (int64) of boxes at least minSize wide and high. */
export function removeSmallBoxes(boxes: Tensor, minSize: number): Tensor {
  checkBoxShape(boxes, 'removeSmallBoxes');
  const d = boxes.data;
  const keep: number[] = [];
  for (let i = 0; i < d.length / 4; i++) {
    if (d[4 * i + 2] - d[4 * i] >= minSize && d[4 * i + 3] - d[4 * i + 1] >= minSize) keep.push(i);
  }
  return int64(keep);
}

export interface RoiAlignOptions {
  /** Scale from box coordinates to feature-map coordinates (1 / stride). */
  spatialScale?: number;
  /** Sample points per bin side; <= 0 chooses ceil(roi size / output size) adaptively. */
  samplingRatio?: number;
  /** Shift box coordinates by -0.5 so that a pixel's center is at its integer coordinate (Detectron2). */
  aligned?: boolean;
}

/**
 * Bilinear taps of one RoIAlign sample point, torchvision's border rules: a point more than one
 * pixel outside the map contributes nothing; coordinates below 0 clamp to 0, at the last row/col
 * the point snaps onto it.
 */
function bilinearTaps(
  y0: number,
  x0: number,
  height: number,
  width: number,
  push: (index: number, weight: number) => void,
): void {
  if (y0 < -1 || y0 > height || x0 < -1 || x0 > width) return;
  let y = Math.max(y0, 0);
  let x = Math.max(x0, 0);
  let yLow = Math.floor(y);
  let xLow = Math.floor(x);
  let yHigh: number;
  let xHigh: number;
  if (yLow >= height - 1) {
    yHigh = yLow = height - 1;
    y = yLow;
  } else yHigh = yLow + 1;
  if (xLow >= width - 1) {
    xHigh = xLow = width - 1;
    x = xLow;
  } else xHigh = xLow + 1;
  const ly = y - yLow;
  const lx = x - xLow;
  const hy = 1 - ly;
  const hx = 1 - lx;
  push(yLow * width + xLow, hy * hx);
  push(yLow * width + xHigh, hy * lx);
  push(yHigh * width + xLow, ly * hx);
  push(yHigh * width + xHigh, ly * lx);
}

/**
 * torchvision.ops.roi_align: (N, C, H, W) features, boxes as a (K, 5) tensor of
 * (batch index, x1, y1, x2, y2) or a list of (K_i, 4) per image → (K, C, outH, outW). Each output bin
 * averages bilinear samples on a regular grid inside it. Differentiable with respect to the input.
 */
export function roiAlign(
  input: Tensor,
  boxes: Tensor | readonly Tensor[],
  outputSize: number | readonly [number, number],
  options: RoiAlignOptions = {},
): Tensor {
  const op = 'roiAlign';
  const { spatialScale = 1, samplingRatio = -1, aligned = false } = options;
  if (input.ndim !== 4 || input.dtype !== 'float32') {
    throw new Error(
      `${op}: input must be a float32 (N, C, H, W) tensor, got ${input.dtype} ${fmt(input.shape)}`,
    );
  }
  const rois = Array.isArray(boxes) ? roisFromList(boxes as readonly Tensor[], op) : (boxes as Tensor);
  if (rois.ndim !== 2 || rois.shape[1] !== 5 || rois.dtype !== 'float32') {
    throw new Error(
      `${op}: boxes must be a float32 (K, 5) tensor of (batch index, x1, y1, x2, y2) or a list of (K_i, 4), got ${fmt(rois.shape)}`,
    );
  }
  const [n, channels, height, width] = input.shape;
  const [outH, outW] = typeof outputSize === 'number' ? [outputSize, outputSize] : outputSize;
  const k = rois.shape[0];
  const bins = outH * outW;
  const offset = aligned ? 0.5 : 0;
  // Per roi, its image and the sparse (bin, pixel, weight) taps shared by every channel.
  const plans: Array<{ image: number; bin: number[]; pixel: number[]; weight: number[] }> = [];
  for (let r = 0; r < k; r++) {
    const d = rois.data;
    const image = d[5 * r];
    if (!Number.isInteger(image) || image < 0 || image >= n) {
      throw new Error(`${op}: box ${r} names batch index ${image}, the input has ${n} images`);
    }
    const startW = d[5 * r + 1] * spatialScale - offset;
    const startH = d[5 * r + 2] * spatialScale - offset;
    let roiW = d[5 * r + 3] * spatialScale - offset - startW;
    let roiH = d[5 * r + 4] * spatialScale - offset - startH;
    if (!aligned) {
      roiW = Math.max(roiW, 1);
      roiH = Math.max(roiH, 1);
    }
    const binH = roiH / outH;
    const binW = roiW / outW;
    const gridH = samplingRatio > 0 ? samplingRatio : Math.ceil(roiH / outH);
    const gridW = samplingRatio > 0 ? samplingRatio : Math.ceil(roiW / outW);
    const count = Math.max(gridH * gridW, 1);
    const plan = { image, bin: [] as number[], pixel: [] as number[], weight: [] as number[] };
    for (let ph = 0; ph < outH; ph++) {
      for (let pw = 0; pw < outW; pw++) {
        const bin = ph * outW + pw;
        for (let iy = 0; iy < gridH; iy++) {
          const y = startH + ph * binH + ((iy + 0.5) * binH) / gridH;
          for (let ix = 0; ix < gridW; ix++) {
            const x = startW + pw * binW + ((ix + 0.5) * binW) / gridW;
            bilinearTaps(y, x, height, width, (pixel, w) => {
              plan.bin.push(bin);
              plan.pixel.push(pixel);
              plan.weight.push(w / count);
            });
          }
        }
      }
    }
    plans.push(plan);
  }
  const plane = height * width;
  const out = new Float32Array(k * channels * bins);
  const x = input.data as Float32Array;
  plans.forEach((p, r) => {
    for (let c = 0; c < channels; c++) {
      const src = (p.image * channels + c) * plane;
      const dst = (r * channels + c) * bins;
      for (let t = 0; t < p.bin.length; t++) out[dst + p.bin[t]] += p.weight[t] * x[src + p.pixel[t]];
    }
  });
  return record(new Tensor(out, [k, channels, outH, outW]), op, [input], (g) => {
    const gx = new Float32Array(input.size);
    const gd = g.data as Float32Array;
    plans.forEach((p, r) => {
      for (let c = 0; c < channels; c++) {
        const dst = (p.image * channels + c) * plane;
        const src = (r * channels + c) * bins;
        for (let t = 0; t < p.bin.length; t++) gx[dst + p.pixel[t]] += p.weight[t] * gd[src + p.bin[t]];
      }
    });
    return [new Tensor(gx, input.shape)];
  });
}

function roisFromList(list: readonly Tensor[], op: string): Tensor {
  const rows: number[] = [];
  list.forEach((b, image) => {
    if (b.ndim !== 2 || b.shape[1] !== 4)
      throw new Error(`${op}: boxes[${image}] must be (K, 4), got ${fmt(b.shape)}`);
    for (let i = 0; i < b.shape[0]; i++) rows.push(image, ...Array.from(b.data.subarray(4 * i, 4 * i + 4)));
  });
  return new Tensor(Float32Array.from(rows), [rows.length / 5, 5]);
}

/**
 * The R-CNN box parameterization (torchvision's BoxCoder): a box relative to a reference (anchor or
 * proposal) as (dx, dy, dw, dh) = (wx (cx - cx_a) / w_a, wy (cy - cy_a) / h_a, ww log(w / w_a),
 * wh log(h / h_a)). Decoding clamps dw, dh at bboxXformClip so exp cannot overflow.
 */
export class BoxCoder {
  readonly weights: readonly [number, number, number, number];
  readonly bboxXformClip: number;

  constructor(
    weights: readonly [number, number, number, number] = [1, 1, 1, 1],
    bboxXformClip = Math.log(1000 / 16),
  ) {
    this.weights = weights;
    this.bboxXformClip = bboxXformClip;
  }

  /** (N, 4) target boxes and (N, 4) references (xyxy) → (N, 4) regression targets. */
  encode(targetBoxes: Tensor, references: Tensor): Tensor {
    checkBoxShape(targetBoxes, 'BoxCoder.encode', 'targetBoxes');
    checkBoxShape(references, 'BoxCoder.encode', 'references');
    if (targetBoxes.shape.join() !== references.shape.join()) {
      throw new Error(
        `BoxCoder.encode: targetBoxes ${fmt(targetBoxes.shape)} and references ${fmt(references.shape)} must pair up`,
      );
    }
    const [wx, wy, ww, wh] = this.weights;
    const [rx, ry, rw, rh] = centers(references);
    const [gx, gy, gw, gh] = centers(targetBoxes);
    return stack(
      [
        mul(div(sub(gx, rx), rw), wx),
        mul(div(sub(gy, ry), rh), wy),
        mul(log(div(gw, rw)), ww),
        mul(log(div(gh, rh)), wh),
      ],
      -1,
    );
  }

  /** (N, 4k) deltas relative to (N, 4) references → (N, 4k) xyxy boxes. */
  decode(deltas: Tensor, references: Tensor): Tensor {
    checkBoxShape(references, 'BoxCoder.decode', 'references');
    const n = references.shape[0];
    if (deltas.ndim !== 2 || deltas.shape[0] !== n || deltas.shape[1] % 4 !== 0) {
      throw new Error(`BoxCoder.decode: deltas must be (N, 4k) with N = ${n}, got ${fmt(deltas.shape)}`);
    }
    const k = deltas.shape[1] / 4;
    const [wx, wy, ww, wh] = this.weights;
    const [rx, ry, rw, rh] = centers(references).map((t) => unsqueeze(t, 1)); // (N, 1)
    const [dx, dy, dw, dh] = unbind(reshape(deltas, [n, k, 4]), -1); // (N, k)
    const cx = add(mul(div(dx, wx), rw), rx);
    const cy = add(mul(div(dy, wy), rh), ry);
    const w = mul(exp(clamp(div(dw, ww), null, this.bboxXformClip)), rw);
    const h = mul(exp(clamp(div(dh, wh), null, this.bboxXformClip)), rh);
    const halfW = mul(w, 0.5);
    const halfH = mul(h, 0.5);
    const boxes = stack([sub(cx, halfW), sub(cy, halfH), add(cx, halfW), add(cy, halfH)], -1); // (N, k, 4)
    return reshape(boxes, [n, 4 * k]);
  }
}

/** (cx, cy, w, h) columns of xyxy boxes, torchvision's convention (ctr = x1 + 0.5 w). */
function centers(boxes: Tensor): Tensor[] {
  const [x1, y1, x2, y2] = unbind(boxes, -1);
  const w = sub(x2, x1);
  const h = sub(y2, y1);
  return [add(x1, mul(w, 0.5)), add(y1, mul(h, 0.5)), w, h];
}

/** Rounds half to even in float32, as torch.round does. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export interface AnchorGeneratorOptions {
  /** Anchor sides (sqrt of area) per feature level. */
  sizes?: ReadonlyArray<readonly number[]>;
  /** Height / width ratios per feature level. */
  aspectRatios?: ReadonlyArray<readonly number[]>;
}

/**
 * torchvision's AnchorGenerator: at every cell of every feature level, one anchor per (ratio, size)
 * pair (ratios outer, sizes inner), centered on the cell's top-left corner in image pixels,
 * (-w/2, -h/2, w/2, h/2) rounded, with h / w = ratio and w h = size^2. The cell stride is
 * image size // feature size per axis.
 */
export class AnchorGenerator {
  readonly sizes: ReadonlyArray<readonly number[]>;
  readonly aspectRatios: ReadonlyArray<readonly number[]>;
  /** (A_l, 4) base anchors per level. */
  readonly cellAnchors: Tensor[];

  constructor(options: AnchorGeneratorOptions = {}) {
    this.sizes = options.sizes ?? [[128, 256, 512]];
    this.aspectRatios = options.aspectRatios ?? this.sizes.map(() => [0.5, 1, 2]);
    if (this.sizes.length !== this.aspectRatios.length) {
      throw new Error(
        `AnchorGenerator: ${this.sizes.length} levels of sizes but ${this.aspectRatios.length} of aspect ratios; give one list of each per feature level`,
      );
    }
    this.cellAnchors = this.sizes.map((scales, l) => {
      const rows: number[] = [];
      for (const ratio of this.aspectRatios[l]) {
        if (!(ratio > 0 && scales.every((s) => s > 0))) {
          throw new Error(`AnchorGenerator: sizes and aspect ratios must be positive (level ${l})`);
        }
        const hRatio = Math.fround(Math.sqrt(ratio));
        const wRatio = Math.fround(1 / hRatio);
        for (const s of scales) {
          const w = Math.fround(wRatio * s);
          const h = Math.fround(hRatio * s);
          rows.push(...[-w, -h, w, h].map((v) => roundHalfEven(Math.fround(v / 2))));
        }
      }
      return new Tensor(Float32Array.from(rows), [rows.length / 4, 4]);
    });
  }

  numAnchorsPerLocation(): number[] {
    return this.cellAnchors.map((a) => a.shape[0]);
  }

  /**
   * All anchors of an image of imageSize (h, w) whose feature levels have featureSizes [(h_l, w_l)]:
   * (Σ h_l w_l A_l, 4), level by level, each in (y, x, anchor) order.
   */
  gridAnchors(
    imageSize: readonly [number, number],
    featureSizes: ReadonlyArray<readonly [number, number]>,
  ): Tensor {
    if (featureSizes.length !== this.cellAnchors.length) {
      throw new Error(
        `AnchorGenerator: ${featureSizes.length} feature maps but anchors for ${this.cellAnchors.length} levels; give sizes and aspect ratios per feature map`,
      );
    }
    const rows: number[] = [];
    featureSizes.forEach(([fh, fw], l) => {
      const strideH = Math.floor(imageSize[0] / fh);
      const strideW = Math.floor(imageSize[1] / fw);
      const base = this.cellAnchors[l].data;
      for (let y = 0; y < fh; y++) {
        for (let x = 0; x < fw; x++) {
          const sx = x * strideW;
          const sy = y * strideH;
          for (let a = 0; a < base.length; a += 4)
            rows.push(sx + base[a], sy + base[a + 1], sx + base[a + 2], sy + base[a + 3]);
        }
      }
    });
    return new Tensor(Float32Array.from(rows), [rows.length / 4, 4]);
  }
}
