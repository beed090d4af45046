/**
 * The model registry: timm's ids with their architecture kwargs and pretrained (eval) configs, as data.
 * Also builds models from the other ways people describe them: a timm / torchvision / Hugging Face
 * constructor name plus keyword arguments (fixtures.json), or a Hugging Face config.json.
 */
import type { StateDict } from '../nn/module.js';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  INCEPTION_MEAN,
  INCEPTION_STD,
  type ImageClassifier,
  type Interpolation,
  type PretrainedConfig,
  type WeightInit,
} from './classifier.js';
import { ConvMixer } from './convmixer.js';
import { ConvNeXt, convnextFromHfConfig } from './convnext.js';
import { MlpMixer } from './mlp_mixer.js';
import { ResNet, resnetFromHfConfig } from './resnet.js';
import { SwinTransformer, swinFromHfConfig } from './swin.js';
import { VisionTransformer, VisionTransformerDistilled, vitFromHfConfig, vitFromTorchvision } from './vit.js';

export type Family = 'vit' | 'deit' | 'swin' | 'convnext' | 'mixer' | 'convmixer' | 'resnet';

type Kwargs = Record<string, unknown>;

const BUILDERS: Record<Family, (kwargs: Kwargs) => ImageClassifier> = {
  vit: (kw) => new VisionTransformer(kw),
  deit: (kw) => new VisionTransformerDistilled(kw),
  swin: (kw) => new SwinTransformer(kw),
  convnext: (kw) => new ConvNeXt(kw),
  mixer: (kw) => new MlpMixer(kw),
  convmixer: (kw) => new ConvMixer(kw),
  resnet: (kw) => new ResNet(kw),
};

export interface ModelEntry {
  id: string;
  family: Family;
  /** Architecture keyword arguments under timm's names. */
  kwargs: Kwargs;
  pretrained: PretrainedConfig;
}

function cfg(
  inception: boolean,
  cropPct: number,
  tag: string,
  interpolation: Interpolation = 'bicubic',
  size = 224,
): PretrainedConfig {
  return {
    inputSize: [3, size, size],
    mean: inception ? INCEPTION_MEAN : IMAGENET_MEAN,
    std: inception ? INCEPTION_STD : IMAGENET_STD,
    cropPct,
    interpolation,
    numClasses: 1000,
    tag,
  };
}

const vit = (embed: number, heads: number, patch = 16) => ({
  patch_size: patch,
  embed_dim: embed,
  depth: 12,
  num_heads: heads,
});

const ENTRIES: ModelEntry[] = [
  {
    id: 'vit_tiny_patch16_224',
    family: 'vit',
    kwargs: vit(192, 3),
    pretrained: cfg(true, 0.9, 'augreg_in21k_ft_in1k'),
  },
  {
    id: 'vit_small_patch16_224',
    family: 'vit',
    kwargs: vit(384, 6),
    pretrained: cfg(true, 0.9, 'augreg_in21k_ft_in1k'),
  },
  {
    id: 'vit_base_patch16_224',
    family: 'vit',
    kwargs: vit(768, 12),
    pretrained: cfg(true, 0.9, 'augreg2_in21k_ft_in1k'),
  },
  {
    id: 'vit_base_patch32_224',
    family: 'vit',
    kwargs: vit(768, 12, 32),
    pretrained: cfg(true, 0.9, 'augreg2_in21k_ft_in1k'),
  },
  {
    id: 'deit_tiny_patch16_224',
    family: 'vit',
    kwargs: vit(192, 3),
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'deit_small_patch16_224',
    family: 'vit',
    kwargs: vit(384, 6),
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'deit_base_patch16_224',
    family: 'vit',
    kwargs: vit(768, 12),
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'deit_tiny_distilled_patch16_224',
    family: 'deit',
    kwargs: vit(192, 3),
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'deit_small_distilled_patch16_224',
    family: 'deit',
    kwargs: vit(384, 6),
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'deit_base_distilled_patch16_224',
    family: 'deit',
    kwargs: vit(768, 12),
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'swin_tiny_patch4_window7_224',
    family: 'swin',
    kwargs: { embed_dim: 96, depths: [2, 2, 6, 2], num_heads: [3, 6, 12, 24], window_size: 7 },
    pretrained: cfg(false, 0.9, 'ms_in22k_ft_in1k'),
  },
  {
    id: 'swin_small_patch4_window7_224',
    family: 'swin',
    kwargs: { embed_dim: 96, depths: [2, 2, 18, 2], num_heads: [3, 6, 12, 24], window_size: 7 },
    pretrained: cfg(false, 0.9, 'ms_in22k_ft_in1k'),
  },
  {
    id: 'swin_base_patch4_window7_224',
    family: 'swin',
    kwargs: { embed_dim: 128, depths: [2, 2, 18, 2], num_heads: [4, 8, 16, 32], window_size: 7 },
    pretrained: cfg(false, 0.9, 'ms_in22k_ft_in1k'),
  },
  {
    id: 'convnext_tiny',
    family: 'convnext',
    kwargs: { depths: [3, 3, 9, 3], dims: [96, 192, 384, 768] },
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'convnext_small',
    family: 'convnext',
    kwargs: { depths: [3, 3, 27, 3], dims: [96, 192, 384, 768] },
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'convnext_base',
    family: 'convnext',
    kwargs: { depths: [3, 3, 27, 3], dims: [128, 256, 512, 1024] },
    pretrained: cfg(false, 0.875, 'fb_in1k'),
  },
  {
    id: 'mixer_b16_224',
    family: 'mixer',
    kwargs: { patch_size: 16, num_blocks: 12, embed_dim: 768 },
    pretrained: cfg(true, 0.875, 'goog_in21k_ft_in1k'),
  },
  {
    id: 'convmixer_768_32',
    family: 'convmixer',
    kwargs: { dim: 768, depth: 32, kernel_size: 7, patch_size: 7, act_layer: 'relu' },
    pretrained: cfg(false, 0.96, 'in1k'),
  },
  {
    id: 'convmixer_1536_20',
    family: 'convmixer',
    kwargs: { dim: 1536, depth: 20, kernel_size: 9, patch_size: 7 },
    pretrained: cfg(false, 0.96, 'in1k'),
  },
  {
    id: 'resnet18',
    family: 'resnet',
    kwargs: { block: 'basic', layers: [2, 2, 2, 2] },
    pretrained: cfg(false, 0.95, 'a1_in1k'),
  },
  {
    id: 'resnet34',
    family: 'resnet',
    kwargs: { block: 'basic', layers: [3, 4, 6, 3] },
    pretrained: cfg(false, 0.95, 'a1_in1k'),
  },
  {
    id: 'resnet50',
    family: 'resnet',
    kwargs: { block: 'bottleneck', layers: [3, 4, 6, 3] },
    pretrained: cfg(false, 0.95, 'a1_in1k'),
  },
];

const REGISTRY = new Map(ENTRIES.map((e) => [e.id, e]));

/** Registered ids, optionally filtered by a substring or a family. */
export function listModels(filter?: string | { family?: Family }): string[] {
  const ids = [...REGISTRY.keys()];
  if (typeof filter === 'string') return ids.filter((id) => id.includes(filter));
  if (filter?.family) return ids.filter((id) => REGISTRY.get(id)?.family === filter.family);
  return ids;
}

export function getModelEntry(id: string): ModelEntry {
  const entry = REGISTRY.get(id);
  if (!entry) {
    const near = listModels().filter((m) => m.split('_')[0] === id.split('_')[0]);
    throw new Error(
      `createModel: unknown model '${id}'; known: ${(near.length ? near : listModels()).join(', ')}`,
    );
  }
  return entry;
}

/** The input size a built model takes, from its img_size where it has one. */
function inputSizeOf(model: ImageClassifier, fallback: [number, number, number]): [number, number, number] {
  const c = (model as unknown as { config: Record<string, unknown> }).config;
  const chans = Number(c.inChans ?? fallback[0]);
  const img = c.imgSize as number | number[] | undefined;
  if (img === undefined) return [chans, fallback[1], fallback[2]];
  return typeof img === 'number' ? [chans, img, img] : [chans, img[0], img[1]];
}

/**
 * A registered model by its timm id, with architecture overrides in timm's snake_case names or
 * camelCase (`{ num_classes: 10 }`, `{ img_size: 384 }`, `{ depth: 2 }`). Weights are randomly
 * initialized; load a checkpoint with loadCheckpoint.
 */
export function createModel(id: string, overrides: Kwargs = {}): ImageClassifier {
  const entry = getModelEntry(id);
  const model = BUILDERS[entry.family]({ ...entry.kwargs, ...overrides });
  model.pretrainedCfg = {
    ...entry.pretrained,
    inputSize: inputSizeOf(model, entry.pretrained.inputSize),
    numClasses: model.numClasses,
  };
  return model;
}

function defaultPretrained(
  model: ImageClassifier,
  inception: boolean,
  interpolation: Interpolation,
  cropPct: number,
) {
  model.pretrainedCfg = {
    ...cfg(inception, cropPct, '', interpolation),
    inputSize: inputSizeOf(model, [3, 224, 224]),
    numClasses: model.numClasses,
  };
  delete model.pretrainedCfg.tag;
  return model;
}

const TIMM_CONSTRUCTORS: Record<string, Family> = {
  'timm.models.vision_transformer.VisionTransformer': 'vit',
  'timm.models.deit.VisionTransformerDistilled': 'deit',
  'timm.models.swin_transformer.SwinTransformer': 'swin',
  'timm.models.convnext.ConvNeXt': 'convnext',
  'timm.models.mlp_mixer.MlpMixer': 'mixer',
  'timm.models.convmixer.ConvMixer': 'convmixer',
  'timm.models.resnet.ResNet': 'resnet',
};

/** Hugging Face architectures: what the head is (classification, DeiT's two heads, none). */
const HF_ARCHITECTURES: Record<string, 'classification' | 'teacher' | 'bare'> = {
  ViTForImageClassification: 'classification',
  ViTModel: 'bare',
  DeiTForImageClassification: 'classification',
  DeiTForImageClassificationWithTeacher: 'teacher',
  DeiTModel: 'bare',
  SwinForImageClassification: 'classification',
  SwinModel: 'bare',
  ConvNextForImageClassification: 'classification',
  ConvNextModel: 'bare',
  ResNetForImageClassification: 'classification',
  ResNetModel: 'bare',
};

const HF_MODEL_TYPES: Record<string, string> = {
  ViT: 'vit',
  DeiT: 'deit',
  Swin: 'swin',
  ConvNext: 'convnext',
  ResNet: 'resnet',
};

/**
 * Which Hugging Face head a checkpoint carries, from its keys: DeiT's two classifiers, a classifier,
 * or none (a bare *Model).
 */
export function hfArchitectureFromKeys(keys: Iterable<string>): 'classification' | 'teacher' | 'bare' {
  let arch: 'classification' | 'teacher' | 'bare' = 'bare';
  for (const k of keys) {
    if (k.startsWith('cls_classifier.') || k.startsWith('distillation_classifier.')) return 'teacher';
    if (k.startsWith('classifier.')) arch = 'classification';
  }
  return arch;
}

/**
 * A model from a Hugging Face config.json (ViT, DeiT, Swin, ConvNeXt, ResNet). The architecture comes
 * from `config.architectures`, else from the checkpoint's keys when given, else a classifier.
 */
export function modelFromHfConfig(
  config: Record<string, unknown>,
  checkpointKeys?: Iterable<string>,
  options: { weightInit?: WeightInit } = {},
): ImageClassifier {
  const init = options.weightInit ?? '';
  const declared = Array.isArray(config.architectures) ? String(config.architectures[0]) : undefined;
  let arch: 'classification' | 'teacher' | 'bare';
  if (declared) {
    const a = HF_ARCHITECTURES[declared];
    if (!a) {
      throw new Error(
        `modelFromHfConfig: architecture '${declared}' is not supported; supported: ${Object.keys(HF_ARCHITECTURES).join(', ')}`,
      );
    }
    arch = a;
  } else arch = checkpointKeys ? hfArchitectureFromKeys(checkpointKeys) : 'classification';
  const type = String(config.model_type ?? '');
  const labels = hfLabels(config);
  let model: ImageClassifier;
  switch (type) {
    case 'vit':
      model = defaultPretrained(
        vitFromHfConfig(config, arch === 'teacher' ? 'classification' : arch, init),
        true,
        'bilinear',
        1,
      );
      break;
    case 'deit':
      model = defaultPretrained(vitFromHfConfig(config, arch, init), false, 'bicubic', 0.875);
      break;
    case 'swin':
      model = defaultPretrained(
        swinFromHfConfig(config, arch === 'bare' ? 'bare' : 'classification', init),
        false,
        'bicubic',
        1,
      );
      break;
    case 'convnext':
      model = defaultPretrained(
        convnextFromHfConfig(config, arch === 'bare' ? 'bare' : 'classification', init),
        false,
        'bilinear',
        0.875,
      );
      break;
    case 'resnet':
      model = defaultPretrained(
        resnetFromHfConfig(config, arch === 'bare' ? 'bare' : 'classification', init),
        false,
        'bilinear',
        0.875,
      );
      break;
    default:
      throw new Error(
        `modelFromHfConfig: model_type '${type}' is not supported; supported: vit, deit, swin, convnext, resnet`,
      );
  }
  if (labels && labels.length === model.numClasses) model.pretrainedCfg.labels = labels;
  return model;
}

/** id2label as a list (index = class id), or undefined when the config has none or only LABEL_i. */
export function hfLabels(config: Record<string, unknown>): string[] | undefined {
  const id2label = config.id2label as Record<string, string> | undefined;
  if (!id2label) return undefined;
  const labels: string[] = [];
  for (const [i, name] of Object.entries(id2label)) labels[Number(i)] = String(name);
  return labels;
}

/**
 * A model from a constructor name and its keyword arguments, as fixtures.json records them:
 * timm classes (`timm.models.vision_transformer.VisionTransformer`, `timm.models.resnet.ResNet(Bottleneck)`),
 * `torchvision.models.VisionTransformer`, or Hugging Face classes (`transformers.ViTForImageClassification`;
 * the kwargs are config fields, or pass the repository's config.json as `hfConfig`).
 */
export function createModelFromConstructor(
  ctor: string,
  kwargs: Kwargs = {},
  options: { hfConfig?: Record<string, unknown>; weightInit?: WeightInit } = {},
): ImageClassifier {
  const weightInit = options.weightInit ?? '';
  const resnetBlock = /^timm\.models\.resnet\.ResNet\((Bottleneck|BasicBlock)\)$/.exec(ctor);
  if (resnetBlock) {
    return defaultPretrained(
      new ResNet({ ...kwargs, block: resnetBlock[1] === 'Bottleneck' ? 'bottleneck' : 'basic', weightInit }),
      false,
      'bicubic',
      0.95,
    );
  }
  const family = TIMM_CONSTRUCTORS[ctor];
  if (family) {
    const inception = family === 'vit' || family === 'mixer';
    return defaultPretrained(
      BUILDERS[family]({ ...kwargs, weightInit }),
      inception,
      'bicubic',
      inception ? 0.9 : 0.875,
    );
  }
  if (ctor === 'torchvision.models.VisionTransformer') {
    return defaultPretrained(vitFromTorchvision(kwargs, weightInit), false, 'bilinear', 0.875);
  }
  const hf = /^transformers\.(\w+?)(ForImageClassificationWithTeacher|ForImageClassification|Model)$/.exec(
    ctor,
  );
  if (hf && HF_MODEL_TYPES[hf[1]]) {
    const config = options.hfConfig ?? { ...kwargs, model_type: HF_MODEL_TYPES[hf[1]] };
    return modelFromHfConfig({ ...config, architectures: [`${hf[1]}${hf[2]}`] }, undefined, { weightInit });
  }
  throw new Error(
    `createModelFromConstructor: '${ctor}' is not supported; supported: ${[
      ...Object.keys(TIMM_CONSTRUCTORS),
      'timm.models.resnet.ResNet(Bottleneck|BasicBlock)',
      'torchvision.models.VisionTransformer',
      ...Object.keys(HF_ARCHITECTURES).map((a) => `transformers.${a}`),
    ].join(', ')}`,
  );
}

/** Which family a timm-named checkpoint belongs to, from telltale keys (for error messages). */
export function guessCheckpointFamily(sd: StateDict | Iterable<string>): string | null {
  const keys = [...(sd instanceof Map ? sd.keys() : sd)];
  const has = (re: RegExp) => keys.some((k) => re.test(k));
  if (has(/relative_position_bias_table/)) return 'swin (e.g. swin_tiny_patch4_window7_224)';
  if (has(/conv_dw\.weight$|dwconv\.weight$/)) return 'convnext (e.g. convnext_tiny)';
  if (has(/mlp_tokens\./)) return 'mlp-mixer (e.g. mixer_b16_224)';
  if (has(/^blocks\.\d+\.0\.fn\./)) return 'convmixer (e.g. convmixer_768_32)';
  if (has(/^(?:layer1\.|.*embedder\.embedder\.convolution)/)) return 'resnet (e.g. resnet50)';
  if (has(/dist_token$|distillation_token$|head_dist\./))
    return 'deit distilled (e.g. deit_tiny_distilled_patch16_224)';
  if (has(/(?:^|\.)blocks\.\d+\.attn\.qkv\.|(?:^|\.)encoder\.layers?\.\d+\.attention|encoder_layer_\d+\./)) {
    return 'vit (e.g. vit_base_patch16_224)';
  }
  if (has(/^(?:backbone|transformer|model\.backbone)\./))
    return 'detection model (DETR-like), not a classifier';
  return null;
}
