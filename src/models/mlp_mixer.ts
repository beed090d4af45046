/**
 * MLP-Mixer (Tolstikhin et al.) with timm's module names: patch tokens, then blocks that mix across
 * tokens (an MLP over the token axis) and across channels (an MLP over features), mean-pooled into
 * a linear head. No attention: captureAttention returns an empty list.
 */
import { DropPath, Dropout, GELU, Mlp } from '../nn/layers.js';
import { LayerNorm, Linear } from '../nn/linear.js';
import { Identity, Module, ModuleList, type TensorModule } from '../nn/module.js';
import { add } from '../ops/elementwise.js';
import { mean } from '../ops/reduce.js';
import { reshape, transpose } from '../ops/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  type FeatureOptions,
  ImageClassifier,
  initLinearsTimm,
  type WeightInit,
  pair,
  resolveConfig,
} from './classifier.js';
import { PatchEmbed } from './vit.js';

export interface MixerConfig {
  imgSize: number | [number, number];
  patchSize: number;
  inChans: number;
  numClasses: number;
  numBlocks: number;
  embedDim: number;
  /** Hidden width of the token and channel MLPs as multiples of embed_dim. */
  mlpRatio: [number, number];
  globalPool: 'avg' | '';
  stemNorm: boolean;
  dropRate: number;
  projDropRate: number;
  dropPathRate: number;
  normEps: number;
  weightInit: WeightInit;
}

export const MIXER_DEFAULTS: MixerConfig = {
  imgSize: 224,
  patchSize: 16,
  inChans: 3,
  numClasses: 1000,
  numBlocks: 8,
  embedDim: 512,
  mlpRatio: [0.5, 4.0],
  globalPool: 'avg',
  stemNorm: false,
  dropRate: 0,
  projDropRate: 0,
  dropPathRate: 0,
  normEps: 1e-6,
  weightInit: '',
};

const IGNORED_KWARGS = ['nlhb'];

export class MixerBlock extends Module {
  norm1: LayerNorm;
  mlp_tokens: Mlp;
  drop_path: DropPath;
  norm2: LayerNorm;
  mlp_channels: Mlp;

  constructor(
    dim: number,
    seqLen: number,
    options: { mlpRatio: [number, number]; drop: number; dropPath: number; normEps: number },
  ) {
    super();
    const [tokensDim, channelsDim] = options.mlpRatio.map((r) => Math.floor(r * dim));
    this.norm1 = new LayerNorm(dim, { eps: options.normEps });
    this.mlp_tokens = new Mlp(seqLen, {
      hiddenFeatures: tokensDim,
      actLayer: () => new GELU(),
      drop: options.drop,
    });
    this.drop_path = new DropPath(options.dropPath);
    this.norm2 = new LayerNorm(dim, { eps: options.normEps });
    this.mlp_channels = new Mlp(dim, {
      hiddenFeatures: channelsDim,
      actLayer: () => new GELU(),
      drop: options.drop,
    });
  }

  /** x (B, N, C) → (B, N, C). */
  forward(x: Tensor): Tensor {
    const mixedTokens = transpose(this.mlp_tokens.forward(transpose(this.norm1.forward(x), 1, 2)), 1, 2);
    const a = add(x, this.drop_path.forward(mixedTokens));
    return add(a, this.drop_path.forward(this.mlp_channels.forward(this.norm2.forward(a))));
  }
}

export class MlpMixer extends ImageClassifier {
  readonly family = 'mixer';
  readonly config: MixerConfig;
  readonly numClasses: number;
  readonly numFeatures: number;
  readonly gridSize: [number, number];

  stem: PatchEmbed;
  blocks: ModuleList<MixerBlock>;
  norm: LayerNorm;
  head_drop: Dropout;
  head: TensorModule;

  constructor(overrides: Partial<MixerConfig> | Record<string, unknown> = {}) {
    super();
    const cfg = resolveConfig(
      'MlpMixer',
      MIXER_DEFAULTS,
      overrides as Record<string, unknown>,
      IGNORED_KWARGS,
    );
    if (typeof cfg.mlpRatio === 'number') cfg.mlpRatio = [cfg.mlpRatio, cfg.mlpRatio];
    this.config = cfg;
    const [ih, iw] = pair(cfg.imgSize);
    if (ih % cfg.patchSize !== 0 || iw % cfg.patchSize !== 0) {
      throw new Error(`MlpMixer: img_size ${ih}x${iw} is not a multiple of patch_size ${cfg.patchSize}`);
    }
    this.gridSize = [ih / cfg.patchSize, iw / cfg.patchSize];
    this.numClasses = cfg.numClasses;
    this.numFeatures = cfg.embedDim;
    const seqLen = this.gridSize[0] * this.gridSize[1];
    this.stem = new PatchEmbed(cfg.patchSize, cfg.inChans, cfg.embedDim, {
      normEps: cfg.stemNorm ? cfg.normEps : null,
    });
    this.blocks = new ModuleList(
      Array.from(
        { length: cfg.numBlocks },
        (_, i) =>
          new MixerBlock(cfg.embedDim, seqLen, {
            mlpRatio: cfg.mlpRatio,
            drop: cfg.projDropRate,
            dropPath: cfg.numBlocks > 1 ? (cfg.dropPathRate * i) / (cfg.numBlocks - 1) : cfg.dropPathRate,
            normEps: cfg.normEps,
          }),
      ),
    );
    this.norm = new LayerNorm(cfg.embedDim, { eps: cfg.normEps });
    this.head_drop = new Dropout(cfg.dropRate);
    this.head = cfg.numClasses > 0 ? new Linear(cfg.embedDim, cfg.numClasses) : new Identity();
    if (cfg.weightInit !== 'skip') initLinearsTimm(this);
  }

  /** (B, C, H, W) → (B, N, D); the token MLP fixes N, so the input size is fixed. */
  forwardFeatures(x: Tensor, _options: FeatureOptions = {}): Tensor {
    const [B, H, W] = this.checkImageBatch(x, this.config.inChans);
    const [gh, gw] = this.gridSize;
    const P = this.config.patchSize;
    if (H !== gh * P || W !== gw * P) {
      throw new Error(
        `MlpMixer: input is ${H}x${W} but the model takes ${gh * P}x${gw * P} (the token MLP has a fixed number of tokens); resize the image to ${gh * P}x${gw * P}`,
      );
    }
    let t = reshape(this.stem.forward(x), [B, gh * gw, this.numFeatures]);
    for (const blk of this.blocks) t = blk.forward(t);
    return this.norm.forward(t);
  }

  forwardHead(x: Tensor, options: { preLogits?: boolean } = {}): Tensor {
    const pooled = this.head_drop.forward(this.config.globalPool === 'avg' ? mean(x, 1) : x);
    return options.preLogits ? pooled : this.head.forward(pooled);
  }
}
