/**
 * The models trained here that ship in the repository (assets/<name>/: model.safetensors with the
 * recipe in its metadata, the run's log.jsonl and curves.svg): what `glimpse classify`, `glimpse
 * explain` and the explorer use when no weights are given. They take 28 x 28 gray images normalized
 * by Fashion-MNIST's statistics and predict its ten classes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FASHION_MNIST_CLASSES } from '../data/fashion_mnist.js';
import type { ImageClassifier, PretrainedConfig } from '../models/classifier.js';
import { FASHION_MNIST_MEAN, FASHION_MNIST_STD, loadTrainedModel } from './recipe.js';

/** The shipped models: the small conv-stem ViT (the default) and the same ViT distilled from a ResNet teacher. */
export const EMBEDDED_MODELS = ['vit_fashion', 'deit_fashion_distilled'] as const;
export type EmbeddedModelName = (typeof EMBEDDED_MODELS)[number];

/** The training preset (src/train/presets.ts) each embedded model's weights came from. */
export const EMBEDDED_PRESETS: Record<EmbeddedModelName, string> = {
  vit_fashion: 'vit_fashion_convstem',
  deit_fashion_distilled: 'deit_fashion_convstem_distilled',
};

const ASSETS = fileURLToPath(new URL('../../assets/', import.meta.url));

/** The run folder of an embedded model: model.safetensors, log.jsonl, curves.svg. */
export function embeddedModelDir(name: EmbeddedModelName = 'vit_fashion'): string {
  if (!EMBEDDED_MODELS.includes(name)) {
    throw new Error(`unknown embedded model '${name}'; embedded models: ${EMBEDDED_MODELS.join(', ')}`);
  }
  return join(ASSETS, name);
}

/** The weights file of an embedded model (whether or not this checkout has it). */
export function embeddedModelPath(name: EmbeddedModelName = 'vit_fashion'): string {
  return join(embeddedModelDir(name), 'model.safetensors');
}

/**
 * The preprocessing a Fashion-MNIST model trained by glimpse expects, on top of `cfg` (which supplies
 * the input size): the training set's mean and std (the same for the three channels an RGB image is
 * read as, so luma taken after normalizing equals normalized luma), no crop margin, its class names.
 */
export function fashionMnistPretrainedCfg(cfg: PretrainedConfig): PretrainedConfig {
  const [mean] = FASHION_MNIST_MEAN;
  const [std] = FASHION_MNIST_STD;
  return {
    ...cfg,
    mean: [mean, mean, mean],
    std: [std, std, std],
    cropPct: 1,
    interpolation: 'bilinear',
    labels: [...FASHION_MNIST_CLASSES],
  };
}

/** An embedded model, in eval mode, with its Fashion-MNIST preprocessing in `pretrainedCfg`. */
export function loadEmbeddedModel(name: EmbeddedModelName = 'vit_fashion'): ImageClassifier {
  const path = embeddedModelPath(name);
  if (!existsSync(path)) {
    throw new Error(
      `the embedded model ${name} is missing (${path}); restore assets/ from the repository or pass --weights`,
    );
  }
  const model = loadTrainedModel(path);
  model.pretrainedCfg = fashionMnistPretrainedCfg(model.pretrainedCfg);
  model.eval();
  return model;
}
