/**
 * UNETR (Hatamizadeh et al., 2022): a ViT on 3D patches as the encoder of a U-Net. The hidden
 * states of a few transformer layers are put back on their patch grid and upsampled by transposed
 * convolutions into skip features at 1/2, 1/4, 1/8 of the input; a convolutional decoder climbs from
 * the last layer's output through them to a per-voxel head.
 *
 *   volume (B, C, D, H, W) → patches (B, N, hidden) + pos → blocks → hidden states z_i
 *   encoder1(volume)                          → (B, f, D, H, W)
 *   encoder{k}(z_skip[k-2]) for k = 2..L      → (B, f·2^(k-1), D/2^(k-1), ...)   (transposed convs x2 each)
 *   decoder{L+1}(norm(z_last), encoder L) ... decoder2(·, encoder1) → out (1x1x1 conv) → (B, classes, D, H, W)
 *
 * with L = log2(patch size) (4 for MONAI's fixed 16). Module and parameter names are MONAI's
 * (monai.networks.nets.UNETR), so its checkpoints load through filterUnetrCheckpoint:
 *
 *   MONAI                                               glimpse
 *   vit.patch_embedding.patch_embeddings.{weight,bias}  same (conv projection, MONAI's default)
 *   vit.patch_embedding.patch_embeddings.1.weight       → patch_embeddings.weight reshaped (perceptron projection)
 *   vit.patch_embedding.position_embeddings             same
 *   vit.blocks.N.norm1/norm2, attn.qkv                  same (timm's Block)
 *   vit.blocks.N.attn.out_proj                          → vit.blocks.N.attn.proj
 *   vit.blocks.N.mlp.linear1 / linear2                  → vit.blocks.N.mlp.fc1 / fc2
 *   vit.norm                                            same
 *   encoder1.layer.conv{1,2,3}.conv, norm{1,2,3}         same (UnetrBasicBlock → UnetResBlock)
 *   encoder{2,3,4}.transp_conv_init.conv, .blocks.i.0.conv, .blocks.i.1.conv1.conv ...  same
 *   decoder{2..5}.transp_conv.conv, .conv_block.conv1.conv ...                        same
 *   out.conv.conv.{weight,bias}                         same
 *
 * MONAI's hidden_states_out[3], [6], [9] (the outputs of blocks 4, 7, 10; the paper's z3, z6, z9
 * counting from 0) feed encoder2..4: `skipLayers` [3, 6, 9]. Shallower test variants pass fewer
 * layers and a smaller patch (one skip per level below the patch grid).
 *
 * Large volumes at inference: a 3x3x3 conv's im2col buffer at 96^3 with 32 input channels is 3 GB,
 * so without gradients the full-resolution convs run in depth slabs (conv3dInSlabs), bounding that
 * buffer to ~64 MB; results are identical.
 */
import { Conv3d, ConvTranspose3d } from '../nn/conv.js';
import { truncNormal_ } from '../nn/init.js';
import { Dropout } from '../nn/layers.js';
import { LayerNorm } from '../nn/linear.js';
import {
  Module,
  ModuleList,
  Parameter,
  Sequential,
  type StateDict,
  type TensorModule,
} from '../nn/module.js';
import { BatchNorm3d } from '../nn/norm.js';
import { instanceNorm } from '../ops/batch_norm.js';
import { conv3d } from '../ops/conv.js';
import { zeros } from '../ops/creation.js';
import { add, leakyRelu } from '../ops/elementwise.js';
import { cat, pad, permute, reshape, slice } from '../ops/shape.js';
import { isGradEnabled } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { type FilteredCheckpoint, initLinearsTimm, resolveConfig } from './classifier.js';
import { Block } from './vit.js';

export interface UnetrConfig {
  inChannels: number;
  outChannels: number;
  imgSize: number | [number, number, number];
  /** Cubic patch side, a power of two >= 4 (MONAI: always 16). */
  patchSize: number;
  /** Channels of encoder1/decoder2; level k has featureSize · 2^(k-1). */
  featureSize: number;
  hiddenSize: number;
  mlpDim: number;
  numHeads: number;
  numLayers: number;
  /** Indices into the list of block outputs that feed encoder2, encoder3, ... (MONAI: [3, 6, 9]). */
  skipLayers: number[];
  /** 'instance' (no affine, MONAI's default) or 'batch'. */
  normName: 'instance' | 'batch';
  /** Residual conv blocks (UnetResBlock) rather than plain ones (UnetBasicBlock). */
  resBlock: boolean;
  dropoutRate: number;
  qkvBias: boolean;
  weightInit: '' | 'skip';
}

/** MONAI's UNETR defaults with BTCV's channels (1 in, 14 out, 96^3). */
export const UNETR_DEFAULTS: UnetrConfig = {
  inChannels: 1,
  outChannels: 14,
  imgSize: 96,
  patchSize: 16,
  featureSize: 16,
  hiddenSize: 768,
  mlpDim: 3072,
  numHeads: 12,
  numLayers: 12,
  skipLayers: [3, 6, 9],
  normName: 'instance',
  resBlock: true,
  dropoutRate: 0,
  qkvBias: false,
  weightInit: '',
};

/** Largest im2col buffer (floats) a slab of a no-grad 3D conv may need. */
const SLAB_COLUMN_FLOATS = 16 * 2 ** 20;

/**
 * A stride-1, 'same'-padded 3D conv computed in slabs along depth when no graph is recorded and the
 * whole volume's im2col buffer would exceed SLAB_COLUMN_FLOATS; otherwise one conv3d.
 */
export function conv3dInSlabs(x: Tensor, conv: Conv3d, maxColumnFloats = SLAB_COLUMN_FLOATS): Tensor {
  const [kd, kh, kw] = conv.kernelSize;
  const [N, Cin, D, H, W] = x.shape;
  const { stride = 1, padding = 0, dilation = 1, groups = 1 } = conv.options;
  const same = kd % 2 === 1 && kh === kd && kw === kd && padding === (kd - 1) / 2;
  if (
    isGradEnabled() ||
    Cin * kd * kh * kw * D * H * W <= maxColumnFloats ||
    !same ||
    stride !== 1 ||
    dilation !== 1 ||
    groups !== 1
  ) {
    return conv.forward(x);
  }
  const p = (kd - 1) / 2;
  const slab = Math.max(1, Math.floor(maxColumnFloats / (Cin * kd * kh * kw * H * W)));
  const padded = p > 0 ? pad(x, [0, 0, 0, 0, p, p]) : x; // depth only; H and W pad inside conv3d
  const Cout = conv.outChannels;
  const out = new Float32Array(N * Cout * D * H * W);
  const plane = H * W;
  for (let d0 = 0; d0 < D; d0 += slab) {
    const d1 = Math.min(D, d0 + slab);
    const part = conv3d(slice(padded, 2, d0, d1 + 2 * p), conv.weight, conv.bias, {
      padding: [0, p, p],
    }); // (N, Cout, d1 - d0, H, W)
    const pd = part.data as Float32Array;
    for (let nc = 0; nc < N * Cout; nc++) {
      out.set(pd.subarray(nc * (d1 - d0) * plane, (nc + 1) * (d1 - d0) * plane), (nc * D + d0) * plane);
    }
  }
  return new Tensor(out, [N, Cout, D, H, W]);
}

/** MONAI's Convolution with conv_only: a child named `conv` (Conv3d or ConvTranspose3d). */
export class Convolution extends Module implements TensorModule {
  conv: Conv3d | ConvTranspose3d;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    options: { stride?: number; transposed?: boolean; bias?: boolean } = {},
  ) {
    super();
    const stride = options.stride ?? 1;
    const bias = options.bias ?? false;
    if (options.transposed) {
      // get_conv_layer: padding (k - s + 1) / 2, output padding 2p + s - k (0 for MONAI's k = s = 2)
      const padding = Math.floor((kernelSize - stride + 1) / 2);
      const outputPadding = 2 * padding + stride - kernelSize;
      this.conv = new ConvTranspose3d(inChannels, outChannels, kernelSize, {
        stride,
        padding,
        outputPadding,
        bias,
      });
    } else {
      this.conv = new Conv3d(inChannels, outChannels, kernelSize, {
        stride,
        padding: Math.floor((kernelSize - stride + 1) / 2),
        bias,
      });
    }
  }

  forward(x: Tensor): Tensor {
    return this.conv instanceof Conv3d ? conv3dInSlabs(x, this.conv) : this.conv.forward(x);
  }
}

/** nn.InstanceNorm3d() as MONAI builds it for 'instance': per-sample, per-channel, no affine, no running stats. */
export class InstanceNorm3d extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return instanceNorm(x);
  }
}

/** MONAI's norm layer by name; BatchNorm3d's parameters sit directly under normK as in MONAI. */
function normLayer(name: 'instance' | 'batch', channels: number): TensorModule {
  return name === 'batch' ? new BatchNorm3d(channels) : new InstanceNorm3d();
}

/** MONAI's UnetResBlock: conv-norm-lrelu-conv-norm plus a (1x1x1 conv + norm) shortcut, lrelu. */
export class UnetResBlock extends Module implements TensorModule {
  conv1: Convolution;
  conv2: Convolution;
  norm1: TensorModule;
  norm2: TensorModule;
  conv3: Convolution | null = null;
  norm3: TensorModule | null = null;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    stride: number,
    normName: 'instance' | 'batch',
  ) {
    super();
    this.conv1 = new Convolution(inChannels, outChannels, kernelSize, { stride });
    this.conv2 = new Convolution(outChannels, outChannels, kernelSize);
    this.norm1 = normLayer(normName, outChannels);
    this.norm2 = normLayer(normName, outChannels);
    if (inChannels !== outChannels || stride !== 1) {
      this.conv3 = new Convolution(inChannels, outChannels, 1, { stride });
      this.norm3 = normLayer(normName, outChannels);
    }
  }

  forward(x: Tensor): Tensor {
    let y = leakyRelu(this.norm1.forward(this.conv1.forward(x)), 0.01);
    y = this.norm2.forward(this.conv2.forward(y));
    const residual = this.conv3 && this.norm3 ? this.norm3.forward(this.conv3.forward(x)) : x;
    return leakyRelu(add(y, residual), 0.01);
  }
}

/** MONAI's UnetBasicBlock: conv-norm-lrelu twice. */
export class UnetBasicBlock extends Module implements TensorModule {
  conv1: Convolution;
  conv2: Convolution;
  norm1: TensorModule;
  norm2: TensorModule;

  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number,
    stride: number,
    normName: 'instance' | 'batch',
  ) {
    super();
    this.conv1 = new Convolution(inChannels, outChannels, kernelSize, { stride });
    this.conv2 = new Convolution(outChannels, outChannels, kernelSize);
    this.norm1 = normLayer(normName, outChannels);
    this.norm2 = normLayer(normName, outChannels);
  }

  forward(x: Tensor): Tensor {
    const y = leakyRelu(this.norm1.forward(this.conv1.forward(x)), 0.01);
    return leakyRelu(this.norm2.forward(this.conv2.forward(y)), 0.01);
  }
}

function convBlock(inC: number, outC: number, cfg: UnetrConfig): UnetResBlock | UnetBasicBlock {
  return cfg.resBlock
    ? new UnetResBlock(inC, outC, 3, 1, cfg.normName)
    : new UnetBasicBlock(inC, outC, 3, 1, cfg.normName);
}

/** MONAI's UnetrBasicBlock (encoder1): one conv block at full resolution under `layer`. */
export class UnetrBasicBlock extends Module implements TensorModule {
  layer: UnetResBlock | UnetBasicBlock;

  constructor(inChannels: number, outChannels: number, cfg: UnetrConfig) {
    super();
    this.layer = convBlock(inChannels, outChannels, cfg);
  }

  forward(x: Tensor): Tensor {
    return this.layer.forward(x);
  }
}

/** MONAI's UnetrPrUpBlock (conv_block=True): a x2 transposed conv, then numLayer x (x2 transposed conv, conv block). */
export class UnetrPrUpBlock extends Module implements TensorModule {
  transp_conv_init: Convolution;
  blocks: ModuleList<Sequential>;

  constructor(inChannels: number, outChannels: number, numLayer: number, cfg: UnetrConfig) {
    super();
    this.transp_conv_init = new Convolution(inChannels, outChannels, 2, { stride: 2, transposed: true });
    this.blocks = new ModuleList(
      Array.from(
        { length: numLayer },
        () =>
          new Sequential([
            new Convolution(outChannels, outChannels, 2, { stride: 2, transposed: true }),
            convBlock(outChannels, outChannels, cfg),
          ]),
      ),
    );
  }

  forward(x: Tensor): Tensor {
    let y = this.transp_conv_init.forward(x);
    for (const blk of this.blocks) y = blk.forward(y);
    return y;
  }
}

/** MONAI's UnetrUpBlock: x2 transposed conv, concatenate the skip, conv block. */
export class UnetrUpBlock extends Module {
  transp_conv: Convolution;
  conv_block: UnetResBlock | UnetBasicBlock;

  constructor(inChannels: number, outChannels: number, cfg: UnetrConfig) {
    super();
    this.transp_conv = new Convolution(inChannels, outChannels, 2, { stride: 2, transposed: true });
    this.conv_block = convBlock(2 * outChannels, outChannels, cfg);
  }

  forward(x: Tensor, skip: Tensor): Tensor {
    return this.conv_block.forward(cat([this.transp_conv.forward(x), skip], 1));
  }
}

/** MONAI's UnetOutBlock: a 1x1x1 conv with bias. */
export class UnetOutBlock extends Module implements TensorModule {
  conv: Convolution;

  constructor(inChannels: number, outChannels: number) {
    super();
    this.conv = new Convolution(inChannels, outChannels, 1, { bias: true });
  }

  forward(x: Tensor): Tensor {
    return this.conv.forward(x);
  }
}

/** MONAI's PatchEmbeddingBlock (conv projection, learnable positions). */
export class PatchEmbeddingBlock extends Module {
  patch_embeddings: Conv3d;
  position_embeddings: Parameter;
  dropout: Dropout;

  constructor(
    inChannels: number,
    hiddenSize: number,
    patchSize: number,
    numPatches: number,
    dropout: number,
  ) {
    super();
    this.patch_embeddings = new Conv3d(inChannels, hiddenSize, patchSize, { stride: patchSize });
    this.position_embeddings = new Parameter(zeros([1, numPatches, hiddenSize]));
    this.dropout = new Dropout(dropout);
  }

  /** (B, C, D, H, W) → (B, N, hidden), patches in (d, h, w) row-major order. */
  forward(x: Tensor): Tensor {
    const p = this.patch_embeddings.forward(x); // (B, hidden, d, h, w)
    const [B, D, d, h, w] = p.shape;
    const tokens = permute(reshape(p, [B, D, d * h * w]), [0, 2, 1]); // (B, N, hidden)
    return this.dropout.forward(add(tokens, this.position_embeddings));
  }
}

/** MONAI's ViT (classification off): patch embedding, pre-norm blocks, final LayerNorm. */
export class UnetrViT extends Module {
  patch_embedding: PatchEmbeddingBlock;
  blocks: ModuleList<Block>;
  norm: LayerNorm;

  constructor(cfg: UnetrConfig, numPatches: number) {
    super();
    this.patch_embedding = new PatchEmbeddingBlock(
      cfg.inChannels,
      cfg.hiddenSize,
      cfg.patchSize,
      numPatches,
      cfg.dropoutRate,
    );
    this.blocks = new ModuleList(
      Array.from(
        { length: cfg.numLayers },
        () =>
          new Block(cfg.hiddenSize, cfg.numHeads, {
            mlpRatio: cfg.mlpDim / cfg.hiddenSize,
            qkvBias: cfg.qkvBias,
            initValues: null,
            projDrop: cfg.dropoutRate,
            attnDrop: cfg.dropoutRate,
            dropPath: 0,
            normEps: 1e-5,
            actLayer: 'gelu',
          }),
      ),
    );
    this.norm = new LayerNorm(cfg.hiddenSize);
  }

  /** The normed last output and every block's output (MONAI's hidden_states_out). */
  forward(x: Tensor, attentions?: Tensor[]): { last: Tensor; hidden: Tensor[] } {
    let t = this.patch_embedding.forward(x);
    const hidden: Tensor[] = [];
    for (const blk of this.blocks) {
      t = blk.forward(t, attentions);
      hidden.push(t);
    }
    return { last: this.norm.forward(t), hidden };
  }
}

export class UNETR extends Module {
  readonly config: UnetrConfig;
  readonly numClasses: number;
  readonly imgSize: [number, number, number];
  /** The patch grid (d, h, w). */
  readonly featSize: [number, number, number];
  /** Upsampling levels: log2(patchSize). */
  readonly levels: number;
  vit: UnetrViT;

  constructor(overrides: Partial<UnetrConfig> | Record<string, unknown> = {}) {
    super();
    const cfg = resolveConfig('UNETR', UNETR_DEFAULTS, overrides as Record<string, unknown>);
    const levels = Math.log2(cfg.patchSize);
    if (!Number.isInteger(levels) || levels < 2) {
      throw new Error(`UNETR: patchSize must be a power of two >= 4, got ${cfg.patchSize}`);
    }
    const img: [number, number, number] =
      typeof cfg.imgSize === 'number' ? [cfg.imgSize, cfg.imgSize, cfg.imgSize] : [...cfg.imgSize];
    if (img.some((s) => s % cfg.patchSize !== 0)) {
      throw new Error(
        `UNETR: imgSize [${img}] must be a multiple of patchSize ${cfg.patchSize} in every dim`,
      );
    }
    if (cfg.hiddenSize % cfg.numHeads !== 0) {
      throw new Error(`UNETR: hiddenSize ${cfg.hiddenSize} must be divisible by numHeads ${cfg.numHeads}`);
    }
    if (
      cfg.skipLayers.length !== levels - 1 ||
      cfg.skipLayers.some((l) => !Number.isInteger(l) || l < 0 || l >= cfg.numLayers)
    ) {
      throw new Error(
        `UNETR: patch ${cfg.patchSize} has ${levels - 1} skip levels, so skipLayers must be ${levels - 1} block indices in 0..${cfg.numLayers - 1}, got [${cfg.skipLayers}]`,
      );
    }
    if (cfg.normName !== 'instance' && cfg.normName !== 'batch') {
      throw new Error(`UNETR: normName must be 'instance' or 'batch', got '${cfg.normName}'`);
    }
    this.config = cfg;
    this.numClasses = cfg.outChannels;
    this.imgSize = img;
    this.levels = levels;
    this.featSize = img.map((s) => s / cfg.patchSize) as [number, number, number];
    const f = cfg.featureSize;
    this.vit = new UnetrViT(cfg, this.featSize[0] * this.featSize[1] * this.featSize[2]);
    const self = this as unknown as Record<string, Module>;
    // Children in MONAI's order: encoder1..L, decoder(L+1)..2, out.
    self.encoder1 = new UnetrBasicBlock(cfg.inChannels, f, cfg);
    for (let k = 2; k <= levels; k++) {
      self[`encoder${k}`] = new UnetrPrUpBlock(cfg.hiddenSize, f * 2 ** (k - 1), levels - k, cfg);
    }
    for (let k = levels + 1; k >= 2; k--) {
      const inC = k === levels + 1 ? cfg.hiddenSize : f * 2 ** (k - 1);
      self[`decoder${k}`] = new UnetrUpBlock(inC, f * 2 ** (k - 2), cfg);
    }
    self.out = new UnetOutBlock(f, cfg.outChannels);
    if (cfg.weightInit !== 'skip') {
      initLinearsTimm(this.vit);
      truncNormal_(this.vit.patch_embedding.position_embeddings, 0.02);
    }
  }

  private child<M extends Module>(name: string): M {
    return (this as unknown as Record<string, M>)[name];
  }

  /** Tokens (B, N, hidden) on their patch grid as a volume (B, hidden, d, h, w) (MONAI's proj_feat). */
  projFeat(x: Tensor): Tensor {
    const [B, , C] = x.shape;
    const [d, h, w] = this.featSize;
    return permute(reshape(x, [B, d, h, w, C]), [0, 4, 1, 2, 3]);
  }

  /** (B, inChannels, D, H, W) → logits (B, outChannels, D, H, W); `attentions` collects (B, heads, N, N) per block. */
  forward(x: Tensor, options: { attentions?: Tensor[] } = {}): Tensor {
    const cfg = this.config;
    const [D, H, W] = this.imgSize;
    if (
      x.ndim !== 5 ||
      x.shape[1] !== cfg.inChannels ||
      x.shape[2] !== D ||
      x.shape[3] !== H ||
      x.shape[4] !== W
    ) {
      throw new Error(
        `UNETR: expected input (B, ${cfg.inChannels}, ${D}, ${H}, ${W}), got ${fmt(x.shape)}; use slidingWindowInference for other sizes`,
      );
    }
    const { last, hidden } = this.vit.forward(x, options.attentions);
    const encoded: Tensor[] = [this.child<UnetrBasicBlock>('encoder1').forward(x)];
    for (let k = 2; k <= this.levels; k++) {
      encoded.push(
        this.child<UnetrPrUpBlock>(`encoder${k}`).forward(this.projFeat(hidden[cfg.skipLayers[k - 2]])),
      );
    }
    let y = this.projFeat(last);
    for (let k = this.levels + 1; k >= 2; k--)
      y = this.child<UnetrUpBlock>(`decoder${k}`).forward(y, encoded[k - 2]);
    return this.child<UnetOutBlock>('out').forward(y);
  }

  filterCheckpoint(sd: StateDict): FilteredCheckpoint {
    return filterUnetrCheckpoint(sd, this.config);
  }
}

const MONAI_RENAMES: Array<[RegExp, string]> = [
  [/^(vit\.blocks\.\d+\.attn)\.out_proj\.(weight|bias)$/, '$1.proj.$2'],
  [/^(vit\.blocks\.\d+\.mlp)\.linear1\.(weight|bias)$/, '$1.fc1.$2'],
  [/^(vit\.blocks\.\d+\.mlp)\.linear2\.(weight|bias)$/, '$1.fc2.$2'],
];

/**
 * MONAI's UNETR state dict → glimpse names (see the table at the top of this file). A perceptron
 * patch embedding (Linear over (p1 p2 p3 c)-ordered patches) becomes the equivalent conv weight.
 */
export function filterUnetrCheckpoint(
  sd: StateDict,
  cfg: Pick<UnetrConfig, 'patchSize' | 'inChannels'>,
): FilteredCheckpoint {
  const out: StateDict = new Map();
  const notes: string[] = [];
  let monai = false;
  for (const [key, t] of sd) {
    const rule = MONAI_RENAMES.find(([re]) => re.test(key));
    if (rule) {
      monai = true;
      out.set(key.replace(rule[0], rule[1]), t);
      continue;
    }
    const perceptron = /^vit\.patch_embedding\.patch_embeddings\.1\.(weight|bias)$/.exec(key);
    if (perceptron) {
      monai = true;
      if (perceptron[1] === 'bias') {
        out.set('vit.patch_embedding.patch_embeddings.bias', t);
        continue;
      }
      const p = cfg.patchSize;
      const hidden = t.shape[0];
      if (t.ndim !== 2 || t.shape[1] !== p * p * p * cfg.inChannels) {
        throw new Error(
          `loadCheckpoint: perceptron patch embedding ${key} is ${fmt(t.shape)}, expected (hidden, ${p ** 3 * cfg.inChannels}) for patch ${p} and ${cfg.inChannels} channels`,
        );
      }
      // (hidden, p1 p2 p3 c) → (hidden, c, p1, p2, p3)
      out.set(
        'vit.patch_embedding.patch_embeddings.weight',
        permute(reshape(t, [hidden, p, p, p, cfg.inChannels]), [0, 4, 1, 2, 3]),
      );
      notes.push('converted the perceptron patch embedding to the conv projection');
      continue;
    }
    out.set(key, t);
  }
  return { stateDict: out, source: monai ? 'monai' : 'glimpse', notes };
}
