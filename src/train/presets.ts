/**
 * Training recipes as data: what `glimpse train --preset NAME` and the Fashion-MNIST scripts run.
 * A recipe names a zoo model with architecture overrides (timm kwargs), the dataset and the loop's
 * hyperparameters; the same fields make up a `--config FILE` JSON. The Fashion-MNIST presets are
 * sized for the budget (<= 30 minutes on 2 cores with the native backend); their accuracy
 * is measured by scripts/train_fashion.ts, not promised here.
 */

export type Augment = 'none' | 'light' | 'randaug';

export interface TrainRecipe {
  /** Zoo model id (glimpse models lists them). */
  model: string;
  /** Architecture overrides in timm's names; num_classes, in_chans and img_size follow the data unless set. */
  modelArgs?: Record<string, unknown>;
  /** 'fashion-mnist', a directory of Fashion-MNIST IDX files, or an image folder (one subfolder per class). */
  dataset: string;
  /** An image folder to evaluate on (Fashion-MNIST uses its test split). */
  evalDataset?: string;
  /** Side length images of an image folder are resized to. */
  imageSize?: number;
  /** Train on a class-balanced subset of this many images (the data-size experiment). */
  trainSubset?: number;
  epochs: number;
  batchSize: number;
  lr: number;
  minLr?: number;
  warmupEpochs?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  /** Mixup / CutMix Beta alphas (0: off). */
  mixup?: number;
  cutmix?: number;
  clipGrad?: number | null;
  /** EMA decay of the weights (null: no EMA). */
  ema?: number | null;
  augment?: Augment;
  seed?: number;
  /** Weights of a trained CNN teacher (model.safetensors of a glimpse train run): DeiT distillation. */
  teacher?: string;
  /** How the teacher supervises (default 'hard'); 'soft' uses distillationTau (default 3). */
  distillation?: 'hard' | 'soft';
  distillationTau?: number;
  description?: string;
}

const FASHION = {
  dataset: 'fashion-mnist',
  batchSize: 128,
  minLr: 1e-5,
  weightDecay: 0.05,
  labelSmoothing: 0.1,
  clipGrad: 1,
  augment: 'light' as Augment,
  seed: 0,
};

/** ViT and DeiT share this shape, so distillation compares like with like: 49 tokens of 4x4 patches, ~0.8M parameters. */
const SMALL_VIT = { patch_size: 4, embed_dim: 128, depth: 6, num_heads: 4, mlp_ratio: 2 };

/**
 * Epochs are sized from measured cost (scripts/profile_train_step.ts, CPU ms per image with the native
 * backend): 10 epochs of 60k images stay within 30 minutes on two cores for the ViT (~6 ms/image of CPU)
 * and the ResNet (~5 ms/image); the teacher's forward adds ~1 ms/image to the distilled run. Short
 * schedules favour no stochastic depth and a one-epoch warmup.
 */
export const TRAIN_PRESETS: Record<string, TrainRecipe> = {
  vit_fashion: {
    ...FASHION,
    description: 'small ViT (~0.8M params, 4x4 patches) trained from scratch; target >= 91% test accuracy',
    model: 'vit_tiny_patch16_224',
    modelArgs: { ...SMALL_VIT },
    epochs: 10,
    lr: 1.5e-3,
    warmupEpochs: 1,
    ema: null,
  },
  deit_fashion_distilled: {
    ...FASHION,
    description: 'the same ViT with a distillation token, taught by the ResNet (train resnet_fashion first)',
    model: 'deit_tiny_distilled_patch16_224',
    modelArgs: { ...SMALL_VIT },
    epochs: 10,
    lr: 1.5e-3,
    warmupEpochs: 1,
    ema: null,
    teacher: 'runs/resnet_fashion/model.safetensors',
  },
  vit_fashion_convstem: {
    ...FASHION,
    description:
      'the small ViT with a convolutional stem (3x3 convs of 24, 48 and 96 channels, the last two with stride 2, then a 1x1 projection) in place of its 4x4 patchify conv, no augmentation (it underfits in 8 epochs); target >= 91% test accuracy',
    model: 'vit_tiny_patch16_224',
    modelArgs: { ...SMALL_VIT, conv_stem: [24, 48, 96] },
    epochs: 8,
    lr: 1.5e-3,
    warmupEpochs: 1,
    augment: 'none',
    ema: null,
  },
  vit_fashion_convstem_aug: {
    ...FASHION,
    description:
      'vit_fashion_convstem with crop + flip augmentation (the plain twin of deit_fashion_convstem_distilled)',
    model: 'vit_tiny_patch16_224',
    modelArgs: { ...SMALL_VIT, conv_stem: [24, 48, 96] },
    epochs: 8,
    lr: 1.5e-3,
    warmupEpochs: 1,
    ema: null,
  },
  deit_fashion_convstem_distilled: {
    ...FASHION,
    description:
      'vit_fashion_convstem with a distillation token, taught by resnet_fashion_s1 (train that first)',
    model: 'deit_tiny_distilled_patch16_224',
    modelArgs: { ...SMALL_VIT, conv_stem: [24, 48, 96] },
    epochs: 8,
    lr: 1.5e-3,
    warmupEpochs: 1,
    ema: null,
    teacher: 'runs/resnet_fashion_s1/model.safetensors',
  },
  convmixer_fashion: {
    ...FASHION,
    description: 'ConvMixer-192/8, 2x2 patches, 5x5 depthwise kernels',
    model: 'convmixer_768_32',
    modelArgs: { dim: 192, depth: 8, kernel_size: 5, patch_size: 2, act_layer: 'gelu' },
    epochs: 15,
    lr: 5e-3,
    warmupEpochs: 1,
    weightDecay: 0.01,
    ema: null,
  },
  resnet_fashion: {
    ...FASHION,
    description: 'ResNet-18 layout at half width (32..256 channels); target >= 93%; the DeiT teacher',
    model: 'resnet18',
    modelArgs: { channels: [32, 64, 128, 256], stem_width: 32 },
    epochs: 10,
    lr: 3e-3,
    warmupEpochs: 1,
    weightDecay: 0.01,
    ema: null,
  },
  resnet_fashion_s1: {
    ...FASHION,
    description:
      'ResNet-18 layout at quarter width (16..128 channels) with a stride-1 stem, so its stages see 14x14 .. 2x2 maps of a 28x28 image; target >= 93%',
    model: 'resnet18',
    modelArgs: { channels: [16, 32, 64, 128], stem_channels: 32, stem_stride: 1 },
    epochs: 15,
    lr: 3e-3,
    warmupEpochs: 1,
    weightDecay: 0.01,
    ema: null,
  },
  mixer_fashion: {
    ...FASHION,
    description: 'MLP-Mixer with 4x4 patches, width 128, 6 blocks (no convolution, no attention)',
    model: 'mixer_b16_224',
    modelArgs: { patch_size: 4, embed_dim: 128, num_blocks: 6, drop_path_rate: 0.1 },
    epochs: 20,
    lr: 2e-3,
    warmupEpochs: 2,
    ema: null,
  },
};

export function getPreset(name: string): TrainRecipe {
  const preset = TRAIN_PRESETS[name];
  if (!preset) throw new Error(`unknown preset '${name}'; presets: ${Object.keys(TRAIN_PRESETS).join(', ')}`);
  return { ...preset, modelArgs: { ...preset.modelArgs } };
}
