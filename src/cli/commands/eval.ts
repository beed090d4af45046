/**
 * glimpse eval --weights FILE [--model ID --model-args JSON] [--dataset fashion-mnist|DIR]
 *   [--split test|train] [--ema] [--json]
 * Top-1 accuracy, mean cross-entropy and per-class accuracy. Weights written by glimpse train
 * rebuild their model from the file's metadata; other checkpoints need --model.
 */
import type { Command } from 'commander';
import { normalize } from '../../data/transforms.js';
import type { ImageClassifier } from '../../models/classifier.js';
import { getModelEntry } from '../../models/registry.js';
import {
  FASHION_MNIST_MEAN,
  loadModelWeights,
  loadRecipeData,
  loadTrainedModel,
} from '../../train/recipe.js';
import { evaluate } from '../../train/trainer.js';

interface EvalFlags {
  weights: string;
  model?: string;
  modelArgs?: string;
  dataset: string;
  split: string;
  imageSize?: string;
  batchSize: string;
  ema?: boolean;
  json?: boolean;
}

function positiveInt(flag: string, raw: string): number {
  const v = Number(raw);
  if (!(Number.isInteger(v) && v > 0))
    throw new Error(`eval: ${flag} must be a positive integer, got '${raw}'`);
  return v;
}

function buildModel(f: EvalFlags): ImageClassifier {
  if (!f.model) return loadTrainedModel(f.weights, { ema: f.ema });
  let args: Record<string, unknown> = {};
  if (f.modelArgs) {
    try {
      args = JSON.parse(f.modelArgs);
    } catch (e) {
      throw new Error(`eval: --model-args is not valid JSON (${(e as Error).message})`);
    }
  }
  getModelEntry(f.model);
  return loadModelWeights(f.model, args, f.weights);
}

export function register(program: Command): void {
  program
    .command('eval')
    .description(
      'Evaluate a classifier on Fashion-MNIST or an image folder: accuracy, loss, per-class accuracy',
    )
    .requiredOption(
      '-w, --weights <file>',
      'model.safetensors (glimpse train) or any zoo checkpoint with --model',
    )
    .option('-m, --model <id>', 'zoo model id, for weights not written by glimpse train')
    .option('--model-args <json>', 'architecture overrides in timm names (with --model)')
    .option(
      '-d, --dataset <name|dir>',
      "'fashion-mnist', a directory of its IDX files, or an image folder",
      'fashion-mnist',
    )
    .option('--split <split>', 'Fashion-MNIST split: test or train', 'test')
    .option(
      '--image-size <n>',
      'side length image-folder images are resized to (default: the model input size)',
    )
    .option('-b, --batch-size <n>', 'batch size', '256')
    .option('--ema', 'evaluate the EMA weights of a checkpoint.safetensors')
    .option('--json', 'print JSON')
    .action(async (f: EvalFlags) => {
      if (f.split !== 'test' && f.split !== 'train')
        throw new Error(`eval: --split must be test or train, got '${f.split}'`);
      const batchSize = positiveInt('--batch-size', f.batchSize);
      const model = buildModel(f);
      const imageSize = f.imageSize
        ? positiveInt('--image-size', f.imageSize)
        : model.pretrainedCfg?.inputSize[1];
      const data = await loadRecipeData({
        model: '',
        dataset: f.dataset,
        imageSize,
        epochs: 1,
        batchSize,
        lr: 1,
      });
      // An image folder without a val/test split is evaluated whole.
      const dataset = f.split === 'train' ? data.train : (data.eval ?? data.train);
      const [channels] = dataset.imageShape;
      const inChans = model.pretrainedCfg?.inputSize[0] ?? channels;
      if (inChans !== channels) {
        throw new Error(
          `eval: the model takes ${inChans}-channel images but the dataset has ${channels}; pick the matching dataset`,
        );
      }
      // A zoo checkpoint on an image folder expects its own pretraining statistics; glimpse-trained
      // weights used the recipe's, which loadRecipeData returns.
      const zooStats = f.model !== undefined && data.mean !== FASHION_MNIST_MEAN && model.pretrainedCfg;
      const mean = zooStats ? model.pretrainedCfg.mean : data.mean;
      const std = zooStats ? model.pretrainedCfg.std : data.std;
      const r = await evaluate(model, dataset, { batchSize, transform: normalize(mean, std) });
      const perClass = dataset.classes.map((name, c) => {
        const row = r.confusion[c];
        const total = row.reduce((a, b) => a + b, 0);
        return { class: name, accuracy: total ? row[c] / total : null, count: total };
      });
      if (f.json) {
        process.stdout.write(
          `${JSON.stringify({ accuracy: r.acc, loss: r.loss, count: r.count, perClass, confusion: r.confusion }, null, 2)}\n`,
        );
        return;
      }
      process.stdout.write(
        `top-1 ${(100 * r.acc).toFixed(2)}% (${Math.round(r.acc * r.count)}/${r.count})  loss ${r.loss.toFixed(4)}\n`,
      );
      for (const p of perClass) {
        const acc = p.accuracy === null ? '   -  ' : `${(100 * p.accuracy).toFixed(1).padStart(5)}%`;
        process.stdout.write(`  ${acc}  ${String(p.count).padStart(6)}  ${p.class}\n`);
      }
    });
}
