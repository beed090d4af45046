/**
 * Swin Transformer v1 (Liu et al.) with timm's module names: attention inside non-overlapping
 * windows, every other block on windows shifted by half a window (cyclic roll plus a mask that keeps
 * the wrapped regions apart), a learned relative position bias gathered from a table, and patch
 * merging between stages. Features stay (B, H, W, C) throughout, as in timm.
 *
 * Window sizes, shifts and masks follow the actual input, so any input whose patch grid divides into
 * whole windows at every stage works (a stage no larger than the window uses one unshifted window).
 */
import { truncNormal_ } from '../nn/init.js';
import { LayerNorm, Linear } from '../nn/linear.js';
import { DropPath, Dropout, type Mlp } from '../nn/layers.js';
import { Identity, Module, ModuleList, Parameter, type StateDict, type TensorModule } from '../nn/module.js';
import { scaledDotProductAttention } from '../ops/attention.js';
import { zeros } from '../ops/creation.js';
import { add } from '../ops/elementwise.js';
import { mean } from '../ops/reduce.js';
import { cat, expand, indexSelect, permute, reshape, roll, transpose, unbind } from '../ops/shape.js';
import { Tensor } from '../tensor/tensor.js';
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
import { hfActivation, hfNumLabels, PatchEmbed } from './vit.js';

export interface SwinConfig {
  imgSize: number | [number, number];
  patchSize: number;
  inChans: number;
  numClasses: number;
  globalPool: 'avg' | '';
  embedDim: number;
  depths: number[];
  numHeads: number[];
  headDim: number | null;
  windowSize: number;
  mlpRatio: number;
  qkvBias: boolean;
  dropRate: number;
  projDropRate: number;
  attnDropRate: number;
  dropPathRate: number;
  /** nn.LayerNorm's default, as timm's Swin uses it. */
  normEps: number;
  actLayer: 'gelu' | 'gelu_tanh';
  weightInit: WeightInit;
}

export const SWIN_DEFAULTS: SwinConfig = {
  imgSize: 224,
  patchSize: 4,
  inChans: 3,
  numClasses: 1000,
  globalPool: 'avg',
  embedDim: 96,
  depths: [2, 2, 6, 2],
  numHeads: [3, 6, 12, 24],
  headDim: null,
  windowSize: 7,
  mlpRatio: 4,
  qkvBias: true,
  dropRate: 0,
  projDropRate: 0,
  attnDropRate: 0,
  dropPathRate: 0.1,
  normEps: 1e-5,
  actLayer: 'gelu',
  weightInit: '',
};

const IGNORED_KWARGS = ['strict_img_size', 'always_partition', 'embed_layer'];

/** Index into the (2w-1)^2 bias table for every (query, key) pair of a w x w window. */
function relativePositionIndex(w: number): Int32Array {
  const n = w * w;
  const index = new Int32Array(n * n);
  for (let i = 0; i < n; i++) {
    const [hi, wi] = [Math.floor(i / w), i % w];
    for (let j = 0; j < n; j++) {
      const [hj, wj] = [Math.floor(j / w), j % w];
      index[i * n + j] = (hi - hj + w - 1) * (2 * w - 1) + (wi - wj + w - 1);
    }
  }
  return index;
}

/**
 * The shifted-window mask (nW, W*W, W*W): 0 inside a region, -100 between the regions that the
 * cyclic shift brought together (timm's get_attn_mask).
 */
function shiftedWindowMask(H: number, W: number, win: number, shift: number): Tensor {
  const region = (v: number, len: number) => (v < len - win ? 0 : v < len - shift ? 1 : 2);
  const nh = H / win;
  const nw = W / win;
  const n = win * win;
  const out = new Float32Array(nh * nw * n * n);
  const ids = new Int32Array(n);
  for (let a = 0; a < nh; a++) {
    for (let b = 0; b < nw; b++) {
      for (let i = 0; i < n; i++) {
        const h = a * win + Math.floor(i / win);
        const w = b * win + (i % win);
        ids[i] = region(h, H) * 3 + region(w, W);
      }
      const base = (a * nw + b) * n * n;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) if (ids[i] !== ids[j]) out[base + i * n + j] = -100;
    }
  }
  return new Tensor(out, [nh * nw, n, n]);
}

/** (B, H, W, C) → (B*nW, win*win, C), windows in row-major order per image. */
function windowPartition(x: Tensor, win: number): Tensor {
  const [B, H, W, C] = x.shape;
  const w = permute(reshape(x, [B, H / win, win, W / win, win, C]), [0, 1, 3, 2, 4, 5]);
  return reshape(w, [-1, win * win, C]);
}

/** (B*nW, win*win, C) → (B, H, W, C). */
function windowReverse(windows: Tensor, win: number, H: number, W: number): Tensor {
  const C = windows.shape[windows.ndim - 1];
  const x = reshape(windows, [-1, H / win, W / win, win, win, C]);
  return reshape(permute(x, [0, 1, 3, 2, 4, 5]), [-1, H, W, C]);
}

export class WindowAttention extends Module {
  relative_position_bias_table: Parameter;
  qkv: Linear;
  attn_drop: Dropout;
  proj: Linear;
  proj_drop: Dropout;
  readonly headDim: number;
  readonly windowSize: number;

  constructor(
    dim: number,
    readonly numHeads: number,
    windowSize: number,
    options: { headDim?: number | null; qkvBias?: boolean; attnDrop?: number; projDrop?: number } = {},
  ) {
    super();
    this.windowSize = windowSize;
    this.headDim = options.headDim ?? dim / numHeads;
    if (!Number.isInteger(this.headDim))
      throw new Error(`WindowAttention: dim ${dim} is not divisible by ${numHeads} heads`);
    const attnDim = this.headDim * numHeads;
    this.relative_position_bias_table = new Parameter(
      truncNormal_(zeros([(2 * windowSize - 1) * (2 * windowSize - 1), numHeads]), 0.02),
    );
    this.registerBuffer(
      'relative_position_index',
      new Tensor(relativePositionIndex(windowSize), [windowSize ** 4]),
      false,
    );
    this.qkv = new Linear(dim, 3 * attnDim, { bias: options.qkvBias ?? true });
    this.attn_drop = new Dropout(options.attnDrop ?? 0);
    this.proj = new Linear(attnDim, dim);
    this.proj_drop = new Dropout(options.projDrop ?? 0);
  }

  /** (1, heads, N, N) bias for an N = win*win window, gathered from the table. */
  relativePositionBias(): Tensor {
    const n = this.windowSize ** 2;
    const bias = indexSelect(this.relative_position_bias_table, 0, this.buffer('relative_position_index')); // (N*N, heads)
    return reshape(permute(reshape(bias, [n, n, this.numHeads]), [2, 0, 1]), [1, this.numHeads, n, n]);
  }

  /** x (B*nW, N, C); mask (nW, N, N) or null. */
  forward(x: Tensor, mask: Tensor | null, attentions?: Tensor[]): Tensor {
    const [BW, N] = x.shape;
    if (N !== this.windowSize ** 2) {
      throw new Error(
        `WindowAttention: windows of ${N} tokens, expected ${this.windowSize}x${this.windowSize}`,
      );
    }
    const qkv = permute(
      reshape(this.qkv.forward(x), [BW, N, 3, this.numHeads, this.headDim]),
      [2, 0, 3, 1, 4],
    ); // (3, B*nW, H, N, D)
    const [q, k, v] = unbind(qkv, 0);
    let bias = this.relativePositionBias(); // (1, H, N, N)
    if (mask) {
      const nW = mask.shape[0];
      // (B, nW, H, N, N) → (B*nW, H, N, N): every image shares the window mask.
      const combined = add(bias, reshape(mask, [nW, 1, N, N])); // (nW, H, N, N)
      bias = reshape(
        expand(reshape(combined, [1, nW, this.numHeads, N, N]), [BW / nW, nW, this.numHeads, N, N]),
        [BW, this.numHeads, N, N],
      );
    }
    const dropoutP = this.training ? this.attn_drop.p : 0;
    let out: Tensor;
    if (attentions) {
      const r = scaledDotProductAttention(q, k, v, { attnMask: bias, dropoutP, returnProbs: true });
      attentions.push(r.probs);
      out = r.output;
    } else {
      out = scaledDotProductAttention(q, k, v, { attnMask: bias, dropoutP });
    }
    const merged = reshape(transpose(out, 1, 2), [BW, N, this.numHeads * this.headDim]); // (B*nW, N, H*D)
    return this.proj_drop.forward(this.proj.forward(merged));
  }
}

export class SwinTransformerBlock extends Module {
  norm1: LayerNorm;
  attn: WindowAttention;
  drop_path1: DropPath;
  norm2: LayerNorm;
  mlp: Mlp;
  drop_path2: DropPath;
  private readonly maskCache = new Map<string, Tensor | null>();

  constructor(
    dim: number,
    numHeads: number,
    /** Already clipped to the stage size the model was built for (timm's _calc_window_shift). */
    readonly windowSize: number,
    readonly shiftSize: number,
    options: {
      headDim: number | null;
      mlpRatio: number;
      qkvBias: boolean;
      projDrop: number;
      attnDrop: number;
      dropPath: number;
      normEps: number;
      actLayer: 'gelu' | 'gelu_tanh';
    },
  ) {
    super();
    this.norm1 = new LayerNorm(dim, { eps: options.normEps });
    this.attn = new WindowAttention(dim, numHeads, windowSize, {
      headDim: options.headDim,
      qkvBias: options.qkvBias,
      attnDrop: options.attnDrop,
      projDrop: options.projDrop,
    });
    this.drop_path1 = new DropPath(options.dropPath);
    this.norm2 = new LayerNorm(dim, { eps: options.normEps });
    this.mlp = geluMlp(dim, options.mlpRatio, options.actLayer, options.projDrop);
    this.drop_path2 = new DropPath(options.dropPath);
  }

  private mask(H: number, W: number, win: number, shift: number): Tensor | null {
    if (shift === 0) return null;
    const key = `${H}x${W}`;
    let m = this.maskCache.get(key);
    if (m === undefined) {
      m = shiftedWindowMask(H, W, win, shift);
      this.maskCache.set(key, m);
    }
    return m;
  }

  /** x (B, H, W, C) → (B, H, W, C). */
  forward(x: Tensor, attentions?: Tensor[]): Tensor {
    const [B, H, W, C] = x.shape;
    const win = this.windowSize;
    // A stage no larger than the window is a single window, and shifting it would change nothing.
    const shift = Math.min(H, W) <= win ? 0 : this.shiftSize;
    if (H % win !== 0 || W % win !== 0) {
      throw new Error(
        `SwinTransformerBlock: a ${H}x${W} stage does not divide into ${win}x${win} windows; use an input whose patch grid is a multiple of the window at every stage (the size the model was built for, e.g. 224 for patch 4 window 7)`,
      );
    }
    let h = this.norm1.forward(x);
    if (shift > 0) h = roll(h, [-shift, -shift], [1, 2]);
    const windows = windowPartition(h, win); // (B*nW, win*win, C)
    const attended = this.attn.forward(windows, this.mask(H, W, win, shift), attentions);
    let back = windowReverse(attended, win, H, W); // (B, H, W, C)
    if (shift > 0) back = roll(back, [shift, shift], [1, 2]);
    const a = add(x, this.drop_path1.forward(back));
    const flat = reshape(a, [B, H * W, C]);
    const out = add(flat, this.drop_path2.forward(this.mlp.forward(this.norm2.forward(flat))));
    return reshape(out, [B, H, W, C]);
  }
}

/** 2x2 neighborhoods concatenated (timm's order: (0,0), (1,0), (0,1), (1,1)), normed, reduced. */
export class PatchMerging extends Module {
  norm: LayerNorm;
  reduction: Linear;

  constructor(dim: number, outDim: number, normEps: number) {
    super();
    this.norm = new LayerNorm(4 * dim, { eps: normEps });
    this.reduction = new Linear(4 * dim, outDim, { bias: false });
  }

  forward(x: Tensor): Tensor {
    const [B, H, W, C] = x.shape;
    if (H % 2 !== 0 || W % 2 !== 0) {
      throw new Error(
        `PatchMerging: a ${H}x${W} stage cannot be halved; use an input whose patch grid halves evenly at every stage`,
      );
    }
    // (B, H/2, 2, W/2, 2, C) → (B, H/2, W/2, 2w, 2h, C) → (B, H/2, W/2, 4C)
    const merged = reshape(permute(reshape(x, [B, H / 2, 2, W / 2, 2, C]), [0, 1, 3, 4, 2, 5]), [
      B,
      H / 2,
      W / 2,
      4 * C,
    ]);
    return this.reduction.forward(this.norm.forward(merged));
  }
}

export class SwinTransformerStage extends Module {
  downsample: PatchMerging | Identity;
  blocks: ModuleList<SwinTransformerBlock>;

  constructor(downsample: PatchMerging | Identity, blocks: SwinTransformerBlock[]) {
    super();
    this.downsample = downsample;
    this.blocks = new ModuleList(blocks);
  }

  forward(x: Tensor, attentions?: Tensor[]): Tensor {
    let t = this.downsample.forward(x);
    for (const blk of this.blocks) t = blk.forward(t, attentions);
    return t;
  }
}

class SwinHead extends Module {
  drop: Dropout;
  fc: TensorModule;

  constructor(dim: number, numClasses: number, dropRate: number) {
    super();
    this.drop = new Dropout(dropRate);
    this.fc = numClasses > 0 ? new Linear(dim, numClasses) : new Identity();
  }
}

export class SwinTransformer extends ImageClassifier {
  readonly family = 'swin';
  readonly config: SwinConfig;
  readonly numClasses: number;
  readonly numFeatures: number;

  patch_embed: PatchEmbed;
  layers: ModuleList<SwinTransformerStage>;
  norm: LayerNorm;
  head: SwinHead;

  constructor(overrides: Partial<SwinConfig> | Record<string, unknown> = {}) {
    super();
    const cfg = resolveConfig(
      'SwinTransformer',
      SWIN_DEFAULTS,
      overrides as Record<string, unknown>,
      IGNORED_KWARGS,
    );
    this.config = cfg;
    const nStages = cfg.depths.length;
    if (cfg.numHeads.length !== nStages) {
      throw new Error(
        `SwinTransformer: depths [${cfg.depths}] and num_heads [${cfg.numHeads}] differ in length`,
      );
    }
    const dims = cfg.depths.map((_, i) => cfg.embedDim * 2 ** i);
    this.numClasses = cfg.numClasses;
    this.numFeatures = dims[nStages - 1];
    this.patch_embed = new PatchEmbed(cfg.patchSize, cfg.inChans, cfg.embedDim, { normEps: cfg.normEps });
    const [ih, iw] = pair(cfg.imgSize);
    const [gh, gw] = [ih / cfg.patchSize, iw / cfg.patchSize];
    if (
      !Number.isInteger(gh) ||
      !Number.isInteger(gw) ||
      gh % 2 ** (nStages - 1) !== 0 ||
      gw % 2 ** (nStages - 1) !== 0
    ) {
      throw new Error(
        `SwinTransformer: img_size ${ih}x${iw} must be a multiple of patch_size ${cfg.patchSize} x ${2 ** (nStages - 1)} (the patch grid halves ${nStages - 1} times)`,
      );
    }
    const total = cfg.depths.reduce((a, b) => a + b, 0);
    let blockIndex = 0;
    this.layers = new ModuleList(
      cfg.depths.map((depth, i) => {
        const downsample = i > 0 ? new PatchMerging(dims[i - 1], dims[i], cfg.normEps) : new Identity();
        // timm sizes each block's window (and its bias table) for the stage at img_size.
        const res = Math.min(gh, gw) / 2 ** i;
        const win = Math.min(res, cfg.windowSize);
        const shift = res <= cfg.windowSize ? 0 : Math.floor(cfg.windowSize / 2);
        const blocks = Array.from({ length: depth }, (_, j) => {
          const dropPath = total > 1 ? (cfg.dropPathRate * blockIndex++) / (total - 1) : cfg.dropPathRate;
          return new SwinTransformerBlock(dims[i], cfg.numHeads[i], win, j % 2 === 1 ? shift : 0, {
            headDim: cfg.headDim,
            mlpRatio: cfg.mlpRatio,
            qkvBias: cfg.qkvBias,
            projDrop: cfg.projDropRate,
            attnDrop: cfg.attnDropRate,
            dropPath,
            normEps: cfg.normEps,
            actLayer: cfg.actLayer,
          });
        });
        return new SwinTransformerStage(downsample, blocks);
      }),
    );
    this.norm = new LayerNorm(this.numFeatures, { eps: cfg.normEps });
    this.head = new SwinHead(this.numFeatures, cfg.numClasses, cfg.dropRate);
    if (cfg.weightInit !== 'skip') initLinearsTimm(this);
  }

  /** (B, C, H, W) → (B, H/32, W/32, C_last) for the default 4 stages. */
  forwardFeatures(x: Tensor, options: FeatureOptions = {}): Tensor {
    const [, H, W] = this.checkImageBatch(x, this.config.inChans);
    const P = this.config.patchSize;
    if (H % P !== 0 || W % P !== 0) {
      throw new Error(
        `SwinTransformer: input ${H}x${W} is not a multiple of the patch size ${P}; resize to a multiple of ${P}`,
      );
    }
    let t = this.patch_embed.forward(x); // (B, H/P, W/P, C)
    for (const stage of this.layers) t = stage.forward(t, options.attentions);
    return this.norm.forward(t);
  }

  forwardHead(x: Tensor, options: { preLogits?: boolean } = {}): Tensor {
    const pooled = this.config.globalPool === 'avg' ? mean(x, [1, 2]) : x; // (B, C)
    const dropped = this.head.drop.forward(pooled);
    return options.preLogits ? dropped : this.head.fc.forward(dropped);
  }

  override filterCheckpoint(sd: StateDict): FilteredCheckpoint {
    return filterSwinCheckpoint(this, sd);
  }
}

// ---------------------------------------------------------------------------------------------
// Hugging Face Swin (transformers 4 and 5 layouts) → timm names. HF keeps patch merging at the end
// of stage i; timm (>= 0.9) at the start of stage i + 1.

const HF_SWIN_BLOCK = /^(?:swin\.)?(?:encoder\.)?layers\.(\d+)\.blocks\.(\d+)\.(.+)$/;
const HF_SWIN_BLOCK_PARTS: Array<[RegExp, string]> = [
  [
    /^attention\.(?:self\.|relative_position_bias\.)?relative_position_bias_table$/,
    'attn.relative_position_bias_table',
  ],
  [/^attention\.self\.(query|key|value)\.(weight|bias)$/, '$1.$2'],
  [/^attention\.(q|k|v)_proj\.(weight|bias)$/, '$1.$2'],
  [/^attention\.(?:output\.dense|o_proj)\.(weight|bias)$/, 'attn.proj.$1'],
  [/^(?:intermediate\.dense|mlp\.fc1)\.(weight|bias)$/, 'mlp.fc1.$1'],
  [/^(?:output\.dense|mlp\.fc2)\.(weight|bias)$/, 'mlp.fc2.$1'],
  [/^layernorm_before\.(weight|bias)$/, 'norm1.$1'],
  [/^layernorm_after\.(weight|bias)$/, 'norm2.$1'],
];
const HF_SWIN_TOP: Array<[RegExp, (m: RegExpExecArray) => string]> = [
  [/^(?:swin\.)?embeddings\.patch_embeddings\.projection\.(weight|bias)$/, (m) => `patch_embed.proj.${m[1]}`],
  [/^(?:swin\.)?embeddings\.norm\.(weight|bias)$/, (m) => `patch_embed.norm.${m[1]}`],
  [
    /^(?:swin\.)?(?:encoder\.)?layers\.(\d+)\.downsample\.(norm|reduction)\.(weight|bias)$/,
    (m) => `layers.${Number(m[1]) + 1}.downsample.${m[2]}.${m[3]}`,
  ],
  [/^(?:swin\.)?layernorm\.(weight|bias)$/, (m) => `norm.${m[1]}`],
  [/^classifier\.(weight|bias)$/, (m) => `head.fc.${m[1]}`],
];
const HF_SWIN_UNUSED = /(?:relative_position_index|^(?:swin\.)?embeddings\.mask_token)$/;

function isHfSwin(sd: StateDict): boolean {
  return [...sd.keys()].some(
    (k) => /(?:^|\.)embeddings\.patch_embeddings\.projection/.test(k) || /layernorm_before/.test(k),
  );
}

export function filterSwinCheckpoint(model: SwinTransformer, sd: StateDict): FilteredCheckpoint {
  if (!isHfSwin(sd)) {
    const out: StateDict = new Map();
    // Older timm checkpoints carry the computed buffers; they are recomputed here.
    for (const [k, v] of sd) if (!/(?:relative_position_index|attn_mask)$/.test(k)) out.set(k, v);
    return { stateDict: out, source: 'timm', notes: [] };
  }
  if ([...sd.keys()].some((k) => /embeddings\.position_embeddings$/.test(k))) {
    throw new Error(
      'loadCheckpoint: Swin with absolute position embeddings (use_absolute_embeddings) is not supported; use a checkpoint without them',
    );
  }
  const out: StateDict = new Map();
  const qkv = new Map<string, Partial<Record<'q' | 'k' | 'v', Tensor>>>();
  let dropped = 0;
  for (const [key, t] of sd) {
    if (HF_SWIN_UNUSED.test(key)) {
      dropped++;
      continue;
    }
    const block = HF_SWIN_BLOCK.exec(key);
    if (block) {
      const [, i, j, rest] = block;
      const rule = HF_SWIN_BLOCK_PARTS.find(([re]) => re.test(rest));
      if (!rule) {
        out.set(key, t);
        continue;
      }
      const name = rest.replace(rule[0], rule[1]);
      const m = /^(query|key|value|q|k|v)\.(weight|bias)$/.exec(name);
      if (m) {
        const slot = `layers.${i}.blocks.${j}.attn.qkv.${m[2]}`;
        const parts = qkv.get(slot) ?? {};
        parts[m[1][0] as 'q' | 'k' | 'v'] = t;
        qkv.set(slot, parts);
      } else out.set(`layers.${i}.blocks.${j}.${name}`, t);
      continue;
    }
    const top = HF_SWIN_TOP.find(([re]) => re.test(key));
    out.set(top ? top[1](top[0].exec(key) as RegExpExecArray) : key, t);
  }
  for (const [slot, { q, k, v }] of qkv) {
    if (!q || !k || !v)
      throw new Error(
        `loadCheckpoint: Hugging Face Swin checkpoint has an incomplete query/key/value set for ${slot}`,
      );
    out.set(slot, cat([q, k, v], 0));
  }
  const notes = dropped
    ? [`dropped ${dropped} computed buffers (relative_position_index) that glimpse recomputes`]
    : [];
  void model;
  return { stateDict: out, source: 'huggingface', notes };
}

/** A Hugging Face SwinConfig (config.json) as a timm-named Swin. */
export function swinFromHfConfig(
  config: Record<string, unknown>,
  architecture: 'classification' | 'bare',
  weightInit: WeightInit = '',
): SwinTransformer {
  if (config.use_absolute_embeddings) {
    throw new Error('Hugging Face Swin config: use_absolute_embeddings is not supported');
  }
  return new SwinTransformer({
    imgSize: pair((config.image_size as number | number[]) ?? 224),
    patchSize: Number(config.patch_size ?? 4),
    inChans: Number(config.num_channels ?? 3),
    embedDim: Number(config.embed_dim ?? 96),
    depths: (config.depths as number[]) ?? [2, 2, 6, 2],
    numHeads: (config.num_heads as number[]) ?? [3, 6, 12, 24],
    windowSize: Number(config.window_size ?? 7),
    mlpRatio: Number(config.mlp_ratio ?? 4),
    qkvBias: (config.qkv_bias ?? true) as boolean,
    normEps: Number(config.layer_norm_eps ?? 1e-5),
    actLayer: hfActivation(config.hidden_act),
    numClasses: architecture === 'bare' ? 0 : hfNumLabels(config),
    weightInit,
  });
}
