/** glimpse: attention and transformers for images. The public API (see DESIGN.md). */
import * as F from './ops/index.js';

export { F };
export { getBackend, listBackends, registerBackend, setBackend, withBackend } from './backend/backend.js';
// Registers the native backend and makes it the default when its addon loads (js otherwise).
import './backend/native.js';
export { enableGrad, isGradEnabled, noGrad } from './tensor/autograd.js';
export type { DType } from './tensor/dtype.js';
export { Tensor } from './tensor/tensor.js';
export {
  arange,
  eye,
  full,
  Generator,
  linspace,
  manualSeed,
  ones,
  rand,
  randint,
  randn,
  randperm,
  tensor,
  zeros,
} from './ops/creation.js';
import * as nn from './nn/index.js';

export { nn };
import * as optim from './optim/index.js';

export { optim };
import * as data from './data/index.js';

export { data };
export { DataLoader, FashionMnist, ImageFolder, loadFashionMnist } from './data/index.js';
import * as train from './train/index.js';

export { train };
export {
  parseSafetensors,
  readSafetensors,
  SafetensorsError,
  serializeSafetensors,
  writeSafetensors,
} from './io/safetensors.js';
export {
  colorAt,
  encodePng,
  heatmapRgb,
  normalizeMap,
  overlayHeatmap,
  readImage,
  resizeRgb,
  toRgbBytes,
  writeImage,
  writePngBytes,
} from './io/image.js';
export {
  attentionDistancePlot,
  attentionFlow,
  attentionGradients,
  attentionRollout,
  gradRollout,
  headMaps,
  LayeredFlowNetwork,
  mapGrid,
  maskMassShare,
  meanAttentionDistance,
  objectMassShare,
  swinRollout,
  tokenGradCam,
  writeAttentionDistancePlot,
  writeMapGrid,
  writeOverlay,
} from './explain/index.js';
export type {
  AttentionGradients,
  DistanceOptions,
  FlowOptions,
  FlowResult,
  HeadFusion,
  RolloutOptions,
  RolloutResult,
} from './explain/index.js';
export {
  createModel,
  createModelFromConstructor,
  evalTransform,
  ImageClassifier,
  listModels,
  loadCheckpoint,
  loadCheckpointSync,
  loadHfModel,
  modelFromHfConfig,
  preprocessImage,
  preprocessImages,
  verifyFixture,
} from './models/index.js';
export type { CapturedForward, CheckpointReport, PretrainedConfig } from './models/index.js';
import * as models from './models/index.js';

export { models };
export {
  type Fixation,
  type IttiOptions,
  type IttiResult,
  ittiSaliency,
  type SearchArray,
  scanpath,
  searchArray,
} from './saliency/index.js';
export * from './vision/index.js';
export {
  DETR_FASHION_MNIST,
  type DetrConfig,
  DetrForObjectDetection,
  type DetrOutput,
  type DetrTarget,
  type Detection,
  detrLoss,
  hungarianMatch,
  postProcessDetections,
  queryAttentionMaps,
} from './models/detr.js';
export {
  detrConfigFromHf,
  detrConfigToHf,
  filterDetrCheckpoint,
  loadDetrCheckpoint,
  loadDetrStateDict,
  loadHfDetr,
} from './models/detr_checkpoint.js';
export { RegionProposalNetwork, RPNHead } from './models/rpn.js';
export { FashionDetection, loadFashionDetection, toDetrTarget } from './data/fashion_detection.js';
export { TransUNet, type TransUnetConfig } from './models/transunet.js';
export { UNETR, type UnetrConfig } from './models/unetr.js';
import * as segment from './segment/index.js';

export { segment };
