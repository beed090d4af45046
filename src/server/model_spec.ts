/**
 * Which models the explorer serves, as plain data the main thread hands to every worker: the embedded
 * Fashion-MNIST ViT by default, a user's checkpoint when `serve --model/--weights/--config` name one.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import {
  EMBEDDED_MODELS,
  EMBEDDED_PRESETS,
  type EmbeddedModelName,
  embeddedModelDir,
} from '../train/embedded.js';
import { getPreset } from '../train/presets.js';

export type ModelSource =
  /** A glimpse train model.safetensors: the recipe in its metadata rebuilds the model. */
  | { kind: 'trained'; weights: string }
  /** A zoo id with timm / Hugging Face / torchvision weights, or random weights when none are given. */
  | { kind: 'zoo'; model: string; weights?: string; kwargs?: Record<string, unknown>; seed?: number }
  /** A Hugging Face config.json and its weights. */
  | { kind: 'hf'; config: string; weights: string };

export interface ModelSpec {
  /** The name the API and the page use. */
  id: string;
  title: string;
  source: ModelSource;
  /** Inputs are 28 x 28 gray Fashion-MNIST-normalized images with the Fashion-MNIST class names. */
  fashionMnist?: boolean;
  /** A glimpse train log (JSON Lines) to draw the learning curve from. */
  log?: string;
  /** Shown next to the model's name (e.g. that its weights are random). */
  warning?: string;
}

const EMBEDDED_TITLES: Record<EmbeddedModelName, string> = {
  vit_fashion: 'Fashion-MNIST ViT (embedded)',
  deit_fashion_distilled: 'Fashion-MNIST DeiT, distilled (embedded)',
};

/**
 * An embedded model (assets/<name>: a glimpse train run's model.safetensors and log.jsonl). When the
 * default ViT's weights are not in the checkout, its architecture is served with seeded random
 * weights, labelled as such, so the page still works.
 */
export function embeddedModelSpec(name: EmbeddedModelName = 'vit_fashion'): ModelSpec {
  const dir = embeddedModelDir(name);
  const weights = join(dir, 'model.safetensors');
  const log = join(dir, 'log.jsonl');
  if (existsSync(weights)) {
    return {
      id: name,
      title: EMBEDDED_TITLES[name],
      source: { kind: 'trained', weights },
      fashionMnist: true,
      log: existsSync(log) ? log : undefined,
    };
  }
  const preset = getPreset(EMBEDDED_PRESETS[name]);
  return {
    id: name,
    title: `${EMBEDDED_TITLES[name].replace(' (embedded)', '')} (untrained)`,
    source: {
      kind: 'zoo',
      model: preset.model,
      kwargs: { ...preset.modelArgs, num_classes: 10, in_chans: 1, img_size: 28 },
      seed: 0,
    },
    fashionMnist: true,
    warning:
      'random weights: the trained checkpoint is not in this checkout, so predictions and maps are meaningless',
  };
}

/** The default ViT (trained, or its untrained twin) and every other embedded model this checkout has. */
export function embeddedModelSpecs(): ModelSpec[] {
  const others = EMBEDDED_MODELS.filter(
    (name) => name !== 'vit_fashion' && existsSync(join(embeddedModelDir(name), 'model.safetensors')),
  );
  return [embeddedModelSpec('vit_fashion'), ...others.map((name) => embeddedModelSpec(name))];
}

export interface UserModelOptions {
  model?: string;
  weights?: string;
  config?: string;
  kwargs?: string;
}

/** The model `serve --model ID --weights FILE` (or `--config config.json --weights FILE`, or a glimpse train `--weights`) names. */
export function userModelSpec(o: UserModelOptions): ModelSpec {
  if (!o.weights) {
    throw new Error(
      'serve: --weights FILE is required with --model/--config (e.g. --model vit_base_patch16_224 --weights model.safetensors)',
    );
  }
  const weights = resolve(o.weights);
  if (!existsSync(weights)) throw new Error(`serve: --weights ${o.weights} does not exist`);
  if (o.config) {
    const config = resolve(o.config);
    if (!existsSync(config)) throw new Error(`serve: --config ${o.config} does not exist`);
    const id = o.model ?? basename(dirname(config));
    return { id, title: `${id} (Hugging Face)`, source: { kind: 'hf', config, weights } };
  }
  if (!o.model) {
    // A glimpse train run's weights know their architecture; its log sits beside them.
    const log = join(dirname(weights), 'log.jsonl');
    const id = basename(dirname(weights)) || 'trained';
    return {
      id,
      title: `${id} (glimpse train)`,
      source: { kind: 'trained', weights },
      log: existsSync(log) ? log : undefined,
    };
  }
  let kwargs: Record<string, unknown> | undefined;
  if (o.kwargs) {
    try {
      kwargs = JSON.parse(o.kwargs) as Record<string, unknown>;
    } catch (e) {
      throw new Error(`serve: --kwargs is not JSON (${(e as Error).message}); e.g. '{"num_classes": 10}'`);
    }
  }
  return { id: o.model, title: o.model, source: { kind: 'zoo', model: o.model, weights, kwargs } };
}
