/**
 * Vision Transformer (Dosovitskiy et al.) and DeiT (Touvron et al.) with timm's module names, so timm
 * checkpoints load as they are; the checkpoint filter maps Hugging Face (ViT, DeiT, transformers 4
 * and 5 layouts) and torchvision names onto them and resamples absolute position embeddings.
 *
 *   image (B, C, H, W) → patches (B, N, D) → [cls, reg..., patches] + pos → blocks → norm → pool → head
 */
import { Conv2d } from '../nn/conv.js';
import { kaimingNormal_, normal_, truncNormal_ } from '../nn/init.js';
import { DropPath, Dropout, isDropping, isPlainLinear, LayerScale, Mlp, ReLU } from '../nn/layers.js';
import { LayerNorm, Linear } from '../nn/linear.js';
import {
  Identity,
  Module,
  ModuleList,
  Parameter,
  Sequential,
  type StateDict,
  type TensorModule,
} from '../nn/module.js';
import { BatchNorm2d } from '../nn/norm.js';
import { scaledDotProductAttention } from '../ops/attention.js';
import { zeros } from '../ops/creation.js';
import { add, div, mul } from '../ops/elementwise.js';
import { linear } from '../ops/matmul.js';
import { qkvAttention } from '../ops/qkv_attention.js';
import { amax, mean } from '../ops/reduce.js';
import { interpolate } from '../ops/resample.js';
import { cat, expand, permute, reshape, select, slice, transpose, unbind } from '../ops/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  type FeatureOptions,
  type FilteredCheckpoint,
  geluMlp,
  ImageClassifier,
  initLinearsTimm,
  type WeightInit,
  pair,
  resolveConfig,
} from './classifier.js';

export type VitPool = 'token' | 'avg' | 'max' | 'avgmax' | '';

export interface VitConfig {
  imgSize: number | [number, number];
  patchSize: number;
  inChans: number;
  numClasses: number;
  globalPool: VitPool;
  embedDim: number;
  depth: number;
  numHeads: number;
  mlpRatio: number;
  qkvBias: boolean;
  /** LayerScale init value; null = no LayerScale. */
  initValues: number | null;
  classToken: boolean;
  regTokens: number;
  /** Position embeddings cover the patches only; prefix tokens are added after. */
  noEmbedClass: boolean;
  /** A LayerNorm before the blocks (CLIP). */
  preNorm: boolean;
  finalNorm: boolean;
  /** Norm after pooling instead of before; null = timm's default (true for avg/max pooling). */
  fcNorm: boolean | null;
  /** Accept any input size that is a multiple of the patch, resampling the position embeddings. */
  dynamicImgSize: boolean;
  dropRate: number;
  posDropRate: number;
  projDropRate: number;
  attnDropRate: number;
  dropPathRate: number;
  normEps: number;
  /** 'gelu' (exact, timm and HF) or 'gelu_tanh'. */
  actLayer: 'gelu' | 'gelu_tanh';
  /** Bias in the patch projection (timm drops it with preNorm). */
  patchBias: boolean | null;
  /**
   * A convolutional stem in place of the patchify conv (Xiao et al. 2021, "Early convolutions help
   * transformers see better"; the ViT paper's hybrid with a small CNN): one 3x3 conv + BatchNorm + ReLU
   * per entry (its output channels), the last log2(patch_size) of them with stride 2, then a 1x1
   * projection to embed_dim. Empty: timm's patchify conv. A glimpse option (`conv_stem`), named
   * patch_embed.backbone.{i}.{conv,bn} and patch_embed.proj.
   */
  convStem: number[];
  weightInit: WeightInit;
}

export const VIT_DEFAULTS: VitConfig = {
  imgSize: 224,
  patchSize: 16,
  inChans: 3,
  numClasses: 1000,
  globalPool: 'token',
  embedDim: 768,
  depth: 12,
  numHeads: 12,
  mlpRatio: 4,
  qkvBias: true,
  initValues: null,
  classToken: true,
  regTokens: 0,
  noEmbedClass: false,
  preNorm: false,
  finalNorm: true,
  fcNorm: null,
  dynamicImgSize: false,
  dropRate: 0,
  posDropRate: 0,
  projDropRate: 0,
  attnDropRate: 0,
  dropPathRate: 0,
  normEps: 1e-6,
  actLayer: 'gelu',
  patchBias: null,
  convStem: [],
  weightInit: '',
};

/** timm kwargs that change nothing at inference or are the defaults glimpse already implements. */
const IGNORED_KWARGS = ['fix_init', 'pos_embed', 'embed_layer', 'block_fn'];

export interface DeitConfig extends VitConfig {
  /** HF DeiTForImageClassification has the distillation token but classifies from the class token only. */
  distilledHead: boolean;
}

/**
 * Image to patch tokens. The projection is timm's Conv2d (kernel = stride = patch), computed as one
 * GEMM over patch-major rows so the tokens come out (B, N, D) without a transpose.
 */
export class PatchEmbed extends Module {
  backbone: Sequential | null;
  proj: Conv2d;
  norm: TensorModule;
  readonly patchSize: number;

  constructor(
    patchSize: number,
    readonly inChans: number,
    readonly embedDim: number,
    options: { bias?: boolean; normEps?: number | null; convStem?: readonly number[] } = {},
  ) {
    super();
    this.patchSize = patchSize;
    const stem = options.convStem ?? [];
    if (stem.length) {
      const halvings = Math.log2(patchSize);
      if (!Number.isInteger(halvings) || halvings > stem.length) {
        throw new Error(
          `PatchEmbed: conv_stem of ${stem.length} convs cannot reach patch_size ${patchSize}; use a power of two <= 2^${stem.length}`,
        );
      }
      this.backbone = new Sequential(
        stem.map((c, i) => new ConvBnRelu(i ? stem[i - 1] : inChans, c, i >= stem.length - halvings ? 2 : 1)),
      );
      this.proj = new Conv2d(stem[stem.length - 1], embedDim, 1, { bias: options.bias ?? true });
    } else {
      this.backbone = null;
      this.proj = new Conv2d(inChans, embedDim, patchSize, { stride: patchSize, bias: options.bias ?? true });
    }
    this.norm = options.normEps ? new LayerNorm(embedDim, { eps: options.normEps }) : new Identity();
  }

  /** (B, C, H, W) → (B, H/P, W/P, D) tokens, row-major over the patch grid. */
  forward(x: Tensor): Tensor {
    const [B, C, H, W] = x.shape;
    const P = this.patchSize;
    if (H % P !== 0 || W % P !== 0) {
      throw new Error(
        `PatchEmbed: input ${H}x${W} is not a multiple of the patch size ${P}; resize or crop to a multiple of ${P}`,
      );
    }
    const gh = H / P;
    const gw = W / P;
    if (this.backbone) {
      // conv stem → (B, C', gh, gw); the 1x1 projection is one GEMM over channels-last rows
      const f = this.backbone.forward(x);
      const rows = permute(f, [0, 2, 3, 1]);
      const w = reshape(this.proj.weight, [this.embedDim, f.shape[1]]);
      return this.norm.forward(linear(rows, w, this.proj.bias)); // (B, gh, gw, D)
    }
    // (B, C, gh, P, gw, P) → (B, gh, gw, C, P, P): each row is one patch in the conv weight's (C, P, P) order.
    const patches = reshape(permute(reshape(x, [B, C, gh, P, gw, P]), [0, 2, 4, 1, 3, 5]), [
      B,
      gh,
      gw,
      C * P * P,
    ]);
    const w = reshape(this.proj.weight, [this.embedDim, C * P * P]);
    return this.norm.forward(linear(patches, w, this.proj.bias)); // (B, gh, gw, D)
  }
}

/** 3x3 conv (no bias) + BatchNorm + ReLU: one layer of PatchEmbed's conv stem. */
export class ConvBnRelu extends Module implements TensorModule {
  conv: Conv2d;
  bn: BatchNorm2d;
  act: ReLU;

  constructor(inChans: number, outChans: number, stride: number) {
    super();
    this.conv = new Conv2d(inChans, outChans, 3, { stride, padding: 1, bias: false });
    kaimingNormal_(this.conv.weight, { mode: 'fan_out', nonlinearity: 'relu' });
    this.bn = new BatchNorm2d(outChans);
    this.act = new ReLU();
  }

  forward(x: Tensor): Tensor {
    return this.act.forward(this.bn.forward(this.conv.forward(x)));
  }
}

export class Attention extends Module {
  qkv: Linear;
  attn_drop: Dropout;
  proj: Linear;
  proj_drop: Dropout;
  readonly headDim: number;

  constructor(
    dim: number,
    readonly numHeads: number,
    options: { qkvBias?: boolean; attnDrop?: number; projDrop?: number } = {},
  ) {
    super();
    if (dim % numHeads !== 0) throw new Error(`Attention: dim ${dim} is not divisible by ${numHeads} heads`);
    this.headDim = dim / numHeads;
    this.qkv = new Linear(dim, 3 * dim, { bias: options.qkvBias ?? true });
    this.attn_drop = new Dropout(options.attnDrop ?? 0);
    this.proj = new Linear(dim, dim);
    this.proj_drop = new Dropout(options.projDrop ?? 0);
  }

  /** With `residual`: residual + attn(x), the add in proj's GEMM where no gradient is recorded. */
  forward(x: Tensor, attentions?: Tensor[], residual?: Tensor): Tensor {
    const [B, N, C] = x.shape;
    const dropoutP = this.training ? this.attn_drop.p : 0;
    if (!attentions && dropoutP === 0) {
      // The common path: heads gathered and merged inside one op, no permuted copies in the graph.
      return this.project(qkvAttention(this.qkv.forward(x), this.numHeads), residual);
    }
    // One GEMM for q, k and v, one copy into head-major layout.
    const qkv = permute(
      reshape(this.qkv.forward(x), [B, N, 3, this.numHeads, this.headDim]),
      [2, 0, 3, 1, 4],
    ); // (3, B, H, N, D)
    const [q, k, v] = unbind(qkv, 0);
    let out: Tensor;
    if (attentions) {
      const r = scaledDotProductAttention(q, k, v, { dropoutP, returnProbs: true });
      attentions.push(r.probs);
      out = r.output;
    } else {
      out = scaledDotProductAttention(q, k, v, { dropoutP });
    }
    const merged = reshape(transpose(out, 1, 2), [B, N, C]); // (B, N, C)
    return this.project(merged, residual);
  }

  private project(merged: Tensor, residual: Tensor | undefined): Tensor {
    if (residual && isPlainLinear(this.proj) && !isDropping(this.proj_drop)) {
      return linear(merged, this.proj.weight, this.proj.bias, { residual });
    }
    const y = this.proj_drop.forward(this.proj.forward(merged));
    return residual ? add(residual, y) : y;
  }
}

export class Block extends Module {
  norm1: LayerNorm;
  attn: Attention;
  ls1: TensorModule;
  drop_path1: DropPath;
  norm2: LayerNorm;
  mlp: Mlp;
  ls2: TensorModule;
  drop_path2: DropPath;

  constructor(
    dim: number,
    numHeads: number,
    options: {
      mlpRatio: number;
      qkvBias: boolean;
      initValues: number | null;
      projDrop: number;
      attnDrop: number;
      dropPath: number;
      normEps: number;
      actLayer: 'gelu' | 'gelu_tanh';
    },
  ) {
    super();
    this.norm1 = new LayerNorm(dim, { eps: options.normEps });
    this.attn = new Attention(dim, numHeads, {
      qkvBias: options.qkvBias,
      attnDrop: options.attnDrop,
      projDrop: options.projDrop,
    });
    this.ls1 = options.initValues !== null ? new LayerScale(dim, options.initValues) : new Identity();
    this.drop_path1 = new DropPath(options.dropPath);
    this.norm2 = new LayerNorm(dim, { eps: options.normEps });
    this.mlp = geluMlp(dim, options.mlpRatio, options.actLayer, options.projDrop);
    this.ls2 = options.initValues !== null ? new LayerScale(dim, options.initValues) : new Identity();
    this.drop_path2 = new DropPath(options.dropPath);
  }

  forward(x: Tensor, attentions?: Tensor[]): Tensor {
    if (
      this.ls1 instanceof Identity &&
      this.ls2 instanceof Identity &&
      !isDropping(this.drop_path1) &&
      !isDropping(this.drop_path2) &&
      this.attn.forward === Attention.prototype.forward &&
      this.mlp.forward === Mlp.prototype.forward
    ) {
      // Both residual adds inside the output GEMMs (attn.proj, mlp.fc2) when nothing records
      // gradients; `a` is this block's own temporary, so fc2 may accumulate into it.
      const a = this.attn.forward(this.norm1.forward(x), attentions, x);
      return this.mlp.forward(this.norm2.forward(a), a, true);
    }
    const a = add(
      x,
      this.drop_path1.forward(this.ls1.forward(this.attn.forward(this.norm1.forward(x), attentions))),
    );
    return add(a, this.drop_path2.forward(this.ls2.forward(this.mlp.forward(this.norm2.forward(a)))));
  }
}

/**
 * timm's resample_abs_pos_embed: (1, prefix + h*w, D) position embeddings to a new grid, bicubic with
 * antialiasing, prefix-token embeddings kept as they are.
 */
export function resampleAbsPosEmbed(
  posEmbed: Tensor,
  newSize: [number, number],
  numPrefixTokens: number,
  oldSize?: [number, number],
): Tensor {
  const D = posEmbed.shape[2];
  const numPos = posEmbed.shape[1] - numPrefixTokens;
  let old = oldSize;
  if (!old) {
    const side = Math.round(Math.sqrt(numPos));
    if (side * side !== numPos) {
      throw new Error(
        `resampleAbsPosEmbed: ${numPos} position embeddings (after ${numPrefixTokens} prefix tokens) do not form a square grid; pass the old grid size`,
      );
    }
    old = [side, side];
  }
  if (old[0] === newSize[0] && old[1] === newSize[1]) return posEmbed;
  const prefix = numPrefixTokens > 0 ? slice(posEmbed, 1, 0, numPrefixTokens) : null;
  const grid = permute(reshape(slice(posEmbed, 1, numPrefixTokens), [1, old[0], old[1], D]), [0, 3, 1, 2]); // (1, D, h, w)
  const resized = interpolate(grid, { size: newSize, mode: 'bicubic', alignCorners: false, antialias: true });
  const tokens = reshape(permute(resized, [0, 2, 3, 1]), [1, newSize[0] * newSize[1], D]);
  return prefix ? cat([prefix, tokens], 1) : tokens;
}

export class VisionTransformer extends ImageClassifier {
  readonly family: string = 'vit';
  readonly config: VitConfig;
  readonly numClasses: number;
  readonly numFeatures: number;
  readonly numPrefixTokens: number;
  readonly patchSize: number;
  /** The patch grid the position embeddings were made for. */
  readonly gridSize: [number, number];

  cls_token: Parameter | null;
  reg_token: Parameter | null;
  pos_embed: Parameter;
  pos_drop: Dropout;
  patch_embed: PatchEmbed;
  norm_pre: TensorModule;
  blocks: ModuleList<Block>;
  norm: TensorModule;
  fc_norm: TensorModule;
  head_drop: Dropout;
  head: TensorModule;

  constructor(overrides: Partial<VitConfig> | Record<string, unknown> = {}, extraPrefixTokens = 0) {
    super();
    const cfg = resolveConfig(
      new.target.name,
      VIT_DEFAULTS as unknown as VitConfig,
      overrides as Record<string, unknown>,
      IGNORED_KWARGS,
    );
    this.config = cfg;
    if (!['token', 'avg', 'max', 'avgmax', ''].includes(cfg.globalPool)) {
      throw new Error(
        `${new.target.name}: global_pool '${cfg.globalPool}' is not supported (token, avg, max, avgmax, '')`,
      );
    }
    if (cfg.globalPool === 'token' && !cfg.classToken) {
      throw new Error(`${new.target.name}: global_pool 'token' needs class_token; use global_pool 'avg'`);
    }
    const D = cfg.embedDim;
    const [ih, iw] = pair(cfg.imgSize);
    if (ih % cfg.patchSize !== 0 || iw % cfg.patchSize !== 0) {
      throw new Error(
        `${new.target.name}: img_size ${ih}x${iw} is not a multiple of patch_size ${cfg.patchSize}`,
      );
    }
    this.patchSize = cfg.patchSize;
    this.gridSize = [ih / cfg.patchSize, iw / cfg.patchSize];
    this.numClasses = cfg.numClasses;
    this.numFeatures = D;
    this.numPrefixTokens = (cfg.classToken ? 1 : 0) + cfg.regTokens + extraPrefixTokens;
    const useFcNorm = cfg.fcNorm ?? ['avg', 'max', 'avgmax'].includes(cfg.globalPool);
    const embedLen = this.gridSize[0] * this.gridSize[1] + (cfg.noEmbedClass ? 0 : this.numPrefixTokens);

    this.cls_token = cfg.classToken ? new Parameter(normal_(zeros([1, 1, D]), 0, 1e-6)) : null;
    this.reg_token = cfg.regTokens > 0 ? new Parameter(normal_(zeros([1, cfg.regTokens, D]), 0, 1e-6)) : null;
    this.pos_embed = new Parameter(truncNormal_(zeros([1, embedLen, D]), 0.02));
    this.pos_drop = new Dropout(cfg.posDropRate);
    this.patch_embed = new PatchEmbed(cfg.patchSize, cfg.inChans, D, {
      bias: cfg.patchBias ?? !cfg.preNorm,
      convStem: cfg.convStem,
    });
    this.norm_pre = cfg.preNorm ? new LayerNorm(D, { eps: cfg.normEps }) : new Identity();
    this.blocks = new ModuleList(
      Array.from(
        { length: cfg.depth },
        (_, i) =>
          new Block(D, cfg.numHeads, {
            mlpRatio: cfg.mlpRatio,
            qkvBias: cfg.qkvBias,
            initValues: cfg.initValues,
            projDrop: cfg.projDropRate,
            attnDrop: cfg.attnDropRate,
            // stochastic depth rises linearly with depth, as timm
            dropPath: cfg.depth > 1 ? (cfg.dropPathRate * i) / (cfg.depth - 1) : cfg.dropPathRate,
            normEps: cfg.normEps,
            actLayer: cfg.actLayer,
          }),
      ),
    );
    this.norm = cfg.finalNorm && !useFcNorm ? new LayerNorm(D, { eps: cfg.normEps }) : new Identity();
    this.fc_norm = cfg.finalNorm && useFcNorm ? new LayerNorm(D, { eps: cfg.normEps }) : new Identity();
    this.head_drop = new Dropout(cfg.dropRate);
    this.head = cfg.numClasses > 0 ? new Linear(D, cfg.numClasses) : new Identity();
    if (cfg.weightInit !== 'skip') initLinearsTimm(this);
  }

  /** The patch grid for an input of h x w pixels, or the one-line error when the model cannot take it. */
  protected gridFor(h: number, w: number): [number, number] {
    const P = this.patchSize;
    const [gh, gw] = this.gridSize;
    if (this.config.dynamicImgSize) {
      if (h % P !== 0 || w % P !== 0) {
        throw new Error(
          `${this.constructor.name}: input ${h}x${w} is not a multiple of the patch size ${P}; resize to a multiple of ${P}`,
        );
      }
      return [h / P, w / P];
    }
    if (h !== gh * P || w !== gw * P) {
      throw new Error(
        `${this.constructor.name}: input is ${h}x${w} but the model takes ${gh * P}x${gw * P} (fixed position embeddings); resize the image to ${gh * P}x${gw * P}, or create the model with img_size [${h}, ${w}] and load the checkpoint again (position embeddings are resampled on load)`,
      );
    }
    return [gh, gw];
  }

  /** Prefix tokens in front of the patch tokens: class token, then registers. */
  protected prefixTokens(): Tensor[] {
    return [this.cls_token, this.reg_token].filter((t): t is Parameter => t !== null);
  }

  protected posEmbed(x: Tensor, grid: [number, number]): Tensor {
    const B = x.shape[0];
    const D = this.numFeatures;
    let pos: Tensor = this.pos_embed;
    if (grid[0] !== this.gridSize[0] || grid[1] !== this.gridSize[1]) {
      const prefix = this.config.noEmbedClass ? 0 : this.numPrefixTokens;
      pos = resampleAbsPosEmbed(pos, grid, prefix, this.gridSize);
    }
    const prefix = this.prefixTokens().map((t) => expand(t, [B, t.shape[1], D]));
    let tokens = x;
    if (this.config.noEmbedClass) {
      tokens = add(tokens, pos);
      if (prefix.length) tokens = cat([...prefix, tokens], 1);
    } else {
      if (prefix.length) tokens = cat([...prefix, tokens], 1);
      tokens = add(tokens, pos);
    }
    return this.pos_drop.forward(tokens); // (B, prefix + N, D)
  }

  forwardFeatures(x: Tensor, options: FeatureOptions = {}): Tensor {
    const [B, H, W] = this.checkImageBatch(x, this.config.inChans);
    const grid = this.gridFor(H, W);
    const patches = reshape(this.patch_embed.forward(x), [B, grid[0] * grid[1], this.numFeatures]); // (B, N, D)
    let t = this.norm_pre.forward(this.posEmbed(patches, grid));
    for (const blk of this.blocks) t = blk.forward(t, options.attentions);
    return this.norm.forward(t);
  }

  /** Pooled (B, D) features from the token sequence (B, N, D) per global_pool. */
  protected pool(x: Tensor): Tensor {
    const npt = this.numPrefixTokens;
    switch (this.config.globalPool) {
      case 'token':
        return select(x, 1, 0);
      case 'avg':
        return mean(slice(x, 1, npt), 1);
      case 'max':
        return amax(slice(x, 1, npt), 1);
      case 'avgmax': {
        const patches = slice(x, 1, npt);
        return mul(add(mean(patches, 1), amax(patches, 1)), 0.5);
      }
      default:
        return x;
    }
  }

  forwardHead(x: Tensor, options: { preLogits?: boolean } = {}): Tensor {
    const pooled = this.head_drop.forward(this.fc_norm.forward(this.pool(x)));
    return options.preLogits ? pooled : this.head.forward(pooled);
  }

  override filterCheckpoint(sd: StateDict): FilteredCheckpoint {
    return filterVitCheckpoint(this, sd);
  }
}

/** DeiT with a distillation token and head: eval logits are the mean of both heads (timm). */
export class VisionTransformerDistilled extends VisionTransformer {
  override readonly family: string = 'deit';
  dist_token: Parameter;
  head_dist: TensorModule | null;

  constructor(overrides: Partial<DeitConfig> | Record<string, unknown> = {}) {
    const { distilled_head, distilledHead, ...rest } = overrides as Record<string, unknown>;
    super({ classToken: true, ...rest }, 1);
    if (this.config.regTokens > 0 || this.config.globalPool !== 'token') {
      throw new Error('VisionTransformerDistilled: needs global_pool token and no register tokens');
    }
    const D = this.numFeatures;
    this.dist_token = new Parameter(truncNormal_(zeros([1, 1, D]), 0.02));
    const withHead = (distilledHead ?? distilled_head ?? true) as boolean;
    this.head_dist = !withHead ? null : this.numClasses > 0 ? new Linear(D, this.numClasses) : new Identity();
    if (this.head_dist instanceof Linear && this.config.weightInit !== 'skip')
      initLinearsTimm(this.head_dist);
  }

  protected override prefixTokens(): Tensor[] {
    return [this.cls_token as Parameter, this.dist_token];
  }

  /**
   * Both heads, for distillation training (timm's distilled_training forward): class-token logits and
   * distillation-token logits. forward() always returns their mean, as timm does in eval.
   */
  forwardHeads(x: Tensor): { logits: Tensor; distLogits: Tensor } {
    if (!this.head_dist) throw new Error('VisionTransformerDistilled: this model has no distillation head');
    const feats = this.forwardFeatures(x);
    return {
      logits: this.head.forward(this.head_drop.forward(select(feats, 1, 0))),
      distLogits: this.head_dist.forward(this.head_drop.forward(select(feats, 1, 1))),
    };
  }

  override forwardHead(x: Tensor, options: { preLogits?: boolean } = {}): Tensor {
    const cls = this.head_drop.forward(select(x, 1, 0));
    if (!this.head_dist) return options.preLogits ? cls : this.head.forward(cls);
    const dist = this.head_drop.forward(select(x, 1, 1));
    if (options.preLogits) return div(add(cls, dist), 2);
    return div(add(this.head.forward(cls), this.head_dist.forward(dist)), 2);
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoint filter: Hugging Face (transformers 4 and 5) and torchvision names → timm names.

const HF_VIT_BLOCK = /^(?:vit\.|deit\.)?(?:encoder\.layer|encoder\.layers|layers)\.(\d+)\.(.+)$/;

const HF_VIT_BLOCK_PARTS: Array<[RegExp, string]> = [
  [/^attention\.(?:attention|self)\.query\.(weight|bias)$/, 'q.$1'],
  [/^attention\.(?:attention|self)\.key\.(weight|bias)$/, 'k.$1'],
  [/^attention\.(?:attention|self)\.value\.(weight|bias)$/, 'v.$1'],
  [/^attention\.q_proj\.(weight|bias)$/, 'q.$1'],
  [/^attention\.k_proj\.(weight|bias)$/, 'k.$1'],
  [/^attention\.v_proj\.(weight|bias)$/, 'v.$1'],
  [/^attention\.(?:output\.dense|o_proj|out_proj)\.(weight|bias)$/, 'attn.proj.$1'],
  [/^(?:intermediate\.dense|mlp\.fc1)\.(weight|bias)$/, 'mlp.fc1.$1'],
  [/^(?:output\.dense|mlp\.fc2)\.(weight|bias)$/, 'mlp.fc2.$1'],
  [/^layernorm_before\.(weight|bias)$/, 'norm1.$1'],
  [/^layernorm_after\.(weight|bias)$/, 'norm2.$1'],
];

const HF_VIT_TOP: Array<[RegExp, string]> = [
  [/^(?:vit\.|deit\.)?embeddings\.cls_token$/, 'cls_token'],
  [/^(?:vit\.|deit\.)?embeddings\.distillation_token$/, 'dist_token'],
  [/^(?:vit\.|deit\.)?embeddings\.position_embeddings$/, 'pos_embed'],
  [/^(?:vit\.|deit\.)?embeddings\.patch_embeddings\.projection\.(weight|bias)$/, 'patch_embed.proj.$1'],
  [/^(?:vit\.|deit\.)?layernorm\.(weight|bias)$/, 'norm.$1'],
  [/^(?:classifier|cls_classifier)\.(weight|bias)$/, 'head.$1'],
  [/^distillation_classifier\.(weight|bias)$/, 'head_dist.$1'],
];

/** Keys a Hugging Face checkpoint carries that a classifier does not use. */
const HF_VIT_UNUSED = /^(?:vit\.|deit\.)?(?:pooler\.|embeddings\.mask_token$)/;

const TV_VIT: Array<[RegExp, string]> = [
  [/^class_token$/, 'cls_token'],
  [/^conv_proj\.(weight|bias)$/, 'patch_embed.proj.$1'],
  [/^encoder\.pos_embedding$/, 'pos_embed'],
  [/^encoder\.ln\.(weight|bias)$/, 'norm.$1'],
  [/^heads\.head\.(weight|bias)$/, 'head.$1'],
  [/^encoder\.layers\.encoder_layer_(\d+)\.ln_1\.(weight|bias)$/, 'blocks.$1.norm1.$2'],
  [/^encoder\.layers\.encoder_layer_(\d+)\.ln_2\.(weight|bias)$/, 'blocks.$1.norm2.$2'],
  [/^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.in_proj_(weight|bias)$/, 'blocks.$1.attn.qkv.$2'],
  [
    /^encoder\.layers\.encoder_layer_(\d+)\.self_attention\.out_proj\.(weight|bias)$/,
    'blocks.$1.attn.proj.$2',
  ],
  [/^encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:0|linear_1)\.(weight|bias)$/, 'blocks.$1.mlp.fc1.$2'],
  [/^encoder\.layers\.encoder_layer_(\d+)\.mlp\.(?:3|linear_2)\.(weight|bias)$/, 'blocks.$1.mlp.fc2.$2'],
];

function renameAll(sd: StateDict, rules: Array<[RegExp, string]>): StateDict {
  const out: StateDict = new Map();
  for (const [k, v] of sd) {
    const rule = rules.find(([re]) => re.test(k));
    out.set(rule ? k.replace(rule[0], rule[1]) : k, v);
  }
  return out;
}

export function detectVitSource(sd: StateDict): 'timm' | 'huggingface' | 'torchvision' {
  const keys = [...sd.keys()];
  if (keys.some((k) => k.startsWith('encoder.layers.encoder_layer_') || k === 'conv_proj.weight'))
    return 'torchvision';
  if (keys.some((k) => /(?:^|\.)embeddings\.(?:patch_embeddings|position_embeddings|cls_token)/.test(k)))
    return 'huggingface';
  return 'timm';
}

function fromHuggingFace(sd: StateDict, notes: string[]): StateDict {
  const out: StateDict = new Map();
  const qkv = new Map<string, { q?: Tensor; k?: Tensor; v?: Tensor }>();
  const dropped: string[] = [];
  for (const [key, t] of sd) {
    if (HF_VIT_UNUSED.test(key)) {
      dropped.push(key);
      continue;
    }
    const block = HF_VIT_BLOCK.exec(key);
    if (block) {
      const [, i, rest] = block;
      const rule = HF_VIT_BLOCK_PARTS.find(([re]) => re.test(rest));
      if (!rule) {
        out.set(key, t);
        continue;
      }
      const name = rest.replace(rule[0], rule[1]);
      const m = /^([qkv])\.(weight|bias)$/.exec(name);
      if (m) {
        const slot = `blocks.${i}.attn.qkv.${m[2]}`;
        const parts = qkv.get(slot) ?? {};
        parts[m[1] as 'q' | 'k' | 'v'] = t;
        qkv.set(slot, parts);
      } else {
        out.set(`blocks.${i}.${name}`, t);
      }
      continue;
    }
    const rule = HF_VIT_TOP.find(([re]) => re.test(key));
    out.set(rule ? key.replace(rule[0], rule[1]) : key, t);
  }
  for (const [slot, { q, k, v }] of qkv) {
    if (!q || !k || !v)
      throw new Error(
        `loadCheckpoint: Hugging Face checkpoint has an incomplete query/key/value set for ${slot}`,
      );
    out.set(slot, cat([q, k, v], 0));
  }
  if (dropped.length)
    notes.push(
      `dropped ${dropped.length} Hugging Face keys a classifier does not use (${dropped.join(', ')})`,
    );
  return out;
}

/** timm's checkpoint_filter_fn for ViT/DeiT: foreign names, then position-embedding resampling. */
export function filterVitCheckpoint(model: VisionTransformer, sd: StateDict): FilteredCheckpoint {
  const source = detectVitSource(sd);
  const notes: string[] = [];
  let out = sd;
  if (source === 'huggingface') out = fromHuggingFace(sd, notes);
  else if (source === 'torchvision') {
    if ([...sd.keys()].some((k) => k.startsWith('heads.pre_logits'))) {
      throw new Error(
        'loadCheckpoint: torchvision VisionTransformer with representation_size (heads.pre_logits) is not supported; use a checkpoint without a pre-logits layer',
      );
    }
    out = renameAll(sd, TV_VIT);
  }
  const pos = out.get('pos_embed');
  if (
    pos &&
    pos.ndim === 3 &&
    pos.shape[1] !== model.pos_embed.shape[1] &&
    pos.shape[2] === model.pos_embed.shape[2]
  ) {
    const prefix = model.config.noEmbedClass ? 0 : model.numPrefixTokens;
    const resampled = resampleAbsPosEmbed(pos, model.gridSize, prefix);
    const oldSide = Math.round(Math.sqrt(pos.shape[1] - prefix));
    notes.push(
      `resampled pos_embed from a ${oldSide}x${oldSide} to a ${model.gridSize[0]}x${model.gridSize[1]} patch grid (bicubic, antialiased)`,
    );
    out.set('pos_embed', resampled.detach());
  }
  return { stateDict: out, source, notes };
}

/** A torchvision VisionTransformer (image_size, patch_size, num_layers, ...) as a timm-named ViT. */
export function vitFromTorchvision(
  kwargs: Record<string, unknown>,
  weightInit: WeightInit = '',
): VisionTransformer {
  const known = [
    'image_size',
    'patch_size',
    'num_layers',
    'num_heads',
    'hidden_dim',
    'mlp_dim',
    'num_classes',
    'dropout',
    'attention_dropout',
  ];
  for (const k of Object.keys(kwargs)) {
    if (!known.includes(k))
      throw new Error(`torchvision VisionTransformer: option '${k}' is not supported (${known.join(', ')})`);
  }
  const hidden = Number(kwargs.hidden_dim);
  return new VisionTransformer({
    imgSize: Number(kwargs.image_size),
    patchSize: Number(kwargs.patch_size),
    depth: Number(kwargs.num_layers),
    numHeads: Number(kwargs.num_heads),
    embedDim: hidden,
    mlpRatio: Number(kwargs.mlp_dim) / hidden,
    numClasses: Number(kwargs.num_classes ?? 1000),
    dropRate: 0,
    projDropRate: Number(kwargs.dropout ?? 0),
    attnDropRate: Number(kwargs.attention_dropout ?? 0),
    normEps: 1e-6,
    weightInit,
  });
}

/** A Hugging Face ViT/DeiT config.json as a timm-named model. */
export function vitFromHfConfig(
  config: Record<string, unknown>,
  architecture: 'classification' | 'teacher' | 'bare',
  weightInit: WeightInit = '',
): VisionTransformer {
  const hidden = Number(config.hidden_size ?? 768);
  const common = {
    imgSize: pair((config.image_size as number | number[]) ?? 224),
    patchSize: Number(config.patch_size ?? 16),
    inChans: Number(config.num_channels ?? 3),
    embedDim: hidden,
    depth: Number(config.num_hidden_layers ?? 12),
    numHeads: Number(config.num_attention_heads ?? 12),
    mlpRatio: Number(config.intermediate_size ?? 3072) / hidden,
    qkvBias: (config.qkv_bias ?? true) as boolean,
    normEps: Number(config.layer_norm_eps ?? 1e-12),
    actLayer: hfActivation(config.hidden_act),
    numClasses: architecture === 'bare' ? 0 : hfNumLabels(config),
    weightInit,
  };
  if (config.model_type === 'deit') {
    return new VisionTransformerDistilled({ ...common, distilledHead: architecture !== 'classification' });
  }
  return new VisionTransformer(common);
}

export function hfActivation(act: unknown): 'gelu' | 'gelu_tanh' {
  if (act === undefined || act === 'gelu') return 'gelu';
  if (act === 'gelu_new' || act === 'gelu_pytorch_tanh') return 'gelu_tanh';
  throw new Error(`Hugging Face config: hidden_act '${String(act)}' is not supported (gelu, gelu_new)`);
}

/** num_labels as transformers derives it: the size of id2label, else num_labels, else 2. */
export function hfNumLabels(config: Record<string, unknown>): number {
  const id2label = config.id2label as Record<string, string> | undefined;
  if (id2label && Object.keys(id2label).length > 0) return Object.keys(id2label).length;
  return Number(config.num_labels ?? 2);
}
