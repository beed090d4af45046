/**
 * What every image classifier of the zoo shares: timm's forwardFeatures / forwardHead split, a
 * forward that can also hand back every block's attention probabilities, the pretrained (eval)
 * configuration, and the per-family checkpoint filter that maps foreign key names onto timm's.
 */
import { truncNormal_, zeros_ } from '../nn/init.js';
import { GELU, Mlp } from '../nn/layers.js';
import { Linear } from '../nn/linear.js';
import { Module, type StateDict } from '../nn/module.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export type Interpolation = 'bicubic' | 'bilinear' | 'nearest';

/** timm's pretrained_cfg fields that the eval transform and the CLI need. */
export interface PretrainedConfig {
  /** (C, H, W) the model was trained at. */
  inputSize: [number, number, number];
  mean: [number, number, number];
  std: [number, number, number];
  cropPct: number;
  interpolation: Interpolation;
  numClasses: number;
  /** The timm weight tag these values belong to (e.g. 'augreg2_in21k_ft_in1k'). */
  tag?: string;
  /** Class names, index = class id (Hugging Face config.json id2label). */
  labels?: string[];
}

export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];
export const INCEPTION_MEAN: [number, number, number] = [0.5, 0.5, 0.5];
export const INCEPTION_STD: [number, number, number] = [0.5, 0.5, 0.5];

export interface ForwardOptions {
  /** Also return every attention block's post-softmax probabilities, in forward order. */
  captureAttention?: boolean;
}

export interface CapturedForward {
  logits: Tensor;
  /** ViT/DeiT: (B, heads, N, N) per block; Swin: (B*windows, heads, W*W, W*W) per block. */
  attentions: Tensor[];
}

export interface FeatureOptions {
  /** When given, attention blocks push their probabilities here (the attention tap). */
  attentions?: Tensor[];
}

/** The result of a checkpoint filter: timm-named tensors plus notes on what was changed or dropped. */
export interface FilteredCheckpoint {
  stateDict: StateDict;
  /** Where the names came from: 'timm', 'huggingface', 'torchvision'. */
  source: string;
  /** Human-readable notes (resampled position embeddings, dropped pooler...). */
  notes: string[];
}

export abstract class ImageClassifier extends Module {
  /** Family name used in messages ('vit', 'swin', ...). */
  abstract readonly family: string;
  abstract readonly numClasses: number;
  /** Width of the pooled features the head sees. */
  abstract readonly numFeatures: number;
  pretrainedCfg!: PretrainedConfig;

  abstract forwardFeatures(x: Tensor, options?: FeatureOptions): Tensor;
  abstract forwardHead(x: Tensor, options?: { preLogits?: boolean }): Tensor;

  forward(x: Tensor): Tensor;
  forward(x: Tensor, options: ForwardOptions & { captureAttention: true }): CapturedForward;
  forward(x: Tensor, options?: ForwardOptions): Tensor | CapturedForward;
  forward(x: Tensor, options: ForwardOptions = {}): Tensor | CapturedForward {
    if (!options.captureAttention) return this.forwardHead(this.forwardFeatures(x));
    const attentions: Tensor[] = [];
    const logits = this.forwardHead(this.forwardFeatures(x, { attentions }));
    return { logits, attentions };
  }

  /** Maps a checkpoint with another library's names (or an older layout) onto this model's names. */
  filterCheckpoint(sd: StateDict): FilteredCheckpoint {
    return { stateDict: sd, source: 'timm', notes: [] };
  }

  /** Throws the one-line error for an input that is not (B, inChans, H, W) float32. */
  protected checkImageBatch(x: Tensor, inChans: number): [number, number, number] {
    if (x.ndim !== 4 || x.shape[1] !== inChans || x.dtype !== 'float32') {
      throw new Error(
        `${this.constructor.name}: expected a float32 image batch (B, ${inChans}, H, W), got ${x.dtype} ${fmt(x.shape)}; add a batch dim with x.unsqueeze(0)`,
      );
    }
    return [x.shape[0], x.shape[2], x.shape[3]];
  }
}

/**
 * 'skip' leaves the layers' default initialization (timm's weight_init='skip'): for weights that a
 * checkpoint is about to replace, it saves the seconds a large model's init takes.
 */
export type WeightInit = '' | 'skip';

/** timm's trunc_normal_(std=.02) Linear weights with zero biases (init_weights_vit_timm and friends). */
export function initLinearsTimm(model: Module): void {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Linear) {
      truncNormal_(m.weight, 0.02);
      if (m.bias) zeros_(m.bias);
    }
  }
}

export type GeluKind = 'gelu' | 'gelu_tanh';

/**
 * timm's Mlp with a GELU (exact, or the tanh approximation) and hidden width int(dim * mlpRatio)
 * (the epsilon keeps ratios such as 3072 / 768 from flooring one short).
 */
export function geluMlp(dim: number, mlpRatio: number, act: GeluKind, drop = 0): Mlp {
  const approximate = act === 'gelu_tanh' ? 'tanh' : 'none';
  return new Mlp(dim, {
    hiddenFeatures: Math.floor(dim * mlpRatio + 1e-6),
    actLayer: () => new GELU({ approximate }),
    drop,
  });
}

export function pair(v: number | readonly number[]): [number, number] {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/** snake_case (timm / Hugging Face kwargs) to camelCase (glimpse configs). */
export function camelCase(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Builds a config from defaults and overrides whose keys may be snake_case (timm's kwargs) or
 * camelCase; an unknown key is an error naming the keys that exist.
 */
export function resolveConfig<C extends object>(
  what: string,
  defaults: C,
  overrides: Record<string, unknown> = {},
  ignored: readonly string[] = [],
): C {
  const out = { ...defaults } as Record<string, unknown>;
  for (const [raw, value] of Object.entries(overrides)) {
    if (value === undefined || ignored.includes(raw)) continue;
    const key = camelCase(raw);
    if (!(key in defaults)) {
      throw new Error(`${what}: unknown option '${raw}'; known options: ${Object.keys(defaults).join(', ')}`);
    }
    out[key] = Array.isArray(value) ? [...value] : value;
  }
  return out as C;
}
