/**
 * The worker's side of a ModelSpec: the model built and loaded once, its attention layout, how to
 * turn an image into its input, and what the page is told about it.
 */
import { EXPLAIN_METHODS, type ExplainMethod } from '../explain/explain.js';
import { type AttentionLayout, attentionLayout } from '../explain/layout.js';
import { readSafetensors } from '../io/safetensors.js';
import type { ImageClassifier, PretrainedConfig } from '../models/classifier.js';
import { loadCheckpoint, loadHfModel } from '../models/checkpoint.js';
import { evalTransform } from '../models/preprocess.js';
import { createModel } from '../models/registry.js';
import { manualSeed, zeros } from '../ops/creation.js';
import { noGrad } from '../tensor/autograd.js';
import { Tensor } from '../tensor/tensor.js';
import { fashionMnistPretrainedCfg } from '../train/embedded.js';
import { loadTrainedModel } from '../train/recipe.js';
import type { ModelSpec } from './model_spec.js';
import type { ModelDescription } from './protocol.js';

export interface LoadedModel {
  spec: ModelSpec;
  model: ImageClassifier;
  /** null for models without attention maps */
  layout: AttentionLayout | null;
  description: ModelDescription;
}

/** The dataset a glimpse train weights file was trained on, from its metadata. */
function trainedDataset(weights: string): string | null {
  const recipe = readSafetensors(weights).metadata['glimpse.train'];
  if (!recipe) return null;
  return String((JSON.parse(recipe) as { dataset?: unknown }).dataset ?? '');
}

async function build(
  spec: ModelSpec,
): Promise<{ model: ImageClassifier; notes: string[]; fashion: boolean }> {
  const { source } = spec;
  if (source.kind === 'trained') {
    const model = loadTrainedModel(source.weights);
    return {
      model,
      notes: [],
      fashion: spec.fashionMnist ?? trainedDataset(source.weights) === 'fashion-mnist',
    };
  }
  if (source.kind === 'hf') {
    const { model, report } = loadHfModel(source.weights, source.config);
    return { model, notes: report.notes, fashion: false };
  }
  if (source.seed !== undefined) manualSeed(source.seed);
  const kwargs = { ...source.kwargs, ...(source.weights ? { weight_init: 'skip' } : {}) };
  const model = createModel(source.model, kwargs);
  const notes = source.weights ? (await loadCheckpoint(model, source.weights)).notes : [];
  return { model, notes, fashion: spec.fashionMnist ?? false };
}

/** Builds, loads and describes a model; one forward on a blank image learns its attention shapes. */
export async function loadModel(spec: ModelSpec): Promise<LoadedModel> {
  const { model, notes, fashion } = await build(spec);
  model.eval();
  if (fashion) model.pretrainedCfg = fashionMnistPretrainedCfg(model.pretrainedCfg);
  const cfg = model.pretrainedCfg;
  const [chans, height, width] = cfg.inputSize;
  let layout: AttentionLayout | null = null;
  try {
    layout = attentionLayout(model, height, width);
  } catch {
    // CNNs and MLP-Mixers have no attention to show; classification still works.
  }
  const { attentions } = noGrad(() =>
    model.forward(zeros([1, chans, height, width]), { captureAttention: true }),
  );
  let methods: ExplainMethod[] = [];
  if (layout) methods = layout.kind === 'swin' ? ['rollout'] : [...EXPLAIN_METHODS];
  const description: ModelDescription = {
    id: spec.id,
    title: spec.title,
    family: model.family,
    parameters: model.numParameters(),
    numClasses: model.numClasses,
    labels: cfg.labels ? [...cfg.labels] : null,
    inputSize: [chans, height, width],
    attention: layout
      ? {
          kind: layout.kind,
          layers: attentions.length,
          heads: attentions.map((a) => a.shape[1]),
          gridSize: layout.gridSize,
          patchSize: layout.patchSize,
          tokenNames: layout.kind === 'tokens' ? layout.tokenNames : ['mean'],
        }
      : null,
    methods,
    warning: spec.warning ?? null,
    notes,
    hasLog: spec.log !== undefined,
  };
  return { spec, model, layout, description };
}

/**
 * The model's view of a (3, H, W) image in [0, 1]: `picture` is what it sees (eval transform: resize,
 * center crop; gray for one-channel models) and `input` that picture normalized, (1, C, h, w).
 */
export function modelInput(image: Tensor, cfg: PretrainedConfig): { input: Tensor; picture: Tensor } {
  const [chans, h, w] = cfg.inputSize;
  return noGrad(() => {
    let picture = evalTransform(image, { ...cfg, inputSize: [3, h, w], mean: [0, 0, 0], std: [1, 1, 1] });
    if (chans === 1) {
      // ITU-R 601 luma, as PIL's convert('L') and Fashion-MNIST's gray images.
      const luma = new Tensor(Float32Array.from([0.299, 0.587, 0.114]), [3, 1, 1]);
      picture = picture.mul(luma).sum(0, true).expand([3, h, w]).clone();
    }
    const channels = picture.reshape([1, 3, h, w]).slice(1, 0, chans);
    const mean = new Tensor(Float32Array.from(cfg.mean.slice(0, chans)), [1, chans, 1, 1]);
    const std = new Tensor(Float32Array.from(cfg.std.slice(0, chans)), [1, chans, 1, 1]);
    return { input: channels.sub(mean).div(std), picture };
  });
}
