/**
 * ResNet (He et al.) with timm's / torchvision's module names (conv1, bn1, layer1.0.conv1, fc):
 * BasicBlock and Bottleneck (stride on the 3x3, "v1.5"), and a backbone view that returns the four
 * stage outputs (strides 4, 8, 16, 32) for detection and segmentation. The checkpoint filter also
 * maps Hugging Face ResNetModel / ResNetForImageClassification names.
 */
import { Conv2d } from '../nn/conv.js';
import { kaimingNormal_ } from '../nn/init.js';
import { ReLU } from '../nn/layers.js';
import { Linear } from '../nn/linear.js';
import { Identity, Module, Sequential, type StateDict, type TensorModule } from '../nn/module.js';
import { BatchNorm2d } from '../nn/norm.js';
import { add } from '../ops/elementwise.js';
import { maxPool2d } from '../ops/pool.js';
import { mean } from '../ops/reduce.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  type FeatureOptions,
  type FilteredCheckpoint,
  ImageClassifier,
  resolveConfig,
  type WeightInit,
} from './classifier.js';
import { hfNumLabels } from './vit.js';

export type ResNetBlockType = 'basic' | 'bottleneck';

export interface ResNetConfig {
  block: ResNetBlockType;
  layers: number[];
  numClasses: number;
  inChans: number;
  cardinality: number;
  baseWidth: number;
  /** Width of the 7x7 stem (glimpse's name: timm's stem_width only applies to its deep stems). */
  stemChannels: number;
  /**
   * Stride of the 7x7 stem convolution (timm: 2) and whether the 3x3/2 max pool follows it (timm:
   * true). Small inputs such as 28x28 Fashion-MNIST keep more resolution with stride 1 (the stages
   * then run at 1/2 .. 1/16 instead of 1/4 .. 1/32); glimpse options, not timm kwargs.
   */
  stemStride: number;
  stemPool: boolean;
  /** Planes per stage (a bottleneck stage outputs 4x as many channels). */
  channels: number[];
  globalPool: 'avg' | '';
  dropRate: number;
  weightInit: WeightInit;
}

export const RESNET_DEFAULTS: ResNetConfig = {
  block: 'bottleneck',
  layers: [3, 4, 6, 3],
  numClasses: 1000,
  inChans: 3,
  cardinality: 1,
  baseWidth: 64,
  stemChannels: 64,
  stemStride: 2,
  stemPool: true,
  channels: [64, 128, 256, 512],
  globalPool: 'avg',
  dropRate: 0,
  weightInit: '',
};

// timm's plain 7x7 stem is 64 wide whatever stem_width says (stem_width sizes its deep stems only).
const IGNORED_KWARGS = ['zero_init_last', 'stem_width'];

function bn(c: number): BatchNorm2d {
  return new BatchNorm2d(c);
}

export class BasicBlock extends Module implements TensorModule {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  act1: ReLU;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  act2: ReLU;
  downsample: Sequential | null;

  constructor(inplanes: number, planes: number, stride: number, downsample: Sequential | null) {
    super();
    this.conv1 = new Conv2d(inplanes, planes, 3, { stride, padding: 1, bias: false });
    this.bn1 = bn(planes);
    this.act1 = new ReLU();
    this.conv2 = new Conv2d(planes, planes, 3, { padding: 1, bias: false });
    this.bn2 = bn(planes);
    this.act2 = new ReLU();
    this.downsample = downsample;
  }

  forward(x: Tensor): Tensor {
    const h = this.act1.forward(this.bn1.forward(this.conv1.forward(x)));
    const y = this.bn2.forward(this.conv2.forward(h));
    return this.act2.forward(add(y, this.downsample ? this.downsample.forward(x) : x));
  }
}

export class Bottleneck extends Module implements TensorModule {
  static readonly expansion = 4;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  act1: ReLU;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  act2: ReLU;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  act3: ReLU;
  downsample: Sequential | null;

  constructor(
    inplanes: number,
    planes: number,
    stride: number,
    downsample: Sequential | null,
    options: { cardinality: number; baseWidth: number },
  ) {
    super();
    const width = Math.floor(planes * (options.baseWidth / 64)) * options.cardinality;
    const outplanes = planes * Bottleneck.expansion;
    this.conv1 = new Conv2d(inplanes, width, 1, { bias: false });
    this.bn1 = bn(width);
    this.act1 = new ReLU();
    this.conv2 = new Conv2d(width, width, 3, {
      stride,
      padding: 1,
      groups: options.cardinality,
      bias: false,
    });
    this.bn2 = bn(width);
    this.act2 = new ReLU();
    this.conv3 = new Conv2d(width, outplanes, 1, { bias: false });
    this.bn3 = bn(outplanes);
    this.act3 = new ReLU();
    this.downsample = downsample;
  }

  forward(x: Tensor): Tensor {
    let h = this.act1.forward(this.bn1.forward(this.conv1.forward(x)));
    h = this.act2.forward(this.bn2.forward(this.conv2.forward(h)));
    const y = this.bn3.forward(this.conv3.forward(h));
    return this.act3.forward(add(y, this.downsample ? this.downsample.forward(x) : x));
  }
}

/**
 * The residual stages of a ResNet after its stem: stage i has layers[i] blocks of channels[i] planes,
 * stride 1 for the first stage and 2 after, a 1x1 conv + BN shortcut where the shape changes. Any
 * number of stages (DETR's backbones stop early).
 */
export function buildResNetStages(
  block: ResNetBlockType,
  layers: readonly number[],
  channels: readonly number[],
  stemWidth: number,
  options: { cardinality: number; baseWidth: number },
): Sequential[] {
  const expansion = block === 'basic' ? BasicBlock.expansion : Bottleneck.expansion;
  let inplanes = stemWidth;
  return layers.map((n, i) => {
    const planes = channels[i];
    const stride = i === 0 ? 1 : 2;
    const blocks: TensorModule[] = [];
    for (let b = 0; b < n; b++) {
      const s = b === 0 ? stride : 1;
      const needsDown = b === 0 && (s !== 1 || inplanes !== planes * expansion);
      const down = needsDown
        ? new Sequential([
            new Conv2d(inplanes, planes * expansion, 1, { stride: s, bias: false }),
            bn(planes * expansion),
          ])
        : null;
      blocks.push(
        block === 'basic'
          ? new BasicBlock(inplanes, planes, s, down)
          : new Bottleneck(inplanes, planes, s, down, options),
      );
      inplanes = planes * expansion;
    }
    return new Sequential(blocks);
  });
}

export class ResNet extends ImageClassifier {
  readonly family = 'resnet';
  readonly config: ResNetConfig;
  readonly numClasses: number;
  readonly numFeatures: number;
  /** Channels of layer1..layer4 outputs (what a detection/segmentation neck consumes). */
  readonly stageChannels: number[];

  conv1: Conv2d;
  bn1: BatchNorm2d;
  act1: ReLU;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  fc: TensorModule;

  constructor(overrides: Partial<ResNetConfig> | Record<string, unknown> = {}) {
    super();
    const cfg = resolveConfig(
      'ResNet',
      RESNET_DEFAULTS,
      overrides as Record<string, unknown>,
      IGNORED_KWARGS,
    );
    if (cfg.block !== 'basic' && cfg.block !== 'bottleneck') {
      throw new Error(`ResNet: block must be 'basic' or 'bottleneck', got '${cfg.block}'`);
    }
    if (cfg.layers.length !== 4 || cfg.channels.length !== 4) {
      throw new Error(`ResNet: expected 4 stages, got layers [${cfg.layers}] and channels [${cfg.channels}]`);
    }
    if (cfg.block === 'basic' && (cfg.cardinality !== 1 || cfg.baseWidth !== 64)) {
      throw new Error('ResNet: BasicBlock supports only cardinality 1 and base_width 64');
    }
    this.config = cfg;
    const expansion = cfg.block === 'basic' ? BasicBlock.expansion : Bottleneck.expansion;
    if (![1, 2].includes(cfg.stemStride)) {
      throw new Error(`ResNet: stem_stride must be 1 or 2, got ${cfg.stemStride}`);
    }
    this.conv1 = new Conv2d(cfg.inChans, cfg.stemChannels, 7, {
      stride: cfg.stemStride,
      padding: 3,
      bias: false,
    });
    this.bn1 = bn(cfg.stemChannels);
    this.act1 = new ReLU();
    const stages = buildResNetStages(cfg.block, cfg.layers, cfg.channels, cfg.stemChannels, {
      cardinality: cfg.cardinality,
      baseWidth: cfg.baseWidth,
    });
    [this.layer1, this.layer2, this.layer3, this.layer4] = stages;
    this.stageChannels = cfg.channels.map((c) => c * expansion);
    this.numFeatures = this.stageChannels[3];
    this.numClasses = cfg.numClasses;
    this.fc = cfg.numClasses > 0 ? new Linear(this.numFeatures, cfg.numClasses) : new Identity();
    if (cfg.weightInit !== 'skip') {
      for (const [, m] of this.namedModules()) {
        if (m instanceof Conv2d) kaimingNormal_(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      }
    }
  }

  /** The stem: (B, C, H, W) → (B, stem, H/4, W/4) (timm's; H/s with stem_stride and stem_pool changed). */
  private stem(x: Tensor): Tensor {
    const h = this.act1.forward(this.bn1.forward(this.conv1.forward(x)));
    return this.config.stemPool ? maxPool2d(h, 3, { stride: 2, padding: 1 }) : h;
  }

  /** Backbone view: layer1..layer4 outputs at strides 4, 8, 16, 32. */
  forwardStages(x: Tensor): Tensor[] {
    this.checkImageBatch(x, this.config.inChans);
    const out: Tensor[] = [];
    let t = this.stem(x);
    for (const layer of [this.layer1, this.layer2, this.layer3, this.layer4]) {
      t = layer.forward(t);
      out.push(t);
    }
    return out;
  }

  /** (B, C, H, W) → (B, C_last, H/32, W/32). */
  forwardFeatures(x: Tensor, _options: FeatureOptions = {}): Tensor {
    return this.forwardStages(x)[3];
  }

  forwardHead(x: Tensor, options: { preLogits?: boolean } = {}): Tensor {
    const pooled = this.config.globalPool === 'avg' ? mean(x, [2, 3]) : x; // (B, C)
    return options.preLogits ? pooled : this.fc.forward(pooled);
  }

  override filterCheckpoint(sd: StateDict): FilteredCheckpoint {
    return filterResNetCheckpoint(sd);
  }
}

const HF_RESNET: Array<[RegExp, (m: RegExpExecArray) => string]> = [
  [/^(?:resnet\.)?embedder\.embedder\.convolution\.weight$/, () => 'conv1.weight'],
  [/^(?:resnet\.)?embedder\.embedder\.normalization\.(.+)$/, (m) => `bn1.${m[1]}`],
  [
    /^(?:resnet\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.convolution\.weight$/,
    (m) => `layer${Number(m[1]) + 1}.${m[2]}.downsample.0.weight`,
  ],
  [
    /^(?:resnet\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.shortcut\.normalization\.(.+)$/,
    (m) => `layer${Number(m[1]) + 1}.${m[2]}.downsample.1.${m[3]}`,
  ],
  [
    /^(?:resnet\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.convolution\.weight$/,
    (m) => `layer${Number(m[1]) + 1}.${m[2]}.conv${Number(m[3]) + 1}.weight`,
  ],
  [
    /^(?:resnet\.)?encoder\.stages\.(\d+)\.layers\.(\d+)\.layer\.(\d+)\.normalization\.(.+)$/,
    (m) => `layer${Number(m[1]) + 1}.${m[2]}.bn${Number(m[3]) + 1}.${m[4]}`,
  ],
  [/^classifier\.1\.(weight|bias)$/, (m) => `fc.${m[1]}`],
];

export function filterResNetCheckpoint(sd: StateDict): FilteredCheckpoint {
  const isHf = [...sd.keys()].some((k) => /(?:^|\.)embedder\.embedder\.convolution\.weight$/.test(k));
  if (!isHf) return { stateDict: sd, source: 'timm', notes: [] };
  const out: StateDict = new Map();
  for (const [k, v] of sd) {
    const rule = HF_RESNET.find(([re]) => re.test(k));
    out.set(rule ? rule[1](rule[0].exec(k) as RegExpExecArray) : k, v);
  }
  return { stateDict: out, source: 'huggingface', notes: [] };
}

/** A Hugging Face ResNetConfig (config.json) as a timm-named ResNet. */
export function resnetFromHfConfig(
  config: Record<string, unknown>,
  architecture: 'classification' | 'bare',
  weightInit: WeightInit = '',
): ResNet {
  const block: ResNetBlockType = config.layer_type === 'basic' ? 'basic' : 'bottleneck';
  const expansion = block === 'basic' ? 1 : 4;
  if (config.downsample_in_first_stage || config.downsample_in_bottleneck) {
    throw new Error(
      'Hugging Face ResNet config: downsample_in_first_stage / downsample_in_bottleneck are not supported',
    );
  }
  const hidden = (config.hidden_sizes as number[]) ?? [256, 512, 1024, 2048];
  return new ResNet({
    block,
    layers: (config.depths as number[]) ?? [3, 4, 6, 3],
    inChans: Number(config.num_channels ?? 3),
    stemChannels: Number(config.embedding_size ?? 64),
    channels: hidden.map((h) => h / expansion),
    numClasses: architecture === 'bare' ? 0 : hfNumLabels(config),
    weightInit,
  });
}
