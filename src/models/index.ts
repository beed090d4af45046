/** The vision model zoo: model families with timm names, the registry, checkpoints, eval preprocessing. */
export {
  type CapturedForward,
  type FeatureOptions,
  type FilteredCheckpoint,
  type ForwardOptions,
  IMAGENET_MEAN,
  IMAGENET_STD,
  ImageClassifier,
  INCEPTION_MEAN,
  INCEPTION_STD,
  type Interpolation,
  type PretrainedConfig,
} from './classifier.js';
export {
  type CheckpointReport,
  type LoadCheckpointOptions,
  loadCheckpoint,
  loadCheckpointSync,
  loadHfModel,
  readCheckpoint,
} from './checkpoint.js';
export { ConvMixer, type ConvMixerConfig } from './convmixer.js';
export { ConvNeXt, ConvNeXtBlock, type ConvNextConfig, LayerNorm2d } from './convnext.js';
export { type MixerConfig, MixerBlock, MlpMixer } from './mlp_mixer.js';
export { evalTransform, preprocessImage, preprocessImages, resizeShorterSide } from './preprocess.js';
export {
  createModel,
  createModelFromConstructor,
  type Family,
  getModelEntry,
  guessCheckpointFamily,
  listModels,
  type ModelEntry,
  modelFromHfConfig,
} from './registry.js';
export { BasicBlock, Bottleneck, ResNet, type ResNetConfig } from './resnet.js';
export {
  ConvLocalization,
  identityParams,
  type LocalizationFeatures,
  type LocalizationKind,
  type LocalizationOptions,
  MlpLocalization,
  MomentLocalization,
  MultiHeadSpatialTransformer,
  SpatialTransformer,
  type SpatialTransformerOptions,
  StnClassifier,
  type StnClassifierOptions,
  type StTransform,
  thetaFromParams,
  type TransformerOutput,
} from './stn.js';
export {
  PatchMerging,
  type SwinConfig,
  SwinTransformer,
  SwinTransformerBlock,
  WindowAttention,
} from './swin.js';
export { type Comparison, compareTensors, type VerifyResult, verifyFixture } from './verify.js';
export {
  Attention,
  Block,
  type DeitConfig,
  PatchEmbed,
  resampleAbsPosEmbed,
  VisionTransformer,
  VisionTransformerDistilled,
  type VitConfig,
} from './vit.js';
export {
  filterTransUnetCheckpoint,
  PreActBottleneck,
  ResNetV2,
  StdConv2d,
  TRANSUNET_DEFAULTS,
  TransUNet,
  type TransUnetConfig,
} from './transunet.js';
export { filterUnetrCheckpoint, UNETR, UNETR_DEFAULTS, type UnetrConfig } from './unetr.js';
