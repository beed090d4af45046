/**
 * ConvNeXt (Liu et al., 2022) with timm's module names: a patchify stem, stages of depthwise 7x7
 * conv → LayerNorm → MLP (channels-last) → LayerScale with a residual, LayerNorm + 2x2 stride-2 conv
 * between stages, and a pooled LayerNorm → Linear head. The checkpoint filter maps Hugging Face's
 * ConvNextForImageClassification / ConvNextModel names.
 */
import { Conv2d } from '../nn/conv.js';
import { DropPath, Dropout, type Mlp } from '../nn/layers.js';
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
import { full } from '../ops/creation.js';
import { add, mul } from '../ops/elementwise.js';
import { layerNorm } from '../ops/normalization.js';
import { mean } from '../ops/reduce.js';
import { permute } from '../ops/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  type FeatureOptions,
  type FilteredCheckpoint,
  geluMlp,
  ImageClassifier,
  initLinearsTimm,
  type WeightInit,
  resolveConfig,
} from './classifier.js';
import { hfActivation, hfNumLabels } from './vit.js';

export interface ConvNextConfig {
  inChans: number;
  numClasses: number;
  globalPool: 'avg' | '';
  depths: number[];
  dims: number[];
  kernelSizes: number;
  /** LayerScale init; null = no LayerScale. */
  lsInitValue: number | null;
  patchSize: number;
  convBias: boolean;
  mlpRatio: number;
  dropRate: number;
  dropPathRate: number;
  normEps: number;
  /** Eps of the head's norm when it differs (Hugging Face uses config.layer_norm_eps there). */
  headNormEps: number | null;
  actLayer: 'gelu' | 'gelu_tanh';
  weightInit: WeightInit;
}

export const CONVNEXT_DEFAULTS: ConvNextConfig = {
  inChans: 3,
  numClasses: 1000,
  globalPool: 'avg',
  depths: [3, 3, 9, 3],
  dims: [96, 192, 384, 768],
  kernelSizes: 7,
  lsInitValue: 1e-6,
  patchSize: 4,
  convBias: true,
  mlpRatio: 4,
  dropRate: 0,
  dropPathRate: 0,
  normEps: 1e-6,
  headNormEps: null,
  actLayer: 'gelu',
  weightInit: '',
};

const IGNORED_KWARGS = ['head_init_scale', 'output_stride'];

/** LayerNorm over the channels of an NCHW tensor (timm's LayerNorm2d). */
export class LayerNorm2d extends LayerNorm {
  override forward(x: Tensor): Tensor {
    const nhwc = permute(x, [0, 2, 3, 1]);
    return permute(
      layerNorm(nhwc, this.normalizedShape, this.weight, this.bias, this.options.eps ?? 1e-5),
      [0, 3, 1, 2],
    );
  }
}

export class ConvNeXtBlock extends Module {
  conv_dw: Conv2d;
  norm: LayerNorm;
  mlp: Mlp;
  gamma: Parameter | null;
  drop_path: DropPath;

  constructor(
    dim: number,
    options: {
      kernelSize: number;
      lsInitValue: number | null;
      mlpRatio: number;
      convBias: boolean;
      dropPath: number;
      normEps: number;
      actLayer: 'gelu' | 'gelu_tanh';
    },
  ) {
    super();
    const k = options.kernelSize;
    this.conv_dw = new Conv2d(dim, dim, k, {
      padding: Math.floor(k / 2),
      groups: dim,
      bias: options.convBias,
    });
    this.norm = new LayerNorm(dim, { eps: options.normEps });
    this.mlp = geluMlp(dim, options.mlpRatio, options.actLayer);
    this.gamma = options.lsInitValue !== null ? new Parameter(full([dim], options.lsInitValue)) : null;
    this.drop_path = new DropPath(options.dropPath);
  }

  /** (B, C, H, W) → (B, C, H, W); the MLP runs channels-last so it is plain GEMMs. */
  forward(x: Tensor): Tensor {
    let h = permute(this.conv_dw.forward(x), [0, 2, 3, 1]); // (B, H, W, C)
    h = this.mlp.forward(this.norm.forward(h));
    if (this.gamma) h = mul(h, this.gamma);
    return add(this.drop_path.forward(permute(h, [0, 3, 1, 2])), x);
  }
}

export class ConvNeXtStage extends Module {
  downsample: Sequential | Identity;
  blocks: Sequential;

  constructor(downsample: Sequential | Identity, blocks: ConvNeXtBlock[]) {
    super();
    this.downsample = downsample;
    this.blocks = new Sequential(blocks);
  }

  forward(x: Tensor): Tensor {
    return this.blocks.forward(this.downsample.forward(x));
  }
}

class NormMlpClassifierHead extends Module {
  norm: LayerNorm;
  drop: Dropout;
  fc: TensorModule;

  constructor(dim: number, numClasses: number, eps: number, dropRate: number) {
    super();
    this.norm = new LayerNorm(dim, { eps });
    this.drop = new Dropout(dropRate);
    this.fc = numClasses > 0 ? new Linear(dim, numClasses) : new Identity();
  }
}

export class ConvNeXt extends ImageClassifier {
  readonly family = 'convnext';
  readonly config: ConvNextConfig;
  readonly numClasses: number;
  readonly numFeatures: number;

  stem: Sequential;
  stages: ModuleList<ConvNeXtStage>;
  head: NormMlpClassifierHead;

  constructor(overrides: Partial<ConvNextConfig> | Record<string, unknown> = {}) {
    super();
    const cfg = resolveConfig(
      'ConvNeXt',
      CONVNEXT_DEFAULTS,
      overrides as Record<string, unknown>,
      IGNORED_KWARGS,
    );
    this.config = cfg;
    if (cfg.depths.length !== cfg.dims.length) {
      throw new Error(`ConvNeXt: depths [${cfg.depths}] and dims [${cfg.dims}] differ in length`);
    }
    this.numClasses = cfg.numClasses;
    this.numFeatures = cfg.dims[cfg.dims.length - 1];
    this.stem = new Sequential([
      new Conv2d(cfg.inChans, cfg.dims[0], cfg.patchSize, { stride: cfg.patchSize, bias: cfg.convBias }),
      new LayerNorm2d(cfg.dims[0], { eps: cfg.normEps }),
    ]);
    const total = cfg.depths.reduce((a, b) => a + b, 0);
    let blockIndex = 0;
    this.stages = new ModuleList(
      cfg.depths.map((depth, i) => {
        const inDim = i > 0 ? cfg.dims[i - 1] : cfg.dims[0];
        const downsample =
          i > 0
            ? new Sequential([
                new LayerNorm2d(inDim, { eps: cfg.normEps }),
                new Conv2d(inDim, cfg.dims[i], 2, { stride: 2, bias: cfg.convBias }),
              ])
            : new Identity();
        const blocks = Array.from(
          { length: depth },
          () =>
            new ConvNeXtBlock(cfg.dims[i], {
              kernelSize: cfg.kernelSizes,
              lsInitValue: cfg.lsInitValue,
              mlpRatio: cfg.mlpRatio,
              convBias: cfg.convBias,
              dropPath: total > 1 ? (cfg.dropPathRate * blockIndex++) / (total - 1) : cfg.dropPathRate,
              normEps: cfg.normEps,
              actLayer: cfg.actLayer,
            }),
        );
        return new ConvNeXtStage(downsample, blocks);
      }),
    );
    this.head = new NormMlpClassifierHead(
      this.numFeatures,
      cfg.numClasses,
      cfg.headNormEps ?? cfg.normEps,
      cfg.dropRate,
    );
    if (cfg.weightInit !== 'skip') initLinearsTimm(this);
  }

  /** (B, C, H, W) → (B, C_last, H/32, W/32). */
  forwardFeatures(x: Tensor, _options: FeatureOptions = {}): Tensor {
    this.checkImageBatch(x, this.config.inChans);
    let t = this.stem.forward(x);
    for (const stage of this.stages) t = stage.forward(t);
    return t;
  }

  forwardHead(x: Tensor, options: { preLogits?: boolean } = {}): Tensor {
    const pooled = this.config.globalPool === 'avg' ? mean(x, [2, 3]) : x; // (B, C)
    const h = this.head.drop.forward(this.head.norm.forward(pooled));
    return options.preLogits ? h : this.head.fc.forward(h);
  }

  override filterCheckpoint(sd: StateDict): FilteredCheckpoint {
    return filterConvNextCheckpoint(sd);
  }
}

const HF_CONVNEXT: Array<[RegExp, string]> = [
  [/^(?:convnext\.)?embeddings\.patch_embeddings\.(weight|bias)$/, 'stem.0.$1'],
  [/^(?:convnext\.)?embeddings\.layernorm\.(weight|bias)$/, 'stem.1.$1'],
  [
    /^(?:convnext\.)?encoder\.stages\.(\d+)\.downsampling_layer\.(\d)\.(weight|bias)$/,
    'stages.$1.downsample.$2.$3',
  ],
  [
    /^(?:convnext\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.dwconv\.(weight|bias)$/,
    'stages.$1.blocks.$2.conv_dw.$3',
  ],
  [
    /^(?:convnext\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.layernorm\.(weight|bias)$/,
    'stages.$1.blocks.$2.norm.$3',
  ],
  [
    /^(?:convnext\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.pwconv1\.(weight|bias)$/,
    'stages.$1.blocks.$2.mlp.fc1.$3',
  ],
  [
    /^(?:convnext\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.pwconv2\.(weight|bias)$/,
    'stages.$1.blocks.$2.mlp.fc2.$3',
  ],
  [
    /^(?:convnext\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.layer_scale_parameter$/,
    'stages.$1.blocks.$2.gamma',
  ],
  [/^(?:convnext\.)?layernorm\.(weight|bias)$/, 'head.norm.$1'],
  [/^classifier\.(weight|bias)$/, 'head.fc.$1'],
];

export function filterConvNextCheckpoint(sd: StateDict): FilteredCheckpoint {
  const isHf = [...sd.keys()].some((k) => /(?:^|\.)embeddings\.patch_embeddings\./.test(k));
  if (!isHf) return { stateDict: sd, source: 'timm', notes: [] };
  const out: StateDict = new Map();
  for (const [k, v] of sd) {
    const rule = HF_CONVNEXT.find(([re]) => re.test(k));
    out.set(rule ? k.replace(rule[0], rule[1]) : k, v);
  }
  return { stateDict: out, source: 'huggingface', notes: [] };
}

/** A Hugging Face ConvNextConfig (config.json) as a timm-named ConvNeXt. */
export function convnextFromHfConfig(
  config: Record<string, unknown>,
  architecture: 'classification' | 'bare',
  weightInit: WeightInit = '',
): ConvNeXt {
  const ls = config.layer_scale_init_value ?? 1e-6;
  return new ConvNeXt({
    inChans: Number(config.num_channels ?? 3),
    patchSize: Number(config.patch_size ?? 4),
    depths: (config.depths as number[]) ?? [3, 3, 9, 3],
    dims: (config.hidden_sizes as number[]) ?? [96, 192, 384, 768],
    lsInitValue: Number(ls) > 0 ? Number(ls) : null,
    actLayer: hfActivation(config.hidden_act),
    // HF hardcodes 1e-6 inside the network and uses layer_norm_eps only for the final norm.
    normEps: 1e-6,
    headNormEps: Number(config.layer_norm_eps ?? 1e-12),
    numClasses: architecture === 'bare' ? 0 : hfNumLabels(config),
    weightInit,
  });
}
