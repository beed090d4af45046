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
export {
  CHECKPOINT_FORMAT,
  createSegmentationModel,
  type LoadedSegmentationModel,
  loadSegmentationCheckpoint,
  modelInChannels,
  modelInputSize,
  predictLabels,
  type SegmentationCheckpointInfo,
  type SegmentationModel,
  type SegmentationModelKind,
  saveSegmentationCheckpoint,
} from './model.js';
export {
  busiestSlices,
  CLASS_COLORS,
  classColor,
  orthogonalSlices,
  overlayLabels,
  type RgbPicture,
  sliceOverlays,
  tilePictures,
  writePicture,
} from './render.js';
export {
  describeHardware,
  evaluateSegmentation,
  getSegmentPreset,
  loadPresetData,
  SEGMENT_PRESETS,
  type SegmentPreset,
  type TrainSegmentationOptions,
  type TrainSegmentationResult,
  trainSegmentation,
} from './train.js';
export { readVolume, type Volume, writeNiftiLabels, writeNpyUint8 } from './volume_io.js';
