/** The messages between the server's main thread and its workers, and the results the API returns. */
import type { HeadFusion } from '../explain/attention.js';
import type { ExplainMethod } from '../explain/explain.js';
import type { Channel } from '../saliency/itti.js';

export interface AttentionDescription {
  kind: 'tokens' | 'swin';
  layers: number;
  /** heads per layer */
  heads: number[];
  gridSize: [number, number];
  patchSize: [number, number];
  /** the maps each explanation has, e.g. ['cls'] or DeiT's ['cls', 'dist'] */
  tokenNames: string[];
}

/** What the page needs to know about a loaded model. */
export interface ModelDescription {
  id: string;
  title: string;
  family: string;
  parameters: number;
  numClasses: number;
  labels: string[] | null;
  /** (C, H, W) the model takes */
  inputSize: [number, number, number];
  /** null for models without attention (ConvNeXt, ResNet, Mixer, ConvMixer) */
  attention: AttentionDescription | null;
  methods: ExplainMethod[];
  warning: string | null;
  /** what loading the checkpoint noted (resampled position embeddings, ...) */
  notes: string[];
  hasLog: boolean;
}

/** A bundled sample image (web/public/samples/samples.json). */
export interface Sample {
  id: string;
  /** path under the samples folder */
  file: string;
  title: string;
  kind: 'photo' | 'fashion';
  credit: string;
  /** the Fashion-MNIST class of a Fashion-MNIST sample */
  label?: number;
}

export interface ClassifyJob {
  kind: 'classify';
  model: string;
  top: number;
}

export interface ExplainJob {
  kind: 'explain';
  model: string;
  method: ExplainMethod;
  headFusion: HeadFusion;
  discardRatio: number;
  /** the class the gradient methods explain; default the predicted one */
  target?: number;
  /** also every layer's per-head attention of the class token (the head grid) */
  heads: boolean;
  /** also the last layer's overlay as a PNG data URL */
  png: boolean;
  top: number;
}

export interface DistanceJob {
  kind: 'attention-distance';
  model: string;
}

export interface SaliencyJob {
  kind: 'saliency';
  fixations: number;
  /** the longer side the image is shrunk to before the model runs */
  maxSize: number;
  png: boolean;
}

export type Job = ClassifyJob | ExplainJob | DistanceJob | SaliencyJob;

export type JobReply =
  | { type: 'ready'; descriptions: ModelDescription[]; backend: string }
  | { type: 'failed-start'; error: string }
  | { type: 'done'; id: number; result: unknown }
  | { type: 'error'; id: number; error: string; status: 400 | 500 };

export interface TopClass {
  class: number;
  label: string;
  probability: number;
}

export interface ClassifyResult {
  model: string;
  top: TopClass[];
  /** what the model sees (resized, cropped; gray for one-channel models), a PNG data URL */
  picture: string;
  ms: number;
}

export interface ExplainResult extends ClassifyResult {
  method: ExplainMethod;
  /** the class the map explains (gradient methods) */
  target: number | null;
  gridSize: [number, number];
  tokenNames: string[];
  /** 1-based layer numbers the maps belong to: the first l layers (rollout, flow, grad-rollout) or layer l (gradcam) */
  layers: number[];
  /** maps[i][t]: the gh*gw map (row-major, max 1) of token t through layers[i] */
  maps: number[][][];
  /** heads[l][h]: the class token's raw attention over the patches in layer l + 1, head h (max 1) */
  heads: number[][][] | null;
  /** the last layer's first map over the picture, when asked for (png: true) */
  overlay: string | null;
}

export interface DistanceResult {
  model: string;
  /** pixels, [layer][head] */
  distances: number[][];
  patchSize: [number, number];
  gridSize: [number, number];
  ms: number;
}

export interface SaliencyMap {
  /** (h, w) values, row-major, at `scale` input pixels per value */
  values: number[];
  /** a PNG data URL of the map at the picture's size, when asked for */
  png: string | null;
}

export interface SaliencyResult {
  width: number;
  height: number;
  /** the image the model ran on (shrunk to maxSize, small ones enlarged), a PNG data URL */
  picture: string;
  scale: number;
  mapSize: [number, number];
  saliency: SaliencyMap;
  conspicuity: Record<Channel, SaliencyMap>;
  fixations: Array<{ x: number; y: number; t: number; feature: Channel; map: string }>;
  iorRadius: number;
  ms: number;
}
