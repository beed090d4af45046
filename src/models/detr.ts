/**
 * DETR (Carion et al., "End-to-End Object Detection with Transformers"): a ResNet with frozen batch
 * norm encodes the image, a 1x1 conv projects its last feature map to d_model, and the flattened map
 * with a 2D sine positional encoding feeds a post-norm transformer encoder. A decoder turns
 * `numQueries` learned object queries into one box and one class (or "no object") each, attending to
 * the encoder's memory. As in DETR's own layers (not nn.Transformer), positional encodings are added
 * to queries and keys (never values) at every attention of every layer.
 *
 * Training: the Hungarian matcher pairs each ground-truth object with one query (cost = class
 * probability, L1 and GIoU of boxes), the set criterion applies cross-entropy (no-object weighted
 * by eosCoef), L1 and GIoU to the matched pairs, and auxiliary losses repeat that after every
 * decoder layer. Module names are Hugging Face's DetrForObjectDetection (transformers 5:
 * `model.encoder.layers.0.self_attn.q_proj`, `model.decoder.layers.0.mlp.fc1`), the backbone keeps
 * timm/torchvision ResNet names under `model.backbone.model`; detr_checkpoint.ts maps the other
 * layouts (transformers 4, facebookresearch/detr, HF ResNet backbones) onto them.
 */
import { Conv2d } from '../nn/conv.js';
import { xavierUniform_ } from '../nn/init.js';
import { Dropout, Embedding, ReLU } from '../nn/layers.js';
import { LayerNorm, Linear } from '../nn/linear.js';
import { Module, ModuleList, type Sequential, type TensorModule } from '../nn/module.js';
import { BatchNorm2d, FrozenBatchNorm2d } from '../nn/norm.js';
import { scaledDotProductAttention } from '../ops/attention.js';
import { scalar } from '../ops/creation.js';
import { add, div, gelu, mul, relu, sigmoid } from '../ops/elementwise.js';
import { crossEntropy, l1Loss } from '../ops/loss.js';
import { softmax } from '../ops/normalization.js';
import { maxPool2d } from '../ops/pool.js';
import { mean } from '../ops/reduce.js';
import { indexSelect, permute, reshape } from '../ops/shape.js';
import { noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { boxConvert, generalizedBoxIou, generalizedBoxIouLoss } from '../vision/boxes.js';
import { linearSumAssignment } from '../vision/hungarian.js';
import { buildResNetStages, type ResNetBlockType } from './resnet.js';

export interface DetrBackboneConfig {
  block: ResNetBlockType;
  /** Blocks per stage; the last stage's output feeds the transformer unless outStage says otherwise. */
  layers: number[];
  /** Planes per stage (a bottleneck stage outputs 4x as many channels). */
  channels: number[];
  stemWidth: number;
  /** 1-based stage whose output is used (Hugging Face's out_features; default the last). */
  outStage?: number;
}

export interface DetrConfig {
  /** Object classes, without "no object" (the class head has numLabels + 1 outputs). */
  numLabels: number;
  numQueries: number;
  dModel: number;
  encoderLayers: number;
  decoderLayers: number;
  encoderAttentionHeads: number;
  decoderAttentionHeads: number;
  encoderFfnDim: number;
  decoderFfnDim: number;
  dropout: number;
  attentionDropout: number;
  activationDropout: number;
  activation: 'relu' | 'gelu';
  numChannels: number;
  backbone: DetrBackboneConfig;
  /** Return every decoder layer's predictions and add their losses (DETR's auxiliary decoding losses). */
  auxiliaryLoss: boolean;
  classCost: number;
  bboxCost: number;
  giouCost: number;
  bboxLossCoefficient: number;
  giouLossCoefficient: number;
  /** Weight of the no-object class in the cross-entropy. */
  eosCoefficient: number;
  /** Class names, index = class id. */
  labels?: string[];
}

/** DETR-R50 as in the paper (COCO: 91 label ids). */
export const DETR_DEFAULTS: DetrConfig = {
  numLabels: 91,
  numQueries: 100,
  dModel: 256,
  encoderLayers: 6,
  decoderLayers: 6,
  encoderAttentionHeads: 8,
  decoderAttentionHeads: 8,
  encoderFfnDim: 2048,
  decoderFfnDim: 2048,
  dropout: 0.1,
  attentionDropout: 0,
  activationDropout: 0,
  activation: 'relu',
  numChannels: 3,
  backbone: { block: 'bottleneck', layers: [3, 4, 6, 3], channels: [64, 128, 256, 512], stemWidth: 64 },
  auxiliaryLoss: false,
  classCost: 1,
  bboxCost: 5,
  giouCost: 2,
  bboxLossCoefficient: 5,
  giouLossCoefficient: 2,
  eosCoefficient: 0.1,
};

/**
 * The Fashion-MNIST detection preset (scripts/train_detr.ts): 64x64 grayscale canvases with 1-4
 * items, a two-stage ResNet-10-ish trunk ending at stride 8 (an 8x8 map), a small transformer and
 * 10 queries (at most 4 objects), auxiliary losses on, no dropout (the data never repeats).
 */
export const DETR_FASHION_MNIST: Partial<DetrConfig> = {
  numLabels: 10,
  numQueries: 10,
  dModel: 64,
  encoderLayers: 2,
  decoderLayers: 3,
  encoderAttentionHeads: 4,
  decoderAttentionHeads: 4,
  encoderFfnDim: 128,
  decoderFfnDim: 128,
  dropout: 0,
  numChannels: 1,
  backbone: { block: 'basic', layers: [1, 1], channels: [16, 32], stemWidth: 16 },
  auxiliaryLoss: true,
};

/**
 * Replaces every BatchNorm2d below `module` by a FrozenBatchNorm2d with the same statistics and
 * affine (DETR's backbone; Hugging Face's replace_batch_norm).
 */
export function freezeBatchNorm2d(module: Module): void {
  for (const [name, child] of module.namedChildren()) {
    if (child instanceof BatchNorm2d) {
      const frozen = new FrozenBatchNorm2d(child.numFeatures, { eps: child.eps });
      if (child.weight) frozen.buffer('weight').data.set(child.weight.data);
      if (child.bias) frozen.buffer('bias').data.set(child.bias.data);
      frozen.buffer('running_mean').data.set((child.runningMean as Tensor).data);
      frozen.buffer('running_var').data.set((child.runningVar as Tensor).data);
      (module as unknown as Record<string, Module>)[name] = frozen;
    } else freezeBatchNorm2d(child);
  }
}

/** A ResNet trunk (timm names: conv1, bn1, layer1...) with frozen batch norm, up to `outStage`. */
export class DetrResNetBackbone extends Module {
  conv1: Conv2d;
  bn1: TensorModule;
  act1: ReLU;
  /** Channels of the feature map handed to the transformer. */
  readonly outChannels: number;
  readonly outStage: number;
  private readonly stages: Sequential[];

  /** frozenBatchNorm false keeps trainable BatchNorm2d (pretraining the trunk as a classifier). */
  constructor(cfg: DetrBackboneConfig, inChans: number, options: { frozenBatchNorm?: boolean } = {}) {
    super();
    const n = cfg.layers.length;
    const outStage = cfg.outStage ?? n;
    if (n === 0 || cfg.channels.length !== n || !(outStage >= 1 && outStage <= n)) {
      throw new Error(
        `DETR backbone: layers [${cfg.layers}] and channels [${cfg.channels}] must give one entry per stage, and outStage ${outStage} must be one of them`,
      );
    }
    this.outStage = outStage;
    this.conv1 = new Conv2d(inChans, cfg.stemWidth, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(cfg.stemWidth);
    this.act1 = new ReLU();
    this.stages = buildResNetStages(cfg.block, cfg.layers, cfg.channels, cfg.stemWidth, {
      cardinality: 1,
      baseWidth: 64,
    });
    // Stages become children layer1, layer2, ... (their checkpoint names).
    this.stages.forEach((stage, i) => {
      (this as unknown as Record<string, Module>)[`layer${i + 1}`] = stage;
    });
    this.outChannels = cfg.channels[outStage - 1] * (cfg.block === 'basic' ? 1 : 4);
    if (options.frozenBatchNorm ?? true) freezeBatchNorm2d(this);
  }

  /** (B, C, H, W) → (B, outChannels, H/2^(outStage+1), W/2^(outStage+1)). */
  forward(x: Tensor): Tensor {
    let t = this.act1.forward(this.bn1.forward(this.conv1.forward(x)));
    t = maxPool2d(t, 3, { stride: 2, padding: 1 });
    for (let i = 0; i < this.outStage; i++) t = this.stages[i].forward(t);
    return t;
  }
}

/** Hugging Face's DetrConvEncoder: the backbone under `model`. */
export class DetrConvEncoder extends Module {
  model: DetrResNetBackbone;

  constructor(cfg: DetrBackboneConfig, inChans: number) {
    super();
    this.model = new DetrResNetBackbone(cfg, inChans);
  }
}

/**
 * DETR's PositionEmbeddingSine (normalize=True, temperature 10000, scale 2π) for a (B, h, w) mask of
 * valid feature cells (null = all valid): cumulative row / column counts scaled to [0, 2π], each
 * encoded with `dModel / 2` sines and cosines; y features first. → (B, h*w, dModel), or (1, h*w,
 * dModel) when the mask is null.
 */
export function sinePositionEmbedding(
  mask: Uint8Array | null,
  batch: number,
  h: number,
  w: number,
  dModel: number,
): Tensor {
  if (dModel % 4 !== 0) {
    throw new Error(
      `sinePositionEmbedding: d_model ${dModel} must be divisible by 4 (sin and cos for y and x)`,
    );
  }
  const feats = dModel / 2;
  const scale = 2 * Math.PI;
  const eps = 1e-6;
  const dimT = new Float32Array(feats);
  for (let i = 0; i < feats; i++) dimT[i] = Math.fround(10000 ** ((2 * Math.floor(i / 2)) / feats));
  const images = mask ? batch : 1;
  const out = new Float32Array(images * h * w * dModel);
  const yEmbed = new Float32Array(h * w);
  const xEmbed = new Float32Array(h * w);
  for (let b = 0; b < images; b++) {
    const valid = (y: number, x: number) => (mask ? mask[(b * h + y) * w + x] : 1);
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let y = 0; y < h; y++) yEmbed[y * w + x] = acc += valid(y, x);
      for (let y = 0; y < h; y++) yEmbed[y * w + x] = Math.fround((yEmbed[y * w + x] / (acc + eps)) * scale);
    }
    for (let y = 0; y < h; y++) {
      let acc = 0;
      for (let x = 0; x < w; x++) xEmbed[y * w + x] = acc += valid(y, x);
      for (let x = 0; x < w; x++) xEmbed[y * w + x] = Math.fround((xEmbed[y * w + x] / (acc + eps)) * scale);
    }
    for (let p = 0; p < h * w; p++) {
      const base = (b * h * w + p) * dModel;
      for (let i = 0; i < feats; i++) {
        const py = yEmbed[p] / dimT[i];
        const px = xEmbed[p] / dimT[i];
        out[base + i] = i % 2 === 0 ? Math.sin(py) : Math.cos(py);
        out[base + feats + i] = i % 2 === 0 ? Math.sin(px) : Math.cos(px);
      }
    }
  }
  return new Tensor(out, [images, h * w, dModel]);
}

export interface AttentionOutput {
  output: Tensor;
  /** (B, heads, L, S) post-softmax probabilities, only when captured. */
  weights: Tensor | null;
}

/** Multi-head attention with separate q/k/v/o projections (Hugging Face's DetrAttention). */
export class DetrAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  readonly headDim: number;

  constructor(
    readonly embedDim: number,
    readonly numHeads: number,
    readonly dropout = 0,
  ) {
    super();
    if (embedDim % numHeads !== 0) {
      throw new Error(`DetrAttention: d_model ${embedDim} must be divisible by the ${numHeads} heads`);
    }
    this.headDim = embedDim / numHeads;
    this.q_proj = new Linear(embedDim, embedDim);
    this.k_proj = new Linear(embedDim, embedDim);
    this.v_proj = new Linear(embedDim, embedDim);
    this.o_proj = new Linear(embedDim, embedDim);
  }

  /**
   * query (B, L, E) attends to keyValue (B, S, E); the positional encodings are added to the inputs
   * of the query and key projections. mask: additive, broadcastable to (B, heads, L, S).
   */
  forward(
    query: Tensor,
    queryPos: Tensor | null,
    keyValue: Tensor,
    keyPos: Tensor | null,
    mask: Tensor | null,
    capture: boolean,
  ): AttentionOutput {
    const [B, L] = query.shape;
    const S = keyValue.shape[1];
    const qIn = queryPos ? add(query, queryPos) : query;
    const kIn = keyValue === query && keyPos === queryPos ? qIn : keyPos ? add(keyValue, keyPos) : keyValue;
    const heads = (x: Tensor, len: number) =>
      permute(reshape(x, [B, len, this.numHeads, this.headDim]), [0, 2, 1, 3]);
    const q = heads(this.q_proj.forward(qIn), L); // (B, H, L, hd)
    const k = heads(this.k_proj.forward(kIn), S);
    const v = heads(this.v_proj.forward(keyValue), S);
    const options = { attnMask: mask, dropoutP: this.training ? this.dropout : 0 };
    let out: Tensor;
    let weights: Tensor | null = null;
    if (capture) {
      const r = scaledDotProductAttention(q, k, v, { ...options, returnProbs: true });
      out = r.output;
      weights = r.probs;
    } else out = scaledDotProductAttention(q, k, v, options);
    const merged = reshape(permute(out, [0, 2, 1, 3]), [B, L, this.embedDim]); // (B, L, E)
    return { output: this.o_proj.forward(merged), weights };
  }
}

/** The feed-forward block: fc1 → activation → dropout → fc2. */
export class DetrMlp extends Module {
  fc1: Linear;
  fc2: Linear;
  private readonly act: (x: Tensor) => Tensor;
  private readonly drop: Dropout;

  constructor(dModel: number, ffnDim: number, activation: 'relu' | 'gelu', activationDropout: number) {
    super();
    this.fc1 = new Linear(dModel, ffnDim);
    this.fc2 = new Linear(ffnDim, dModel);
    this.act = activation === 'gelu' ? (x) => gelu(x) : relu;
    this.drop = new Dropout(activationDropout);
  }

  forward(x: Tensor): Tensor {
    return this.fc2.forward(this.drop.forward(this.act(this.fc1.forward(x))));
  }
}

/** Post-norm encoder layer: x = norm(x + attn(x + pos, x + pos, x)); x = norm(x + ffn(x)). */
export class DetrEncoderLayer extends Module {
  self_attn: DetrAttention;
  self_attn_layer_norm: LayerNorm;
  mlp: DetrMlp;
  final_layer_norm: LayerNorm;
  private readonly drop: Dropout;

  constructor(cfg: DetrConfig) {
    super();
    this.self_attn = new DetrAttention(cfg.dModel, cfg.encoderAttentionHeads, cfg.attentionDropout);
    this.self_attn_layer_norm = new LayerNorm(cfg.dModel);
    this.mlp = new DetrMlp(cfg.dModel, cfg.encoderFfnDim, cfg.activation, cfg.activationDropout);
    this.final_layer_norm = new LayerNorm(cfg.dModel);
    this.drop = new Dropout(cfg.dropout);
  }

  forward(
    x: Tensor,
    pos: Tensor,
    mask: Tensor | null,
    capture: boolean,
  ): { x: Tensor; attention: Tensor | null } {
    const a = this.self_attn.forward(x, pos, x, pos, mask, capture);
    let h = this.self_attn_layer_norm.forward(add(x, this.drop.forward(a.output)));
    h = this.final_layer_norm.forward(add(h, this.drop.forward(this.mlp.forward(h))));
    return { x: h, attention: a.weights };
  }
}

/**
 * Post-norm decoder layer: self-attention among the queries (query positions added to q and k),
 * cross-attention from the queries (+ query positions) to the memory (+ spatial positions), FFN.
 */
export class DetrDecoderLayer extends Module {
  self_attn: DetrAttention;
  self_attn_layer_norm: LayerNorm;
  encoder_attn: DetrAttention;
  encoder_attn_layer_norm: LayerNorm;
  mlp: DetrMlp;
  final_layer_norm: LayerNorm;
  private readonly drop: Dropout;

  constructor(cfg: DetrConfig) {
    super();
    this.self_attn = new DetrAttention(cfg.dModel, cfg.decoderAttentionHeads, cfg.attentionDropout);
    this.self_attn_layer_norm = new LayerNorm(cfg.dModel);
    this.encoder_attn = new DetrAttention(cfg.dModel, cfg.decoderAttentionHeads, cfg.attentionDropout);
    this.encoder_attn_layer_norm = new LayerNorm(cfg.dModel);
    this.mlp = new DetrMlp(cfg.dModel, cfg.decoderFfnDim, cfg.activation, cfg.activationDropout);
    this.final_layer_norm = new LayerNorm(cfg.dModel);
    this.drop = new Dropout(cfg.dropout);
  }

  forward(
    tgt: Tensor,
    queryPos: Tensor,
    memory: Tensor,
    memoryPos: Tensor,
    memoryMask: Tensor | null,
    capture: boolean,
  ): { x: Tensor; selfAttention: Tensor | null; crossAttention: Tensor | null } {
    const s = this.self_attn.forward(tgt, queryPos, tgt, queryPos, null, capture);
    let h = this.self_attn_layer_norm.forward(add(tgt, this.drop.forward(s.output)));
    const c = this.encoder_attn.forward(h, queryPos, memory, memoryPos, memoryMask, capture);
    h = this.encoder_attn_layer_norm.forward(add(h, this.drop.forward(c.output)));
    h = this.final_layer_norm.forward(add(h, this.drop.forward(this.mlp.forward(h))));
    return { x: h, selfAttention: s.weights, crossAttention: c.weights };
  }
}

export class DetrEncoder extends Module {
  layers: ModuleList<DetrEncoderLayer>;

  constructor(cfg: DetrConfig) {
    super();
    this.layers = new ModuleList(Array.from({ length: cfg.encoderLayers }, () => new DetrEncoderLayer(cfg)));
  }
}

/** The decoder stack with the final LayerNorm that is also applied to every auxiliary output. */
export class DetrDecoder extends Module {
  layers: ModuleList<DetrDecoderLayer>;
  layernorm: LayerNorm;

  constructor(cfg: DetrConfig) {
    super();
    this.layers = new ModuleList(Array.from({ length: cfg.decoderLayers }, () => new DetrDecoderLayer(cfg)));
    this.layernorm = new LayerNorm(cfg.dModel);
  }
}

export interface DetrAttentions {
  /** Per encoder layer (B, heads, h*w, h*w). */
  encoder: Tensor[];
  /** Per decoder layer (B, heads, Q, Q). */
  decoderSelf: Tensor[];
  /** Per decoder layer (B, heads, Q, h*w): what each object query looks at in the image. */
  decoderCross: Tensor[];
}

export interface DetrModelOutput {
  /** Normed decoder output after every layer (only the last unless auxiliary outputs are asked for). */
  decoderStates: Tensor[];
  /** (h, w) of the feature map the transformer saw. */
  featureSize: [number, number];
  attentions: DetrAttentions | null;
}

/** Hugging Face's DetrModel: backbone, projection, positional encoding, encoder, decoder. */
export class DetrModel extends Module {
  backbone: DetrConvEncoder;
  input_projection: Conv2d;
  query_position_embeddings: Embedding;
  encoder: DetrEncoder;
  decoder: DetrDecoder;

  constructor(readonly config: DetrConfig) {
    super();
    this.backbone = new DetrConvEncoder(config.backbone, config.numChannels);
    this.input_projection = new Conv2d(this.backbone.model.outChannels, config.dModel, 1);
    this.query_position_embeddings = new Embedding(config.numQueries, config.dModel);
    this.encoder = new DetrEncoder(config);
    this.decoder = new DetrDecoder(config);
  }

  forward(
    pixelValues: Tensor,
    options: { pixelMask?: Tensor | null; allDecoderStates?: boolean; captureAttention?: boolean } = {},
  ): DetrModelOutput {
    const cfg = this.config;
    if (
      pixelValues.ndim !== 4 ||
      pixelValues.shape[1] !== cfg.numChannels ||
      pixelValues.dtype !== 'float32'
    ) {
      throw new Error(
        `DETR: expected a float32 image batch (B, ${cfg.numChannels}, H, W), got ${pixelValues.dtype} ${fmt(pixelValues.shape)}`,
      );
    }
    const [B, , H, W] = pixelValues.shape;
    const capture = options.captureAttention ?? false;
    const features = this.backbone.model.forward(pixelValues); // (B, C, h, w)
    const [h, w] = features.shape.slice(2);
    const valid = options.pixelMask ? downsampleMask(options.pixelMask, B, H, W, h, w) : null;
    const pos = sinePositionEmbedding(valid, B, h, w, cfg.dModel); // (B or 1, h*w, d)
    const keyMask = valid ? keyPaddingMask(valid, B, h * w) : null; // (B, 1, 1, h*w)
    const projected = this.input_projection.forward(features); // (B, d, h, w)
    let memory = permute(reshape(projected, [B, cfg.dModel, h * w]), [0, 2, 1]); // (B, h*w, d)
    const attentions: DetrAttentions | null = capture
      ? { encoder: [], decoderSelf: [], decoderCross: [] }
      : null;
    for (const layer of this.encoder.layers) {
      const r = layer.forward(memory, pos, keyMask, capture);
      memory = r.x;
      if (attentions && r.attention) attentions.encoder.push(r.attention);
    }
    const queryPos = reshape(this.query_position_embeddings.weight, [1, cfg.numQueries, cfg.dModel]);
    let tgt = new Tensor(new Float32Array(B * cfg.numQueries * cfg.dModel), [B, cfg.numQueries, cfg.dModel]);
    const decoderStates: Tensor[] = [];
    const layers = this.decoder.layers;
    layers.toArray().forEach((layer, i) => {
      const r = layer.forward(tgt, queryPos, memory, pos, keyMask, capture);
      tgt = r.x;
      if (attentions && r.selfAttention && r.crossAttention) {
        attentions.decoderSelf.push(r.selfAttention);
        attentions.decoderCross.push(r.crossAttention);
      }
      if (options.allDecoderStates || i === layers.length - 1)
        decoderStates.push(this.decoder.layernorm.forward(tgt));
    });
    return { decoderStates, featureSize: [h, w], attentions };
  }
}

/** Nearest downsampling of a (B, H, W) pixel mask (1 = real pixel) to (B, h, w), as F.interpolate. */
function downsampleMask(
  pixelMask: Tensor,
  B: number,
  H: number,
  W: number,
  h: number,
  w: number,
): Uint8Array {
  if (
    pixelMask.ndim !== 3 ||
    pixelMask.shape[0] !== B ||
    pixelMask.shape[1] !== H ||
    pixelMask.shape[2] !== W
  ) {
    throw new Error(`DETR: pixelMask must be (B, H, W) = (${B}, ${H}, ${W}), got ${fmt(pixelMask.shape)}`);
  }
  const out = new Uint8Array(B * h * w);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < h; y++) {
      const sy = Math.min(Math.floor((y * H) / h), H - 1);
      for (let x = 0; x < w; x++) {
        const sx = Math.min(Math.floor((x * W) / w), W - 1);
        out[(b * h + y) * w + x] = pixelMask.data[(b * H + sy) * W + sx] !== 0 ? 1 : 0;
      }
    }
  }
  return out;
}

function keyPaddingMask(valid: Uint8Array, B: number, S: number): Tensor {
  const m = new Float32Array(B * S);
  for (let i = 0; i < m.length; i++) if (!valid[i]) m[i] = -Infinity;
  return new Tensor(m, [B, 1, 1, S]);
}

/** Hugging Face's DetrMLPPredictionHead: Linear layers with ReLU between them. */
export class DetrMlpPredictionHead extends Module {
  layers: ModuleList<Linear>;

  constructor(inputDim: number, hiddenDim: number, outputDim: number, numLayers: number) {
    super();
    const dims = [inputDim, ...Array(numLayers - 1).fill(hiddenDim), outputDim];
    this.layers = new ModuleList(
      Array.from({ length: numLayers }, (_, i) => new Linear(dims[i], dims[i + 1])),
    );
  }

  forward(x: Tensor): Tensor {
    let h = x;
    this.layers.toArray().forEach((layer, i) => {
      h = layer.forward(h);
      if (i < this.layers.length - 1) h = relu(h);
    });
    return h;
  }
}

export interface DetrPrediction {
  /** (B, Q, numLabels + 1): the last class is "no object". */
  logits: Tensor;
  /** (B, Q, 4) normalized (cx, cy, w, h) in [0, 1]. */
  predBoxes: Tensor;
}

export interface DetrOutput extends DetrPrediction {
  /** Predictions after each decoder layer but the last (auxiliary decoding losses), oldest first. */
  auxOutputs: DetrPrediction[];
  featureSize: [number, number];
  attentions: DetrAttentions | null;
}

export interface DetrForwardOptions {
  /** (B, H, W): 1 for real pixels, 0 for padding (images of different sizes in one batch). */
  pixelMask?: Tensor | null;
  /** Also return the attention probabilities of every block (decoderCross: the per-object maps). */
  captureAttention?: boolean;
  /** Predictions after every decoder layer (default: config.auxiliaryLoss while training). */
  auxiliaryOutputs?: boolean;
}

/** Hugging Face's DetrForObjectDetection: DetrModel plus the class and box heads. */
export class DetrForObjectDetection extends Module {
  readonly config: DetrConfig;
  model: DetrModel;
  class_labels_classifier: Linear;
  bbox_predictor: DetrMlpPredictionHead;

  constructor(overrides: Partial<DetrConfig> = {}) {
    super();
    const backbone = { ...DETR_DEFAULTS.backbone, ...(overrides.backbone ?? {}) };
    const cfg: DetrConfig = { ...DETR_DEFAULTS, ...overrides, backbone };
    for (const [key, value] of Object.entries(overrides)) {
      if (!(key in DETR_DEFAULTS) && key !== 'labels') {
        throw new Error(
          `DETR: unknown config option '${key}'; known options: ${Object.keys(DETR_DEFAULTS).join(', ')}, labels`,
        );
      }
      if (value === undefined) throw new Error(`DETR: config option '${key}' is undefined`);
    }
    if (
      !(
        Number.isInteger(cfg.numLabels) &&
        cfg.numLabels >= 1 &&
        Number.isInteger(cfg.numQueries) &&
        cfg.numQueries >= 1
      )
    ) {
      throw new Error(
        `DETR: numLabels (${cfg.numLabels}) and numQueries (${cfg.numQueries}) must be positive integers`,
      );
    }
    this.config = cfg;
    this.model = new DetrModel(cfg);
    this.class_labels_classifier = new Linear(cfg.dModel, cfg.numLabels + 1);
    this.bbox_predictor = new DetrMlpPredictionHead(cfg.dModel, cfg.dModel, 4, 3);
    this.initTransformer();
  }

  /** DETR's init: Xavier-uniform for every matrix of the transformer, zero attention biases. */
  private initTransformer(): void {
    for (const part of [this.model.encoder, this.model.decoder]) {
      for (const [name, p] of part.namedParameters()) {
        if (p.ndim > 1) xavierUniform_(p);
        else if (/_proj\.bias$/.test(name)) p.data.fill(0);
      }
    }
  }

  forward(pixelValues: Tensor, options: DetrForwardOptions = {}): DetrOutput {
    const aux = options.auxiliaryOutputs ?? (this.training && this.config.auxiliaryLoss);
    const out = this.model.forward(pixelValues, {
      pixelMask: options.pixelMask,
      captureAttention: options.captureAttention,
      allDecoderStates: aux,
    });
    const predictions = out.decoderStates.map((s) => this.predict(s));
    const last = predictions[predictions.length - 1];
    return {
      logits: last.logits,
      predBoxes: last.predBoxes,
      auxOutputs: predictions.slice(0, -1),
      featureSize: out.featureSize,
      attentions: out.attentions,
    };
  }

  /** The heads on decoder states (B, Q, d). */
  predict(states: Tensor): DetrPrediction {
    return {
      logits: this.class_labels_classifier.forward(states),
      predBoxes: sigmoid(this.bbox_predictor.forward(states)),
    };
  }
}

/** One image's ground truth: class ids in [0, numLabels) and normalized (cx, cy, w, h) boxes. */
export interface DetrTarget {
  labels: Tensor | readonly number[];
  /** (T, 4) normalized cxcywh. */
  boxes: Tensor;
}

export interface MatchIndices {
  /** Query indices, increasing. */
  queries: number[];
  /** targets[k] is the ground-truth object matched to queries[k]. */
  targets: number[];
}

function targetLabels(t: DetrTarget): number[] {
  return 'data' in t.labels
    ? Array.from((t.labels as Tensor).data, Number)
    : [...(t.labels as readonly number[])];
}

/** Validates targets: integer labels in range, (T, 4) cxcywh boxes of non-negative size. */
export function checkDetrTargets(
  targets: readonly DetrTarget[],
  batch: number,
  numLabels: number,
  op: string,
): void {
  if (targets.length !== batch)
    throw new Error(
      `${op}: ${targets.length} targets for a batch of ${batch} images; give one per image (empty ones too)`,
    );
  targets.forEach((t, i) => {
    const labels = targetLabels(t);
    if (
      t.boxes.ndim !== 2 ||
      t.boxes.shape[1] !== 4 ||
      t.boxes.shape[0] !== labels.length ||
      t.boxes.dtype !== 'float32'
    ) {
      throw new Error(
        `${op}: targets[${i}] has ${labels.length} labels and boxes ${t.boxes.dtype} ${fmt(t.boxes.shape)}; boxes must be float32 (T, 4) with one row per label`,
      );
    }
    labels.forEach((l, k) => {
      if (!(Number.isInteger(l) && l >= 0 && l < numLabels)) {
        throw new Error(`${op}: targets[${i}].labels[${k}] = ${l} is not a class id in [0, ${numLabels})`);
      }
    });
    const b = t.boxes.data;
    for (let k = 0; k < labels.length; k++) {
      const [cx, cy, w, h] = [b[4 * k], b[4 * k + 1], b[4 * k + 2], b[4 * k + 3]];
      if (!(w >= 0 && h >= 0) || !Number.isFinite(cx + cy + w + h)) {
        throw new Error(
          `${op}: targets[${i}].boxes[${k}] = [${[cx, cy, w, h].map((v) => Number(v.toPrecision(6))).join(', ')}] has a negative or non-finite size; boxes are normalized (cx, cy, w, h) with w, h >= 0`,
        );
      }
    }
  });
}

/**
 * DETR's HungarianMatcher: for each image the one-to-one assignment of queries to ground-truth
 * objects minimizing classCost·(-p(class)) + bboxCost·L1(boxes) + giouCost·(-GIoU(boxes)).
 */
export function hungarianMatch(
  prediction: DetrPrediction,
  targets: readonly DetrTarget[],
  costs: { classCost: number; bboxCost: number; giouCost: number },
): MatchIndices[] {
  return noGrad(() => {
    const [B, Q, C] = prediction.logits.shape;
    checkDetrTargets(targets, B, C - 1, 'hungarianMatch');
    const prob = softmax(prediction.logits, -1).data; // (B, Q, C)
    const pred = prediction.predBoxes.data; // (B, Q, 4)
    const allLabels = targets.map(targetLabels);
    const total = allLabels.reduce((s, l) => s + l.length, 0);
    if (total === 0) return targets.map(() => ({ queries: [], targets: [] }));
    // One GIoU matrix for the whole batch, (B*Q, T_total), as DETR computes it; each image reads its block.
    const tgtBoxes = new Float32Array(4 * total);
    let offset = 0;
    for (const t of targets) {
      tgtBoxes.set(t.boxes.data, 4 * offset);
      offset += t.boxes.shape[0];
    }
    const giou = generalizedBoxIou(
      boxConvert(reshape(prediction.predBoxes.detach(), [B * Q, 4]), 'cxcywh', 'xyxy'),
      boxConvert(new Tensor(tgtBoxes, [total, 4]), 'cxcywh', 'xyxy'),
    ).data;
    offset = 0;
    return allLabels.map((labels, b) => {
      const first = offset;
      offset += labels.length;
      if (labels.length === 0) return { queries: [], targets: [] };
      const cost: number[][] = [];
      for (let q = 0; q < Q; q++) {
        const row = b * Q + q;
        cost.push(
          labels.map((label, k) => {
            let l1 = 0;
            for (let c = 0; c < 4; c++) l1 += Math.abs(pred[4 * row + c] - tgtBoxes[4 * (first + k) + c]);
            return (
              costs.bboxCost * l1 -
              costs.classCost * prob[row * C + label] -
              costs.giouCost * giou[row * total + first + k]
            );
          }),
        );
      }
      const r = linearSumAssignment(cost);
      return { queries: r.rows, targets: r.cols };
    });
  });
}

export type DetrLossDict = Record<string, number>;

export interface DetrLossResult {
  /** Σ weight · part over the final and auxiliary outputs: what training minimizes. */
  loss: Tensor;
  /** Every part as a number: loss_ce, loss_bbox, loss_giou, cardinality_error, and loss_ce_0... for aux outputs. */
  parts: DetrLossDict;
  /** The matching of the final prediction. */
  indices: MatchIndices[];
}

/**
 * DETR's SetCriterion (Hugging Face's DetrLoss): match, then cross-entropy over all queries with
 * the no-object class weighted by eosCoefficient, and L1 + GIoU losses over the matched boxes
 * divided by the number of ground-truth boxes in the batch; the same for each auxiliary output.
 */
export function detrLoss(
  output: DetrOutput,
  targets: readonly DetrTarget[],
  config: DetrConfig,
): DetrLossResult {
  const [B, , C] = output.logits.shape;
  checkDetrTargets(targets, B, C - 1, 'detrLoss');
  const numBoxes = Math.max(
    1,
    targets.reduce((s, t) => s + targetLabels(t).length, 0),
  );
  const parts: DetrLossDict = {};
  let total: Tensor | null = null;
  let finalIndices: MatchIndices[] = [];
  const stages: Array<[DetrPrediction, string]> = [
    ...output.auxOutputs.map((p, i) => [p, `_${i}`] as [DetrPrediction, string]),
    [output, ''],
  ];
  for (const [prediction, suffix] of stages) {
    const indices = hungarianMatch(prediction, targets, config);
    if (suffix === '') finalIndices = indices;
    const { ce, bbox, giou } = setLosses(prediction, targets, indices, numBoxes, config.eosCoefficient);
    parts[`loss_ce${suffix}`] = ce.item();
    parts[`loss_bbox${suffix}`] = bbox.item();
    parts[`loss_giou${suffix}`] = giou.item();
    const weighted = add(
      add(ce, mul(bbox, config.bboxLossCoefficient)),
      mul(giou, config.giouLossCoefficient),
    );
    total = total ? add(total, weighted) : weighted;
  }
  parts.cardinality_error = cardinalityError(output.logits, targets);
  return { loss: total as Tensor, parts, indices: finalIndices };
}

function setLosses(
  prediction: DetrPrediction,
  targets: readonly DetrTarget[],
  indices: MatchIndices[],
  numBoxes: number,
  eosCoefficient: number,
): { ce: Tensor; bbox: Tensor; giou: Tensor } {
  const [B, Q, C] = prediction.logits.shape;
  const targetClasses = new Float64Array(B * Q).fill(C - 1);
  const flatQueries: number[] = [];
  const matchedBoxes: number[] = [];
  indices.forEach((m, b) => {
    const labels = targetLabels(targets[b]);
    m.queries.forEach((q, k) => {
      const t = m.targets[k];
      targetClasses[b * Q + q] = labels[t];
      flatQueries.push(b * Q + q);
      matchedBoxes.push(...targets[b].boxes.data.subarray(4 * t, 4 * t + 4));
    });
  });
  const weight = new Float32Array(C).fill(1);
  weight[C - 1] = eosCoefficient;
  const ce = crossEntropy(reshape(prediction.logits, [B * Q, C]), new Tensor(targetClasses, [B * Q]), {
    weight: new Tensor(weight, [C]),
  });
  if (flatQueries.length === 0) {
    const zero = scalar(0);
    return { ce, bbox: zero, giou: zero };
  }
  const src = indexSelect(
    reshape(prediction.predBoxes, [B * Q, 4]),
    0,
    new Tensor(Float64Array.from(flatQueries), [flatQueries.length]),
  );
  const tgt = new Tensor(Float32Array.from(matchedBoxes), [flatQueries.length, 4]);
  const bbox = div(l1Loss(src, tgt, { reduction: 'sum' }), numBoxes);
  const giou = div(
    generalizedBoxIouLoss(boxConvert(src, 'cxcywh', 'xyxy'), boxConvert(tgt, 'cxcywh', 'xyxy'), {
      eps: 0,
      reduction: 'sum',
    }),
    numBoxes,
  );
  return { ce, bbox, giou };
}

/** |predicted non-empty queries - ground-truth boxes|, averaged over images (logged, not trained). */
function cardinalityError(logits: Tensor, targets: readonly DetrTarget[]): number {
  const [B, Q, C] = logits.shape;
  let err = 0;
  for (let b = 0; b < B; b++) {
    let objects = 0;
    for (let q = 0; q < Q; q++) {
      const row = logits.data.subarray((b * Q + q) * C, (b * Q + q + 1) * C);
      let arg = 0;
      for (let c = 1; c < C; c++) if (row[c] > row[arg]) arg = c;
      if (arg !== C - 1) objects++;
    }
    err += Math.abs(objects - targetLabels(targets[b]).length);
  }
  return err / B;
}

export interface Detection {
  score: number;
  label: number;
  /** (x1, y1, x2, y2) in pixels of the target size (normalized when no size is given). */
  box: [number, number, number, number];
  /** The query that produced it (its attention map is decoderCross[..., query, :]). */
  query: number;
}

/**
 * Hugging Face's post_process_object_detection: per query the most probable real class and its
 * softmax probability; queries scoring above `threshold` become detections, boxes scaled to
 * targetSizes[b] = (height, width). An image may have no detections.
 */
export function postProcessDetections(
  prediction: DetrPrediction,
  options: { threshold?: number; targetSizes?: ReadonlyArray<readonly [number, number]> } = {},
): Detection[][] {
  const { threshold = 0.5, targetSizes } = options;
  const [B, Q, C] = prediction.logits.shape;
  if (targetSizes && targetSizes.length !== B) {
    throw new Error(`postProcessDetections: ${targetSizes.length} target sizes for a batch of ${B}`);
  }
  const prob = noGrad(() => softmax(prediction.logits, -1)).data;
  const boxes = prediction.predBoxes.data;
  const out: Detection[][] = [];
  for (let b = 0; b < B; b++) {
    const [h, w] = targetSizes ? targetSizes[b] : [1, 1];
    const found: Detection[] = [];
    for (let q = 0; q < Q; q++) {
      const base = (b * Q + q) * C;
      let label = 0;
      for (let c = 1; c < C - 1; c++) if (prob[base + c] > prob[base + label]) label = c;
      const score = prob[base + label];
      if (!(score > threshold)) continue;
      const [cx, cy, bw, bh] = boxes.subarray((b * Q + q) * 4, (b * Q + q + 1) * 4);
      found.push({
        score,
        label,
        box: [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h],
        query: q,
      });
    }
    found.sort((a, c) => c.score - a.score);
    out.push(found);
  }
  return out;
}

/**
 * The DETR paper's per-object attention: for each query, its decoder cross-attention over the
 * feature map, averaged over heads. decoderCross (B, heads, Q, h*w) → (B, Q, h, w), each row summing to 1.
 */
export function queryAttentionMaps(decoderCross: Tensor, featureSize: readonly [number, number]): Tensor {
  const [h, w] = featureSize;
  if (decoderCross.ndim !== 4 || decoderCross.shape[3] !== h * w) {
    throw new Error(
      `queryAttentionMaps: expected (B, heads, Q, ${h * w}) attention for a ${h}x${w} map, got ${fmt(decoderCross.shape)}`,
    );
  }
  const [B, , Q] = decoderCross.shape;
  return noGrad(() => reshape(mean(decoderCross, 1), [B, Q, h, w]));
}
