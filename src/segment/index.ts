/** Segmentation: losses, overlap and surface-distance metrics, sliding-window inference. */
export { type DiceCeLossOptions, type DiceLossOptions, diceCeLoss, diceLoss, oneHot } from './losses.js';
export {
  type ConfusionCounts,
  confusionCounts,
  diceFromCounts,
  dicePerClass,
  iouFromCounts,
  iouPerClass,
  nanMean,
  SegmentationMetrics,
  type SegmentationSummary,
} from './metrics.js';
export {
  distanceToNearest,
  type HausdorffOptions,
  hausdorffDistance,
  hd95,
  maskEdges,
  percentile,
} from './hausdorff.js';
export {
  importanceMap,
  type SlidingWindowOptions,
  slidingWindowInference,
  windowStarts,
} from './sliding_window.js';
