/**
 * ConvMixer ("Patches Are All You Need?", Trockman & Kolter) with timm's module names: a patchify conv,
 * then blocks of a residual depthwise conv (spatial mixing) and a pointwise conv (channel mixing),
 * each followed by the activation and BatchNorm.
 */
import { Conv2d } from '../nn/conv.js';
import { Dropout, GELU, ReLU } from '../nn/layers.js';
import { Linear } from '../nn/linear.js';
import { Identity, Module, Sequential, type TensorModule } from '../nn/module.js';
import { BatchNorm2d } from '../nn/norm.js';
import { add } from '../ops/elementwise.js';
import { mean } from '../ops/reduce.js';
import type { Tensor } from '../tensor/tensor.js';
import { type FeatureOptions, ImageClassifier, resolveConfig, type WeightInit } from './classifier.js';

export interface ConvMixerConfig {
  dim: number;
  depth: number;
  kernelSize: number;
  patchSize: number;
  inChans: number;
  numClasses: number;
  globalPool: 'avg' | '';
  actLayer: 'gelu' | 'relu';
  dropRate: number;
  /** Accepted for a uniform API: ConvMixer keeps torch's default layer init either way (as timm). */
  weightInit: WeightInit;
}

export const CONVMIXER_DEFAULTS: ConvMixerConfig = {
  dim: 768,
  depth: 32,
  kernelSize: 9,
  patchSize: 7,
  inChans: 3,
  numClasses: 1000,
  globalPool: 'avg',
  actLayer: 'gelu',
  dropRate: 0,
  weightInit: '',
};

/** fn(x) + x, named `fn` as in timm. */
class Residual extends Module implements TensorModule {
  constructor(public fn: Sequential) {
    super();
  }

  forward(x: Tensor): Tensor {
    return add(this.fn.forward(x), x);
  }
}

export class ConvMixer extends ImageClassifier {
  readonly family = 'convmixer';
  readonly config: ConvMixerConfig;
  readonly numClasses: number;
  readonly numFeatures: number;

  stem: Sequential;
  blocks: Sequential;
  head_drop: Dropout;
  head: TensorModule;

  constructor(overrides: Partial<ConvMixerConfig> | Record<string, unknown> = {}) {
    super();
    const cfg = resolveConfig('ConvMixer', CONVMIXER_DEFAULTS, overrides as Record<string, unknown>);
    if (cfg.kernelSize % 2 !== 1)
      throw new Error(`ConvMixer: kernel_size ${cfg.kernelSize} must be odd ('same' padding)`);
    this.config = cfg;
    this.numClasses = cfg.numClasses;
    this.numFeatures = cfg.dim;
    const act = (): TensorModule => (cfg.actLayer === 'relu' ? new ReLU() : new GELU());
    const d = cfg.dim;
    this.stem = new Sequential([
      new Conv2d(cfg.inChans, d, cfg.patchSize, { stride: cfg.patchSize }),
      act(),
      new BatchNorm2d(d),
    ]);
    this.blocks = new Sequential(
      Array.from(
        { length: cfg.depth },
        () =>
          new Sequential([
            new Residual(
              new Sequential([
                new Conv2d(d, d, cfg.kernelSize, { groups: d, padding: (cfg.kernelSize - 1) / 2 }),
                act(),
                new BatchNorm2d(d),
              ]),
            ),
            new Conv2d(d, d, 1),
            act(),
            new BatchNorm2d(d),
          ]),
      ),
    );
    this.head_drop = new Dropout(cfg.dropRate);
    this.head = cfg.numClasses > 0 ? new Linear(d, cfg.numClasses) : new Identity();
  }

  /** (B, C, H, W) → (B, dim, H/patch, W/patch). */
  forwardFeatures(x: Tensor, _options: FeatureOptions = {}): Tensor {
    this.checkImageBatch(x, this.config.inChans);
    return this.blocks.forward(this.stem.forward(x));
  }

  forwardHead(x: Tensor, options: { preLogits?: boolean } = {}): Tensor {
    const pooled = this.head_drop.forward(this.config.globalPool === 'avg' ? mean(x, [2, 3]) : x);
    return options.preLogits ? pooled : this.head.forward(pooled);
  }
}
