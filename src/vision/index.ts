/** Detection utilities: boxes, NMS, RoIAlign, anchors, the assignment problem, AP, figures. */
export {
  type AveragePrecisionOptions,
  type AveragePrecisionResult,
  COCO_IOU_THRESHOLDS,
  type GroundTruth,
  meanAveragePrecision,
  type ScoredDetection,
} from './average_precision.js';
export {
  AnchorGenerator,
  type AnchorGeneratorOptions,
  type BoxFormat,
  BoxCoder,
  batchedNms,
  boxArea,
  boxConvert,
  boxIou,
  checkXyxyBoxes,
  clipBoxesToImage,
  generalizedBoxIou,
  generalizedBoxIouLoss,
  nms,
  type RoiAlignOptions,
  removeSmallBoxes,
  roiAlign,
} from './boxes.js';
export { type DetectionFigureOptions, detectionFigure, type FigureDetection } from './detection_figure.js';
export { type LinearSumAssignment, linearSumAssignment } from './hungarian.js';
