/**
 * Overlap metrics of label maps: per-class Dice = 2TP / (2TP + FP + FN) and IoU = TP / (TP + FP + FN).
 * A class absent from both prediction and target has no defined score: NaN, left out of means.
 * SegmentationMetrics accumulates a whole split two ways: pooled counts
 * (one Dice per class over every pixel of the split) and the mean of per-image scores (MONAI's
 * DiceMetric with ignore_empty: only the images whose truth holds the class score it), plus per-image HD95 when asked.
 */
import { hausdorffDistance } from './hausdorff.js';

export interface ConfusionCounts {
  tp: Float64Array;
  fp: Float64Array;
  fn: Float64Array;
}

function checkLabels(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  numClasses: number,
  op: string,
): void {
  if (pred.length !== target.length) {
    throw new Error(
      `${op}: prediction has ${pred.length} labels, target ${target.length}; they must cover the same pixels`,
    );
  }
  if (!(Number.isInteger(numClasses) && numClasses > 0)) {
    throw new Error(`${op}: numClasses must be a positive integer, got ${numClasses}`);
  }
}

/** Per-class true positives, false positives and false negatives of two label maps. */
export function confusionCounts(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  numClasses: number,
): ConfusionCounts {
  const op = 'confusionCounts';
  checkLabels(pred, target, numClasses, op);
  const tp = new Float64Array(numClasses);
  const fp = new Float64Array(numClasses);
  const fn = new Float64Array(numClasses);
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i];
    const t = target[i];
    if (!(p >= 0 && p < numClasses && t >= 0 && t < numClasses)) {
      throw new Error(`${op}: label at ${i} (predicted ${p}, target ${t}) is outside 0..${numClasses - 1}`);
    }
    if (p === t) tp[p]++;
    else {
      fp[p]++;
      fn[t]++;
    }
  }
  return { tp, fp, fn };
}

/** Dice per class from counts; NaN where the class is in neither map. */
export function diceFromCounts({ tp, fp, fn }: ConfusionCounts): number[] {
  return Array.from(tp, (t, c) => {
    const d = 2 * t + fp[c] + fn[c];
    return d === 0 ? Number.NaN : (2 * t) / d;
  });
}

/** IoU (Jaccard) per class from counts; NaN where the class is in neither map. */
export function iouFromCounts({ tp, fp, fn }: ConfusionCounts): number[] {
  return Array.from(tp, (t, c) => {
    const d = t + fp[c] + fn[c];
    return d === 0 ? Number.NaN : t / d;
  });
}

export function dicePerClass(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  numClasses: number,
): number[] {
  return diceFromCounts(confusionCounts(pred, target, numClasses));
}

export function iouPerClass(
  pred: ArrayLike<number>,
  target: ArrayLike<number>,
  numClasses: number,
): number[] {
  return iouFromCounts(confusionCounts(pred, target, numClasses));
}

/** Mean of the finite values (NaN when there are none). */
export function nanMean(values: readonly number[]): number {
  const ok = values.filter((v) => Number.isFinite(v));
  return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : Number.NaN;
}

export interface SegmentationSummary {
  classes: readonly string[];
  /** Pooled over the split, per class (background first). */
  dice: number[];
  iou: number[];
  /** Mean of `dice` / `iou` over the foreground classes (1..). */
  meanForegroundDice: number;
  meanForegroundIou: number;
  /** Per class, the mean over images of per-image Dice (images where the class is absent from both maps left out). */
  imageDice: number[];
  meanForegroundImageDice: number;
  /** Per class, the mean over images of HD95 in pixels/voxels (images with the class in both maps); empty without hd95. */
  hd95: number[];
  meanForegroundHd95: number;
  /** Pixel counts, confusion[truth][predicted], pooled over the split: which classes are taken for which. */
  confusion: number[][];
  images: number;
}

/** Accumulates the metrics of a split, image by image. */
export class SegmentationMetrics {
  private readonly counts: ConfusionCounts;
  private readonly imageDiceSum: Float64Array;
  private readonly imageDiceCount: Float64Array;
  private readonly hdSum: Float64Array;
  private readonly hdCount: Float64Array;
  private readonly confusion: Float64Array;
  images = 0;

  constructor(
    readonly classes: readonly string[],
    readonly options: { hd95?: boolean; spacing?: readonly number[] } = {},
  ) {
    const n = classes.length;
    this.counts = { tp: new Float64Array(n), fp: new Float64Array(n), fn: new Float64Array(n) };
    this.imageDiceSum = new Float64Array(n);
    this.imageDiceCount = new Float64Array(n);
    this.hdSum = new Float64Array(n);
    this.hdCount = new Float64Array(n);
    this.confusion = new Float64Array(n * n);
  }

  /** One image's predicted and true label maps, of spatial `shape` (needed for HD95). */
  update(pred: ArrayLike<number>, target: ArrayLike<number>, shape: readonly number[]): void {
    const n = this.classes.length;
    const c = confusionCounts(pred, target, n); // validates the labels
    for (let i = 0; i < pred.length; i++) this.confusion[target[i] * n + pred[i]]++;
    for (let k = 0; k < n; k++) {
      this.counts.tp[k] += c.tp[k];
      this.counts.fp[k] += c.fp[k];
      this.counts.fn[k] += c.fn[k];
    }
    // MONAI's DiceMetric (ignore_empty): an image whose truth lacks the class has no score for it,
    // whatever was predicted there (the pooled Dice counts those pixels as false positives).
    diceFromCounts(c).forEach((d, k) => {
      if (Number.isNaN(d) || c.tp[k] + c.fn[k] === 0) return;
      this.imageDiceSum[k] += d;
      this.imageDiceCount[k]++;
    });
    if (this.options.hd95) {
      for (let k = 1; k < n; k++) {
        // HD95 is defined when both maps hold the class (infinite when only one does; MONAI reports those as inf/nan).
        if (c.tp[k] + c.fn[k] === 0 || c.tp[k] + c.fp[k] === 0) continue;
        const p = Uint8Array.from(pred as ArrayLike<number>, (v) => (v === k ? 1 : 0));
        const t = Uint8Array.from(target as ArrayLike<number>, (v) => (v === k ? 1 : 0));
        this.hdSum[k] += hausdorffDistance(p, t, shape, { percentile: 95, spacing: this.options.spacing });
        this.hdCount[k]++;
      }
    }
    this.images++;
  }

  summary(): SegmentationSummary {
    const dice = diceFromCounts(this.counts);
    const iou = iouFromCounts(this.counts);
    const imageDice = Array.from(this.imageDiceSum, (s, k) =>
      this.imageDiceCount[k] ? s / this.imageDiceCount[k] : Number.NaN,
    );
    const hd95 = this.options.hd95
      ? Array.from(this.hdSum, (s, k) => (this.hdCount[k] ? s / this.hdCount[k] : Number.NaN))
      : [];
    return {
      classes: this.classes,
      dice,
      iou,
      meanForegroundDice: nanMean(dice.slice(1)),
      meanForegroundIou: nanMean(iou.slice(1)),
      imageDice,
      meanForegroundImageDice: nanMean(imageDice.slice(1)),
      hd95,
      meanForegroundHd95: nanMean(hd95.slice(1)),
      confusion: this.classes.map((_, t) =>
        Array.from(this.confusion.subarray(t * this.classes.length, (t + 1) * this.classes.length)),
      ),
      images: this.images,
    };
  }
}
