/**
 * COCO-style detection metrics (pycocotools' COCOeval for boxes, without crowd or area ranges):
 * per class and IoU threshold, detections are taken by decreasing score and each is matched to the
 * unmatched ground-truth box of its image and class with the highest IoU at or above the threshold;
 * precision is made monotone and read at 101 recall points; AP is their mean. mAP averages over the
 * classes that have ground truth and over the thresholds 0.50:0.05:0.95; AP50 uses 0.5 alone.
 */

export type Box = readonly [number, number, number, number];

export interface ScoredDetection {
  box: Box;
  score: number;
  label: number;
}

export interface GroundTruth {
  boxes: readonly Box[];
  labels: readonly number[];
}

export interface AveragePrecisionOptions {
  /** IoU thresholds (default COCO's 0.50, 0.55, ..., 0.95). */
  iouThresholds?: readonly number[];
  /** Highest-scoring detections kept per image and class (COCO: 100). */
  maxDetections?: number;
}

export interface AveragePrecisionResult {
  /** Mean over classes and thresholds (COCO's AP). */
  map: number;
  /** AP at IoU 0.5 averaged over classes (NaN when 0.5 is not among the thresholds). */
  map50: number;
  /** AP at IoU 0.75 averaged over classes (NaN when 0.75 is not among the thresholds). */
  map75: number;
  /** Per class with ground truth: AP averaged over thresholds, and AP at 0.5. */
  perClass: Map<number, { ap: number; ap50: number }>;
}

export const COCO_IOU_THRESHOLDS: readonly number[] = Array.from({ length: 10 }, (_, i) => 0.5 + 0.05 * i);

function iou(a: Box, b: Box): number {
  const inter =
    Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0])) *
    Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** AP of one class at one threshold from (score, matched) pairs over all images and the GT count. */
function averagePrecision(hits: Array<{ score: number; tp: boolean }>, numGt: number): number {
  hits.sort((a, b) => b.score - a.score);
  const precision: number[] = [];
  const recall: number[] = [];
  let tp = 0;
  let fp = 0;
  for (const h of hits) {
    if (h.tp) tp++;
    else fp++;
    precision.push(tp / (tp + fp));
    recall.push(tp / numGt);
  }
  for (let i = precision.length - 1; i > 0; i--) precision[i - 1] = Math.max(precision[i - 1], precision[i]);
  let sum = 0;
  for (let r = 0; r <= 100; r++) {
    const threshold = r / 100;
    // First point whose recall reaches the threshold (searchsorted, side 'left').
    let lo = 0;
    let hi = recall.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (recall[mid] < threshold) lo = mid + 1;
      else hi = mid;
    }
    if (lo < precision.length) sum += precision[lo];
  }
  return sum / 101;
}

/** COCO-style mAP, AP50 and AP75 of detections against ground truth, image by image. */
export function meanAveragePrecision(
  detections: ReadonlyArray<readonly ScoredDetection[]>,
  groundTruths: readonly GroundTruth[],
  options: AveragePrecisionOptions = {},
): AveragePrecisionResult {
  const op = 'meanAveragePrecision';
  const thresholds = options.iouThresholds ?? COCO_IOU_THRESHOLDS;
  const maxDetections = options.maxDetections ?? 100;
  if (detections.length !== groundTruths.length) {
    throw new Error(
      `${op}: detections for ${detections.length} images but ground truth for ${groundTruths.length}; give one (possibly empty) list per image`,
    );
  }
  const classes = new Set<number>();
  groundTruths.forEach((g, i) => {
    if (g.boxes.length !== g.labels.length) {
      throw new Error(
        `${op}: image ${i} has ${g.boxes.length} ground-truth boxes but ${g.labels.length} labels`,
      );
    }
    for (const b of g.boxes) {
      if (!(b[2] >= b[0] && b[3] >= b[1])) {
        throw new Error(
          `${op}: image ${i} has a ground-truth box [${b}] with negative width or height; boxes are (x1, y1, x2, y2)`,
        );
      }
    }
    for (const l of g.labels) classes.add(l);
  });
  const perThreshold = thresholds.map(() => [] as number[]);
  const perClass = new Map<number, { ap: number; ap50: number }>();
  for (const c of [...classes].sort((a, b) => a - b)) {
    const aps = thresholds.map((t) => {
      const hits: Array<{ score: number; tp: boolean }> = [];
      let numGt = 0;
      groundTruths.forEach((g, i) => {
        const gts = g.boxes.filter((_, k) => g.labels[k] === c);
        numGt += gts.length;
        const dets = detections[i]
          .filter((d) => d.label === c)
          .sort((a, b) => b.score - a.score)
          .slice(0, maxDetections);
        const taken = new Uint8Array(gts.length);
        for (const d of dets) {
          let best = -1;
          let bestIou = Math.min(t, 1 - 1e-10);
          gts.forEach((gt, k) => {
            if (taken[k]) return;
            const v = iou(d.box, gt);
            if (v >= bestIou) {
              bestIou = v;
              best = k;
            }
          });
          if (best >= 0) taken[best] = 1;
          hits.push({ score: d.score, tp: best >= 0 });
        }
      });
      return averagePrecision(hits, numGt);
    });
    aps.forEach((ap, k) => {
      perThreshold[k].push(ap);
    });
    const at50 = thresholds.findIndex((t) => Math.abs(t - 0.5) < 1e-9);
    perClass.set(c, { ap: mean(aps), ap50: at50 >= 0 ? aps[at50] : Number.NaN });
  }
  const at = (v: number) => {
    const k = thresholds.findIndex((t) => Math.abs(t - v) < 1e-9);
    return k >= 0 ? mean(perThreshold[k]) : Number.NaN;
  };
  return { map: mean(perThreshold.map(mean)), map50: at(0.5), map75: at(0.75), perClass };
}

function mean(values: readonly number[]): number {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : Number.NaN;
}
