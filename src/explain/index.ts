/** Where a model looks: explainers over captured attention (and its gradients), and their pictures. */
export type { HeadFusion } from './attention.js';
export { type DistanceOptions, meanAttentionDistance, patchDistances } from './distance.js';
export { attentionFlow, type FlowOptions, type FlowResult, LayeredFlowNetwork } from './flow.js';
export {
  type AttentionGradients,
  attentionGradients,
  type CapturedAttention,
  type GradientMapOptions,
  gradRollout,
  type GradRolloutResult,
  type TokenGradCamOptions,
  tokenGradCam,
} from './gradient.js';
export { type MassShare, maskMassShare, objectMassShare } from './measure.js';
export { attentionDistancePlot, type DistancePlotOptions, writeAttentionDistancePlot } from './plot.js';
export {
  type GridOptions,
  headMaps,
  mapGrid,
  type OverlayOptions,
  writeMapGrid,
  writeOverlay,
} from './render.js';
export { attentionRollout, type RolloutOptions, type RolloutResult } from './rollout.js';
export { type SwinRolloutOptions, type SwinRolloutResult, swinRollout } from './swin.js';
