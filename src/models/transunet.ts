/**
 * TransUNet (Chen et al., 2021): a transformer encoder on image patches, a cascaded upsampler with
 * skip connections from a CNN, a segmentation head. Module names are those of the reference code
 * (github.com/Beckschen/TransUNet, vit_seg_modeling.py), except inside the transformer blocks, which
 * are timm's `Block` (the filter below renames attention_norm/attn.query.../ffn onto it), so the
 * authors' Synapse checkpoints load once converted to safetensors.
 *
 *   R50-ViT ('hybrid'):  image → root (StdConv 7x7/2, GroupNorm, ReLU)            → skip 3 (1/2)
 *                              → max pool 3/2 → block1 (bottlenecks)              → skip 2 (1/4)
 *                              → block2 (stride 2)                               → skip 1 (1/8)
 *                              → block3 (stride 2) → 1x1 patches (1/16) → ViT → tokens (B, N, D)
 *   ViT ('vit'):         image → patchSize x patchSize patches → ViT → tokens (no skips)
 *   decoder:             tokens → (B, D, h, w) → conv_more → [bilinear x2, cat skip, conv, conv] x 4 → head
 *
 * The CNN is the reference's ResNetV2 exactly: weight-standardized convs (StdConv2d) with GroupNorm,
 * the stride on the 3x3 conv, no pre-activation despite its class name (PreActBottleneck), a max pool
 * without padding and the skip features zero-padded at the bottom/right to H/4 and H/8 (the authors'
 * quirk for odd sizes, kept so their checkpoints give their outputs). The decoder convs use BatchNorm
 * as in the reference.
 */
import { BatchNorm2d, GroupNorm } from '../nn/norm.js';
import { Conv2d } from '../nn/conv.js';
import { truncNormal_ } from '../nn/init.js';
import { Dropout, ReLU } from '../nn/layers.js';
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
import { conv2d } from '../ops/conv.js';
import { zeros } from '../ops/creation.js';
import { add, div, sqrt, sub } from '../ops/elementwise.js';
import { maxPool2d } from '../ops/pool.js';
import { mean, variance } from '../ops/reduce.js';
import { interpolate } from '../ops/resample.js';
import { cat, pad, permute, reshape } from '../ops/shape.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { type FilteredCheckpoint, initLinearsTimm, pair, resolveConfig } from './classifier.js';
import { Block } from './vit.js';

export interface TransUnetConfig {
  imgSize: number | [number, number];
  inChans: number;
  numClasses: number;
  /** 'hybrid': ResNetV2 stages, then the ViT on 1x1 patches of their last map (R50-ViT); 'vit': the ViT on image patches. */
  encoder: 'hybrid' | 'vit';
  /** Bottleneck units per ResNetV2 block (R50: [3, 4, 9]); three blocks, total stride 16. */
  resnetLayers: number[];
  /** Root width (64 x width factor); block i outputs width * 4 * 2^i channels. */
  resnetWidth: number;
  /** Groups of the GroupNorms in the root and bottlenecks (32 in the reference). */
  gnGroups: number;
  /** Patch side in input pixels for 'vit' (a power of two: the decoder upsamples x2 per stage). */
  patchSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  mlpDim: number;
  /** Dropout after the position embeddings and in the MLPs (0.1 in the reference). */
  dropRate: number;
  attnDropRate: number;
  /** Output channels of the decoder stages; one x2 upsampling each. */
  decoderChannels: number[];
  /** Channels of conv_more, the conv between the tokens and the first decoder stage. */
  headChannels: number;
  /** How many CNN features the decoder concatenates (0 to 3; 'vit' has none). */
  nSkip: number;
  /** 'skip' keeps the layers' default init (for weights a checkpoint is about to replace). */
  weightInit: '' | 'skip';
}

/** R50-ViT-B_16 as in the paper (Synapse: 9 classes, 224 x 224). */
export const TRANSUNET_DEFAULTS: TransUnetConfig = {
  imgSize: 224,
  inChans: 3,
  numClasses: 9,
  encoder: 'hybrid',
  resnetLayers: [3, 4, 9],
  resnetWidth: 64,
  gnGroups: 32,
  patchSize: 16,
  hiddenSize: 768,
  numLayers: 12,
  numHeads: 12,
  mlpDim: 3072,
  dropRate: 0.1,
  attnDropRate: 0,
  decoderChannels: [256, 128, 64, 16],
  headChannels: 512,
  nSkip: 3,
  weightInit: '',
};

/**
 * Conv2d with weight standardization (Qiao et al.; BiT's StdConv2d): each output filter is shifted
 * to zero mean and scaled to unit (biased) variance before the convolution, eps 1e-5 as in the
 * reference. Differentiable through the standardization.
 */
export class StdConv2d extends Conv2d {
  override forward(x: Tensor): Tensor {
    const w = this.weight;
    const m = mean(w, [1, 2, 3], true);
    const v = variance(w, [1, 2, 3], { keepdim: true, correction: 0 });
    const ws = div(sub(w, m), sqrt(add(v, 1e-5)));
    return conv2d(x, ws, this.bias, this.options);
  }
}

/** Children under given names (torch's Sequential(OrderedDict(...))): `unit1`, `conv`, ... */
class NamedSequential extends Module implements TensorModule {
  private readonly order: TensorModule[];

  constructor(children: ReadonlyArray<[string, TensorModule]>) {
    super();
    for (const [name, m] of children) (this as unknown as Record<string, TensorModule>)[name] = m;
    this.order = children.map(([, m]) => m);
  }

  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.order) y = m.forward(y);
    return y;
  }
}

/**
 * The reference's PreActBottleneck (a post-activation bottleneck despite the name): 1x1 → 3x3
 * (stride) → 1x1, StdConv + GroupNorm, projection shortcut with a per-channel GroupNorm.
 */
export class PreActBottleneck extends Module implements TensorModule {
  gn1: GroupNorm;
  conv1: StdConv2d;
  gn2: GroupNorm;
  conv2: StdConv2d;
  gn3: GroupNorm;
  conv3: StdConv2d;
  relu: ReLU;
  downsample: StdConv2d | null = null;
  gn_proj: GroupNorm | null = null;

  constructor(cin: number, cout: number, cmid: number, stride: number, groups: number) {
    super();
    this.gn1 = new GroupNorm(groups, cmid, { eps: 1e-6 });
    this.conv1 = new StdConv2d(cin, cmid, 1, { bias: false });
    this.gn2 = new GroupNorm(groups, cmid, { eps: 1e-6 });
    this.conv2 = new StdConv2d(cmid, cmid, 3, { stride, padding: 1, bias: false });
    this.gn3 = new GroupNorm(groups, cout, { eps: 1e-6 });
    this.conv3 = new StdConv2d(cmid, cout, 1, { bias: false });
    this.relu = new ReLU();
    if (stride !== 1 || cin !== cout) {
      this.downsample = new StdConv2d(cin, cout, 1, { stride, bias: false });
      this.gn_proj = new GroupNorm(cout, cout);
    }
  }

  forward(x: Tensor): Tensor {
    const residual = this.downsample && this.gn_proj ? this.gn_proj.forward(this.downsample.forward(x)) : x;
    let y = this.relu.forward(this.gn1.forward(this.conv1.forward(x)));
    y = this.relu.forward(this.gn2.forward(this.conv2.forward(y)));
    y = this.gn3.forward(this.conv3.forward(y));
    return this.relu.forward(add(residual, y));
  }
}

/** The reference's ResNetV2 trunk: root, then block1..block3 (strides 1, 2, 2). */
export class ResNetV2 extends Module {
  root: NamedSequential;
  body: NamedSequential;
  readonly width: number;
  /** Channels of the skip features, deepest first: block2, block1, root. */
  readonly skipChannels: number[];
  readonly outChannels: number;
  private readonly stages: NamedSequential[];

  constructor(inChans: number, layers: readonly number[], width: number, groups: number) {
    super();
    if (layers.length !== 3 || layers.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new Error(`ResNetV2: resnetLayers must be three positive unit counts, got [${layers}]`);
    }
    for (const c of [width, width * 2, width * 4]) {
      if (c % groups !== 0) {
        throw new Error(
          `ResNetV2: width ${width} gives ${c}-channel GroupNorms that ${groups} groups cannot split; use a width that is a multiple of ${groups}`,
        );
      }
    }
    this.width = width;
    this.root = new NamedSequential([
      ['conv', new StdConv2d(inChans, width, 7, { stride: 2, padding: 3, bias: false })],
      ['gn', new GroupNorm(groups, width, { eps: 1e-6 })],
      ['relu', new ReLU()],
    ]);
    this.stages = layers.map((units, i) => {
      const cout = width * 4 * 2 ** i;
      const cmid = width * 2 ** i;
      const cin = i === 0 ? width : cout / 2;
      return new NamedSequential(
        Array.from({ length: units }, (_, u): [string, TensorModule] => [
          `unit${u + 1}`,
          new PreActBottleneck(u === 0 ? cin : cout, cout, cmid, u === 0 && i > 0 ? 2 : 1, groups),
        ]),
      );
    });
    this.body = new NamedSequential(this.stages.map((s, i): [string, TensorModule] => [`block${i + 1}`, s]));
    this.skipChannels = [width * 8, width * 4, width];
    this.outChannels = width * 16;
  }

  /** (B, C, H, W) → the block3 map (B, 16w, H/16, W/16) and the skips [1/8, 1/4, 1/2], deepest first. */
  forward(x: Tensor): { features: Tensor; skips: Tensor[] } {
    const [, , H, W] = x.shape;
    const skips: Tensor[] = [];
    let t = this.root.forward(x); // (B, w, H/2, W/2)
    skips.push(t);
    t = maxPool2d(t, 3, { stride: 2 });
    for (let i = 0; i < this.stages.length - 1; i++) {
      t = this.stages[i].forward(t);
      // The unpadded max pool loses a row/column on even sizes; the reference pads the skip back.
      const wantH = Math.floor(H / 4 / (i + 1));
      const wantW = Math.floor(W / 4 / (i + 1));
      const [, , h, w] = t.shape;
      skips.push(h < wantH || w < wantW ? pad(t, [0, Math.max(0, wantW - w), 0, Math.max(0, wantH - h)]) : t);
    }
    t = this.stages[this.stages.length - 1].forward(t);
    return { features: t, skips: skips.reverse() };
  }
}

/** Patch embedding (+ the hybrid CNN) and learned position embeddings, the reference's Embeddings. */
export class TransUnetEmbeddings extends Module {
  hybrid_model: ResNetV2 | null;
  patch_embeddings: Conv2d;
  position_embeddings: Parameter;
  dropout: Dropout;
  readonly gridSize: [number, number];

  constructor(cfg: TransUnetConfig) {
    super();
    const [ih, iw] = pair(cfg.imgSize);
    if (cfg.encoder === 'hybrid') {
      this.hybrid_model = new ResNetV2(cfg.inChans, cfg.resnetLayers, cfg.resnetWidth, cfg.gnGroups);
      this.patch_embeddings = new Conv2d(this.hybrid_model.outChannels, cfg.hiddenSize, 1);
      this.gridSize = [Math.ceil(ih / 16), Math.ceil(iw / 16)];
    } else {
      this.hybrid_model = null;
      const P = cfg.patchSize;
      this.patch_embeddings = new Conv2d(cfg.inChans, cfg.hiddenSize, P, { stride: P });
      this.gridSize = [Math.floor(ih / P), Math.floor(iw / P)];
    }
    this.position_embeddings = new Parameter(zeros([1, this.gridSize[0] * this.gridSize[1], cfg.hiddenSize]));
    this.dropout = new Dropout(cfg.dropRate);
  }

  forward(x: Tensor): { tokens: Tensor; skips: Tensor[] } {
    let features = x;
    let skips: Tensor[] = [];
    if (this.hybrid_model) ({ features, skips } = this.hybrid_model.forward(x));
    const p = this.patch_embeddings.forward(features); // (B, D, h, w)
    const [B, D, h, w] = p.shape;
    if (h !== this.gridSize[0] || w !== this.gridSize[1]) {
      throw new Error(
        `TransUNet: the input gives a ${h}x${w} patch grid but the position embeddings are ${this.gridSize[0]}x${this.gridSize[1]}; feed inputs of the configured imgSize (use slidingWindowInference for larger ones)`,
      );
    }
    const tokens = permute(reshape(p, [B, D, h * w]), [0, 2, 1]); // (B, N, D)
    return { tokens: this.dropout.forward(add(tokens, this.position_embeddings)), skips };
  }
}

export class TransUnetEncoder extends Module {
  layer: ModuleList<Block>;
  encoder_norm: LayerNorm;

  constructor(cfg: TransUnetConfig) {
    super();
    this.layer = new ModuleList(
      Array.from(
        { length: cfg.numLayers },
        () =>
          new Block(cfg.hiddenSize, cfg.numHeads, {
            mlpRatio: cfg.mlpDim / cfg.hiddenSize,
            qkvBias: true,
            initValues: null,
            projDrop: cfg.dropRate,
            attnDrop: cfg.attnDropRate,
            dropPath: 0,
            normEps: 1e-6,
            actLayer: 'gelu',
          }),
      ),
    );
    this.encoder_norm = new LayerNorm(cfg.hiddenSize, { eps: 1e-6 });
  }

  forward(x: Tensor, attentions?: Tensor[]): Tensor {
    let t = x;
    for (const blk of this.layer) t = blk.forward(t, attentions);
    return this.encoder_norm.forward(t);
  }
}

export class TransUnetTransformer extends Module {
  embeddings: TransUnetEmbeddings;
  encoder: TransUnetEncoder;

  constructor(cfg: TransUnetConfig) {
    super();
    this.embeddings = new TransUnetEmbeddings(cfg);
    this.encoder = new TransUnetEncoder(cfg);
  }

  /** (B, C, H, W) → encoded tokens (B, N, D) and the CNN skips (deepest first; none for 'vit'). */
  forward(x: Tensor, attentions?: Tensor[]): { tokens: Tensor; skips: Tensor[] } {
    const { tokens, skips } = this.embeddings.forward(x);
    return { tokens: this.encoder.forward(tokens, attentions), skips };
  }
}

/** The reference's Conv2dReLU: 3x3 conv without bias, BatchNorm, ReLU (children 0, 1, 2). */
export class Conv2dReLU extends Sequential {
  constructor(inChannels: number, outChannels: number) {
    super([
      new Conv2d(inChannels, outChannels, 3, { padding: 1, bias: false }),
      new BatchNorm2d(outChannels),
      new ReLU(),
    ]);
  }
}

/** Bilinear x2 (align_corners, as nn.UpsamplingBilinear2d), concatenate the skip, two Conv2dReLU. */
export class DecoderBlock extends Module {
  conv1: Conv2dReLU;
  conv2: Conv2dReLU;

  constructor(
    inChannels: number,
    outChannels: number,
    readonly skipChannels: number,
  ) {
    super();
    this.conv1 = new Conv2dReLU(inChannels + skipChannels, outChannels);
    this.conv2 = new Conv2dReLU(outChannels, outChannels);
  }

  forward(x: Tensor, skip: Tensor | null): Tensor {
    let t = interpolate(x, { scaleFactor: 2, mode: 'bilinear', alignCorners: true });
    if (skip) t = cat([t, skip], 1);
    return this.conv2.forward(this.conv1.forward(t));
  }
}

/** The cascaded upsampler: tokens back onto their grid, conv_more, then one DecoderBlock per x2. */
export class DecoderCup extends Module {
  conv_more: Conv2dReLU;
  blocks: ModuleList<DecoderBlock>;

  constructor(cfg: TransUnetConfig, skipChannels: readonly number[]) {
    super();
    this.conv_more = new Conv2dReLU(cfg.hiddenSize, cfg.headChannels);
    const ins = [cfg.headChannels, ...cfg.decoderChannels.slice(0, -1)];
    this.blocks = new ModuleList(
      cfg.decoderChannels.map((out, i) => new DecoderBlock(ins[i], out, i < cfg.nSkip ? skipChannels[i] : 0)),
    );
  }

  forward(tokens: Tensor, grid: [number, number], skips: readonly Tensor[]): Tensor {
    const [B, N, D] = tokens.shape;
    if (N !== grid[0] * grid[1])
      throw new Error(`DecoderCup: ${N} tokens do not fill a ${grid[0]}x${grid[1]} grid`);
    let x = reshape(permute(tokens, [0, 2, 1]), [B, D, grid[0], grid[1]]); // (B, D, h, w)
    x = this.conv_more.forward(x);
    for (const [i, blk] of this.blocks.toArray().entries()) {
      x = blk.forward(x, blk.skipChannels > 0 ? skips[i] : null);
    }
    return x;
  }
}

export class TransUNet extends Module {
  readonly config: TransUnetConfig;
  readonly numClasses: number;
  transformer: TransUnetTransformer;
  decoder: DecoderCup;
  segmentation_head: Sequential;

  constructor(overrides: Partial<TransUnetConfig> | Record<string, unknown> = {}) {
    super();
    const cfg = resolveConfig('TransUNet', TRANSUNET_DEFAULTS, overrides as Record<string, unknown>);
    if (cfg.encoder !== 'hybrid' && cfg.encoder !== 'vit') {
      throw new Error(`TransUNet: encoder must be 'hybrid' (R50-ViT) or 'vit', got '${cfg.encoder}'`);
    }
    const stride = cfg.encoder === 'hybrid' ? 16 : cfg.patchSize;
    if (2 ** cfg.decoderChannels.length !== stride) {
      throw new Error(
        `TransUNet: ${cfg.decoderChannels.length} decoder stages upsample x${2 ** cfg.decoderChannels.length} but the patch grid has stride ${stride}; give log2(${stride}) decoder channels`,
      );
    }
    const maxSkip = cfg.encoder === 'hybrid' ? 3 : 0;
    if (!Number.isInteger(cfg.nSkip) || cfg.nSkip < 0 || cfg.nSkip > maxSkip) {
      throw new Error(
        `TransUNet: nSkip must be 0..${maxSkip} for encoder '${cfg.encoder}', got ${cfg.nSkip}`,
      );
    }
    const [ih, iw] = pair(cfg.imgSize);
    if (ih % stride !== 0 || iw % stride !== 0) {
      throw new Error(
        `TransUNet: imgSize ${ih}x${iw} must be a multiple of the patch grid's stride ${stride}`,
      );
    }
    this.config = cfg;
    this.numClasses = cfg.numClasses;
    this.transformer = new TransUnetTransformer(cfg);
    const skipChannels = this.transformer.embeddings.hybrid_model?.skipChannels ?? [];
    this.decoder = new DecoderCup(cfg, skipChannels);
    const last = cfg.decoderChannels[cfg.decoderChannels.length - 1];
    this.segmentation_head = new Sequential([
      new Conv2d(last, cfg.numClasses, 3, { padding: 1 }),
      new Identity(),
    ]);
    if (cfg.weightInit !== 'skip') {
      initLinearsTimm(this.transformer.encoder);
      truncNormal_(this.transformer.embeddings.position_embeddings, 0.02);
    }
  }

  /** (B, C, H, W) → logits (B, numClasses, H, W); `attentions` collects each block's (B, heads, N, N). */
  forward(x: Tensor, options: { attentions?: Tensor[] } = {}): Tensor {
    const cfg = this.config;
    const [ih, iw] = pair(cfg.imgSize);
    if (x.ndim !== 4 || x.shape[1] !== cfg.inChans || x.shape[2] !== ih || x.shape[3] !== iw) {
      throw new Error(
        `TransUNet: expected input (B, ${cfg.inChans}, ${ih}, ${iw}), got ${fmt(x.shape)}; use slidingWindowInference for other sizes`,
      );
    }
    const { tokens, skips } = this.transformer.forward(x, options.attentions);
    const decoded = this.decoder.forward(tokens, this.transformer.embeddings.gridSize, skips);
    return this.segmentation_head.forward(decoded);
  }

  /** Maps the reference implementation's transformer names onto timm's Block. */
  filterCheckpoint(sd: StateDict): FilteredCheckpoint {
    return filterTransUnetCheckpoint(sd);
  }
}

/**
 * A TransUNet's encoder with a linear classifier on each token, its logits upsampled bilinearly to
 * the input (SETR's "naive" decoder): what `--stage encoder` trains, so that the encoder learns to
 * name what it sees at a sixth of a full step's cost before the cascaded upsampler is trained. It
 * shares `transformer` with the model it was made from; the decoder is not in it.
 */
export class TransUnetTokenProbe extends Module {
  readonly config: TransUnetConfig;
  readonly numClasses: number;
  transformer: TransUnetTransformer;
  head: Linear;

  constructor(model: TransUNet) {
    super();
    this.config = model.config;
    this.numClasses = model.numClasses;
    this.transformer = model.transformer;
    this.head = new Linear(model.config.hiddenSize, model.numClasses);
  }

  /** (B, C, H, W) → logits (B, numClasses, H, W), constant within each token but for the bilinear blend. */
  forward(x: Tensor): Tensor {
    const { tokens } = this.transformer.forward(x);
    const [B, N] = tokens.shape;
    const [gh, gw] = this.transformer.embeddings.gridSize;
    if (N !== gh * gw) throw new Error(`TransUnetTokenProbe: ${N} tokens do not fill a ${gh}x${gw} grid`);
    const logits = reshape(permute(this.head.forward(tokens), [0, 2, 1]), [B, this.numClasses, gh, gw]);
    return interpolate(logits, { size: [x.shape[2], x.shape[3]], mode: 'bilinear', alignCorners: false });
  }
}

const REFERENCE_BLOCK = /^(transformer\.encoder\.layer\.\d+)\.(.+)$/;
const REFERENCE_BLOCK_PARTS: Array<[RegExp, string]> = [
  [/^attention_norm\.(weight|bias)$/, 'norm1.$1'],
  [/^ffn_norm\.(weight|bias)$/, 'norm2.$1'],
  [/^ffn\.fc1\.(weight|bias)$/, 'mlp.fc1.$1'],
  [/^ffn\.fc2\.(weight|bias)$/, 'mlp.fc2.$1'],
  [/^attn\.out\.(weight|bias)$/, 'attn.proj.$1'],
];

/**
 * The reference TransUNet's state dict → glimpse names: in each transformer layer
 * attention_norm → norm1, ffn_norm → norm2, ffn.fc1/fc2 → mlp.fc1/fc2, attn.out → attn.proj, and
 * attn.query/key/value concatenated (in that order) into attn.qkv. Every other name is the same.
 */
export function filterTransUnetCheckpoint(sd: StateDict): FilteredCheckpoint {
  const reference = [...sd.keys()].some((k) => /\.attn\.query\.weight$/.test(k));
  if (!reference) return { stateDict: sd, source: 'glimpse', notes: [] };
  const out: StateDict = new Map();
  const qkv = new Map<string, Partial<Record<'query' | 'key' | 'value', Tensor>>>();
  for (const [key, t] of sd) {
    const m = REFERENCE_BLOCK.exec(key);
    if (!m) {
      out.set(key, t);
      continue;
    }
    const [, prefix, rest] = m;
    const part = /^attn\.(query|key|value)\.(weight|bias)$/.exec(rest);
    if (part) {
      const slot = `${prefix}.attn.qkv.${part[2]}`;
      const parts = qkv.get(slot) ?? {};
      parts[part[1] as 'query' | 'key' | 'value'] = t;
      qkv.set(slot, parts);
      continue;
    }
    const rule = REFERENCE_BLOCK_PARTS.find(([re]) => re.test(rest));
    out.set(rule ? `${prefix}.${rest.replace(rule[0], rule[1])}` : key, t);
  }
  for (const [slot, { query, key, value }] of qkv) {
    if (!query || !key || !value) {
      throw new Error(`loadCheckpoint: the TransUNet checkpoint lacks part of query/key/value for ${slot}`);
    }
    out.set(slot, cat([query, key, value], 0));
  }
  return { stateDict: out, source: 'transunet', notes: ['merged query/key/value into attn.qkv'] };
}
