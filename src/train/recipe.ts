/**
 * From a recipe (preset, --config JSON or CLI flags) to a training run: the datasets, the
 * transforms, the zoo model sized to the data, the teacher, and the call to `train`. Trained weights
 * carry the recipe in their metadata, so `loadTrainedModel` rebuilds the model from the file alone
 * (the teacher of a distillation run, `glimpse eval --weights`).
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ImageDataset } from '../data/dataset.js';
import { stratifiedSubset } from '../data/dataset.js';
import { loadFashionMnist, locateFashionMnist, readFashionMnistDir } from '../data/fashion_mnist.js';
import { ImageFolder } from '../data/image_folder.js';
import {
  compose,
  normalize,
  randAugment,
  randomCrop,
  randomErasing,
  randomHorizontalFlip,
  type Transform,
} from '../data/transforms.js';
import { readSafetensors } from '../io/safetensors.js';
import { IMAGENET_MEAN, IMAGENET_STD, type ImageClassifier } from '../models/classifier.js';
import { loadCheckpointSync } from '../models/checkpoint.js';
import { createModel, getModelEntry } from '../models/registry.js';
import { manualSeed } from '../ops/creation.js';
import { readTrainingCheckpoint, TRAIN_CHECKPOINT_FORMAT } from './checkpoint.js';
import type { TrainRecipe } from './presets.js';
import { type TrainOptions, type TrainResult, train } from './trainer.js';

/** Fashion-MNIST's pixel mean and standard deviation over the training set. */
export const FASHION_MNIST_MEAN = [0.286];
export const FASHION_MNIST_STD = [0.353];

export interface RecipeData {
  train: ImageDataset;
  eval: ImageDataset | null;
  mean: number[];
  std: number[];
}

function isFashionDir(dir: string): boolean {
  try {
    return locateFashionMnist('train', { root: dir }) !== null;
  } catch {
    return false;
  }
}

/** The training and evaluation sets a recipe names. */
export async function loadRecipeData(recipe: TrainRecipe, log?: (m: string) => void): Promise<RecipeData> {
  const { dataset } = recipe;
  let data: RecipeData;
  if (dataset === 'fashion-mnist' || isFashionDir(dataset)) {
    const root = dataset === 'fashion-mnist' ? undefined : dataset;
    const train = root ? readFashionMnistDir(root, 'train') : await loadFashionMnist('train', { log });
    const test = root ? readFashionMnistDir(root, 'test') : await loadFashionMnist('test', { log });
    data = { train, eval: test, mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD };
  } else {
    if (!existsSync(dataset) || !statSync(dataset).isDirectory()) {
      throw new Error(
        `dataset '${dataset}' is neither 'fashion-mnist' nor a directory; pass fashion-mnist or an image folder (DIR/<class>/<image>)`,
      );
    }
    const size = recipe.imageSize ?? 224;
    // DIR/train + DIR/val (or test) is the usual split layout; otherwise DIR is the training set.
    const split = ['val', 'test'].map((s) => join(dataset, s)).find((d) => existsSync(d));
    const trainDir = existsSync(join(dataset, 'train')) && split ? join(dataset, 'train') : dataset;
    const evalDir = recipe.evalDataset ?? (trainDir !== dataset ? split : undefined);
    const train = new ImageFolder(trainDir, { size, channels: 3 });
    const evalSet = evalDir ? new ImageFolder(evalDir, { size, channels: 3 }) : null;
    if (evalSet && evalSet.classes.join('\n') !== train.classes.join('\n')) {
      throw new Error(
        `image folders ${trainDir} and ${evalDir} have different classes (${train.classes.join(', ')} vs ${evalSet.classes.join(', ')})`,
      );
    }
    data = { train, eval: evalSet, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] };
  }
  if (recipe.trainSubset !== undefined)
    data.train = stratifiedSubset(data.train, recipe.trainSubset, recipe.seed ?? 0);
  return data;
}

/** Training and evaluation transforms for `recipe.augment` ('light' by default). */
export function recipeTransforms(
  recipe: TrainRecipe,
  data: RecipeData,
): { train: Transform; eval: Transform } {
  const [, h, w] = data.train.imageShape;
  const norm = normalize(data.mean, data.std);
  const augment = recipe.augment ?? 'light';
  const geometric = [
    randomCrop([h, w], { padding: Math.max(1, Math.round(h / 14)) }),
    randomHorizontalFlip(),
  ];
  const trainSteps: Transform[] =
    augment === 'none'
      ? [norm]
      : augment === 'light'
        ? [...geometric, norm]
        : [...geometric, randAugment({ numOps: 2, magnitude: 9 }), norm, randomErasing({ p: 0.25 })];
  if (!['none', 'light', 'randaug'].includes(augment)) {
    throw new Error(`augment must be none, light or randaug, got '${augment}'`);
  }
  return { train: compose(trainSteps), eval: norm };
}

/** Families whose config takes img_size (the others work at any input size). */
const SIZED_FAMILIES = new Set(['vit', 'deit', 'swin', 'mixer']);

/** The architecture kwargs a recipe resolves to for its data: classes, channels and image size follow the data. */
export function recipeModelArgs(recipe: TrainRecipe, data: RecipeData): Record<string, unknown> {
  const [channels, h, w] = data.train.imageShape;
  const sized = SIZED_FAMILIES.has(getModelEntry(recipe.model).family);
  return {
    num_classes: data.train.classes.length,
    in_chans: channels,
    ...(sized ? { img_size: h === w ? h : [h, w] } : {}),
    ...recipe.modelArgs,
  };
}

/**
 * A model trained by glimpse train, rebuilt from its weights file alone: model.safetensors /
 * model_ema.safetensors (recipe in the 'glimpse.train' metadata) or a checkpoint.safetensors
 * (`ema` picks its averaged weights).
 */
export function loadTrainedModel(path: string, options: { ema?: boolean } = {}): ImageClassifier {
  if (!existsSync(path))
    throw new Error(`${path} does not exist; pass the model.safetensors a glimpse train run wrote`);
  const file = readSafetensors(path);
  if (file.metadata.format === TRAIN_CHECKPOINT_FORMAT) {
    const ckpt = readTrainingCheckpoint(path);
    const model = createModel(String(ckpt.config.model), ckpt.config.modelArgs as Record<string, unknown>);
    const weights = options.ema ? ckpt.ema : ckpt.model;
    if (!weights) throw new Error(`${path} holds no EMA weights (the run kept no EMA); drop --ema`);
    model.loadStateDict(weights);
    return model;
  }
  const recipe = file.metadata['glimpse.train'];
  if (!recipe) {
    throw new Error(
      `${path} carries no glimpse training metadata; name the architecture with --model ID (and --model-args)`,
    );
  }
  const config = JSON.parse(recipe) as { model: string; modelArgs: Record<string, unknown> };
  const model = createModel(config.model, config.modelArgs);
  model.loadStateDict(file.tensors);
  return model;
}

/** A zoo model with weights from any checkpoint the zoo reads (timm / Hugging Face / torchvision names). */
export function loadModelWeights(
  id: string,
  modelArgs: Record<string, unknown>,
  path: string,
): ImageClassifier {
  const model = createModel(id, modelArgs);
  loadCheckpointSync(model, path);
  return model;
}

export interface RunRecipeOptions
  extends Pick<
    TrainOptions,
    'outDir' | 'resume' | 'progress' | 'print' | 'checkpointEvery' | 'onEpoch' | 'prefetch' | 'evalEvery'
  > {
  /** Download messages and notes. */
  log?: (message: string) => void;
}

/** Loads the data, builds the model (and teacher) and trains. */
export async function runRecipe(
  recipe: TrainRecipe,
  options: RunRecipeOptions = {},
): Promise<TrainResult & { model: ImageClassifier }> {
  const { log, ...loop } = options;
  const data = await loadRecipeData(recipe, log);
  const modelArgs = recipeModelArgs(recipe, data);
  const seed = recipe.seed ?? 0;
  manualSeed(seed);
  const model = createModel(recipe.model, modelArgs);
  const teacher = recipe.teacher ? loadTrainedModel(recipe.teacher) : null;
  if (teacher && teacher.numClasses !== model.numClasses) {
    throw new Error(
      `the teacher ${recipe.teacher} predicts ${teacher.numClasses} classes, the student ${model.numClasses}`,
    );
  }
  const transforms = recipeTransforms(recipe, data);
  const mixupAlpha = recipe.mixup ?? 0;
  const cutmixAlpha = recipe.cutmix ?? 0;
  const result = await train({
    model,
    train: data.train,
    eval: data.eval ?? undefined,
    epochs: recipe.epochs,
    batchSize: recipe.batchSize,
    lr: recipe.lr,
    minLr: recipe.minLr,
    warmupEpochs: recipe.warmupEpochs,
    weightDecay: recipe.weightDecay,
    labelSmoothing: recipe.labelSmoothing,
    clipGrad: recipe.clipGrad ?? null,
    mixup: mixupAlpha > 0 || cutmixAlpha > 0 ? { mixupAlpha, cutmixAlpha } : null,
    ema: recipe.ema ? { decay: recipe.ema } : null,
    teacher,
    distillation: recipe.distillation,
    distillationTau: recipe.distillationTau,
    trainTransform: transforms.train,
    evalTransform: transforms.eval,
    seed,
    meta: {
      model: recipe.model,
      modelArgs,
      dataset: recipe.dataset,
      evalDataset: recipe.evalDataset ?? null,
      imageSize: recipe.imageSize ?? null,
      trainSubset: recipe.trainSubset ?? null,
      augment: recipe.augment ?? 'light',
      teacher: recipe.teacher ?? null,
    },
    ...loop,
  });
  return { ...result, model };
}

/**
 * Trains `recipe` into `outDir`, or continues it there when a checkpoint exists (a finished run
 * just returns its history): how the long scripts survive interruptions by being run again.
 */
export function runOrResume(
  recipe: TrainRecipe,
  outDir: string,
  options: Omit<RunRecipeOptions, 'outDir' | 'resume'> = {},
): Promise<TrainResult & { model: ImageClassifier }> {
  return runRecipe(recipe, {
    ...options,
    outDir,
    resume: existsSync(join(outDir, 'checkpoint.safetensors')),
  });
}

/** The recipe a run was started with, from its checkpoint's settings (what `glimpse train --resume` continues). */
export function recipeFromCheckpointConfig(config: Record<string, unknown>): TrainRecipe {
  const mixup = config.mixup as { mixupAlpha?: number; cutmixAlpha?: number } | null;
  const ema = config.ema as { decay?: number } | null;
  const optional = <T>(v: unknown) => (v === null || v === undefined ? undefined : (v as T));
  return {
    model: String(config.model),
    modelArgs: config.modelArgs as Record<string, unknown>,
    dataset: String(config.dataset),
    evalDataset: optional<string>(config.evalDataset),
    imageSize: optional<number>(config.imageSize),
    trainSubset: optional<number>(config.trainSubset),
    augment: config.augment as TrainRecipe['augment'],
    teacher: optional<string>(config.teacher),
    distillation: optional<'hard' | 'soft'>(config.distillation),
    distillationTau: optional<number>(config.distillationTau),
    epochs: config.epochs as number,
    batchSize: config.batchSize as number,
    lr: config.lr as number,
    minLr: config.minLr as number,
    warmupEpochs: config.warmupEpochs as number,
    weightDecay: config.weightDecay as number,
    labelSmoothing: config.labelSmoothing as number,
    clipGrad: config.clipGrad as number | null,
    mixup: mixup?.mixupAlpha ?? 0,
    cutmix: mixup?.cutmixAlpha ?? 0,
    ema: ema?.decay ?? null,
    seed: config.seed as number,
  };
}
