/**
 * glimpse train --model ID|--config FILE|--preset NAME --dataset fashion-mnist|DIR --out DIR
 *   [--epochs --batch-size --lr --weight-decay --warmup --label-smoothing --mixup --cutmix --ema
 *    --seed --teacher FILE --resume ...]
 * Settings come from a preset, then a --config JSON, then the flags; `--resume` alone continues the
 * run in --out with the settings its checkpoint recorded.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { readTrainingCheckpoint } from '../../train/checkpoint.js';
import { getPreset, TRAIN_PRESETS, type TrainRecipe } from '../../train/presets.js';
import { recipeFromCheckpointConfig, runRecipe } from '../../train/recipe.js';

interface TrainFlags {
  model?: string;
  modelArgs?: string;
  config?: string;
  preset?: string;
  dataset?: string;
  evalDataset?: string;
  imageSize?: string;
  trainSubset?: string;
  epochs?: string;
  batchSize?: string;
  lr?: string;
  minLr?: string;
  weightDecay?: string;
  warmup?: string;
  labelSmoothing?: string;
  mixup?: string;
  cutmix?: string;
  clipGrad?: string;
  ema?: string | boolean;
  augment?: string;
  seed?: string;
  teacher?: string;
  distillation?: string;
  distillationTau?: string;
  checkpointEvery?: string;
  resume?: boolean;
  out: string;
  progress: boolean;
}

function parseNumber(flag: string, raw: string, kind: 'int+' | 'int0' | 'num+' | 'num0'): number {
  const v = Number(raw);
  const ok =
    raw.trim() !== '' &&
    Number.isFinite(v) &&
    (kind === 'int+'
      ? Number.isInteger(v) && v > 0
      : kind === 'int0'
        ? Number.isInteger(v) && v >= 0
        : kind === 'num+'
          ? v > 0
          : v >= 0);
  if (!ok) {
    const want = {
      'int+': 'a positive integer',
      int0: 'a non-negative integer',
      'num+': 'a positive number',
      num0: 'a non-negative number',
    }[kind];
    throw new Error(`train: ${flag} must be ${want}, got '${raw}'`);
  }
  return v;
}

function readJson(path: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(
      `train: cannot read ${what} ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`train: ${what} ${path} is not valid JSON (${(e as Error).message})`);
  }
}

function parseModelArgs(raw: string): Record<string, unknown> {
  try {
    const v = JSON.parse(raw);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new Error(
    `train: --model-args must be a JSON object such as '{"patch_size":4,"depth":6}', got '${raw}'`,
  );
}

/** The flags the user typed, as recipe fields (absent flags leave the base recipe alone). */
function flagOverrides(f: TrainFlags): Partial<TrainRecipe> {
  const o: Partial<TrainRecipe> = {};
  if (f.model !== undefined) o.model = f.model;
  if (f.modelArgs !== undefined) o.modelArgs = parseModelArgs(f.modelArgs);
  if (f.dataset !== undefined) o.dataset = f.dataset;
  if (f.evalDataset !== undefined) o.evalDataset = f.evalDataset;
  if (f.imageSize !== undefined) o.imageSize = parseNumber('--image-size', f.imageSize, 'int+');
  if (f.trainSubset !== undefined) o.trainSubset = parseNumber('--train-subset', f.trainSubset, 'int+');
  if (f.epochs !== undefined) o.epochs = parseNumber('--epochs', f.epochs, 'int+');
  if (f.batchSize !== undefined) o.batchSize = parseNumber('--batch-size', f.batchSize, 'int+');
  if (f.lr !== undefined) o.lr = parseNumber('--lr', f.lr, 'num+');
  if (f.minLr !== undefined) o.minLr = parseNumber('--min-lr', f.minLr, 'num0');
  if (f.weightDecay !== undefined) o.weightDecay = parseNumber('--weight-decay', f.weightDecay, 'num0');
  if (f.warmup !== undefined) o.warmupEpochs = parseNumber('--warmup', f.warmup, 'num0');
  if (f.labelSmoothing !== undefined)
    o.labelSmoothing = parseNumber('--label-smoothing', f.labelSmoothing, 'num0');
  if (f.mixup !== undefined) o.mixup = parseNumber('--mixup', f.mixup, 'num0');
  if (f.cutmix !== undefined) o.cutmix = parseNumber('--cutmix', f.cutmix, 'num0');
  if (f.clipGrad !== undefined) o.clipGrad = parseNumber('--clip-grad', f.clipGrad, 'num+');
  if (f.ema !== undefined) o.ema = f.ema === true ? 0.9998 : parseNumber('--ema', String(f.ema), 'num+');
  if (f.augment !== undefined) {
    if (!['none', 'light', 'randaug'].includes(f.augment))
      throw new Error(`train: --augment must be none, light or randaug, got '${f.augment}'`);
    o.augment = f.augment as TrainRecipe['augment'];
  }
  if (f.seed !== undefined) o.seed = parseNumber('--seed', f.seed, 'int0');
  if (f.teacher !== undefined) o.teacher = f.teacher;
  if (f.distillation !== undefined) {
    if (!['hard', 'soft'].includes(f.distillation))
      throw new Error(`train: --distillation must be hard or soft, got '${f.distillation}'`);
    o.distillation = f.distillation as TrainRecipe['distillation'];
  }
  if (f.distillationTau !== undefined)
    o.distillationTau = parseNumber('--distillation-tau', f.distillationTau, 'num+');
  return o;
}

/** Preset, then config file, then flags; with --resume and nothing else, the checkpoint's own settings. */
export function resolveRecipe(f: TrainFlags): TrainRecipe {
  const overrides = flagOverrides(f);
  let base: Partial<TrainRecipe> = {};
  const ckptPath = join(f.out, 'checkpoint.safetensors');
  if (f.preset) base = getPreset(f.preset);
  if (f.config) base = { ...base, ...(readJson(f.config, '--config') as Partial<TrainRecipe>) };
  if (!f.preset && !f.config && overrides.model === undefined && f.resume && existsSync(ckptPath)) {
    base = recipeFromCheckpointConfig(readTrainingCheckpoint(ckptPath).config);
  }
  const recipe = { dataset: 'fashion-mnist', epochs: 10, batchSize: 128, lr: 1e-3, ...base, ...overrides };
  if (!recipe.model) {
    throw new Error(
      `train: name a model with --model ID, --preset NAME (${Object.keys(TRAIN_PRESETS).join(', ')}) or --config FILE`,
    );
  }
  return recipe as TrainRecipe;
}

export function register(program: Command): void {
  program
    .command('train')
    .description('Train a zoo model on Fashion-MNIST or an image folder, with resumable checkpoints')
    .option('-m, --model <id>', 'zoo model id, e.g. vit_tiny_patch16_224')
    .option(
      '--model-args <json>',
      'architecture overrides in timm names, e.g. \'{"patch_size":4,"depth":6}\'',
    )
    .option('-c, --config <file>', 'a JSON recipe (the fields of a preset)')
    .option('-p, --preset <name>', `a named recipe: ${Object.keys(TRAIN_PRESETS).join(', ')}`)
    .option(
      '-d, --dataset <name|dir>',
      "'fashion-mnist', a directory of its IDX files, or an image folder DIR/<class>/<image>",
    )
    .option('--eval-dataset <dir>', 'image folder to evaluate on after each epoch')
    .option('--image-size <n>', 'side length image-folder images are resized to (default 224)')
    .option('--train-subset <n>', 'train on a class-balanced subset of n images')
    .option('-e, --epochs <n>', 'epochs (default 10)')
    .option('-b, --batch-size <n>', 'batch size (default 128)')
    .option('--lr <x>', 'peak learning rate of AdamW (default 1e-3)')
    .option('--min-lr <x>', 'learning rate at the end of the cosine (default 1e-6)')
    .option('--weight-decay <x>', 'AdamW weight decay; norms, biases and tokens excluded (default 0.05)')
    .option('--warmup <epochs>', 'linear warmup length in epochs (default 0)')
    .option('--label-smoothing <x>', 'label smoothing (default 0)')
    .option('--mixup <alpha>', 'Mixup Beta alpha (0: off)')
    .option('--cutmix <alpha>', 'CutMix Beta alpha (0: off)')
    .option('--clip-grad <norm>', 'clip the global gradient norm')
    .option('--ema [decay]', 'keep an EMA of the weights (default decay 0.9998)')
    .option(
      '--augment <kind>',
      'none, light (crop + flip, default) or randaug (+ RandAugment, random erasing)',
    )
    .option('--seed <n>', 'seed of the initialization, data order and augmentation (default 0)')
    .option(
      '--teacher <file>',
      'model.safetensors of a trained CNN: DeiT distillation (student needs a distillation token)',
    )
    .option(
      '--distillation <kind>',
      "with --teacher: 'hard' (the teacher's argmax, default) or 'soft' (its softened distribution)",
    )
    .option('--distillation-tau <t>', 'temperature of soft distillation (default 3)')
    .option('--checkpoint-every <steps>', 'also checkpoint every n steps (default: at epoch ends)')
    .option('--resume', 'continue the run in --out from its checkpoint')
    .option('--no-progress', 'no progress bar')
    .requiredOption('-o, --out <dir>', 'output directory: checkpoint, weights, log.jsonl, curves.svg')
    .action(async (flags: TrainFlags) => {
      const recipe = resolveRecipe(flags);
      const checkpointEvery = flags.checkpointEvery
        ? parseNumber('--checkpoint-every', flags.checkpointEvery, 'int0')
        : 0;
      const say = (line: string) => process.stdout.write(`${line}\n`);
      const result = await runRecipe(recipe, {
        outDir: flags.out,
        resume: flags.resume ?? false,
        checkpointEvery,
        progress: flags.progress && process.stderr.isTTY === true,
        print: say,
        log: (m) => process.stderr.write(`${m}\n`),
      });
      const last = result.history.at(-1);
      if (last?.eval_acc !== undefined) {
        const best = result.history.reduce((a, b) => ((b.eval_acc ?? 0) > (a.eval_acc ?? 0) ? b : a));
        say(
          `final eval accuracy ${(100 * last.eval_acc).toFixed(2)}% (best ${(100 * best.eval_acc!).toFixed(2)}% at epoch ${best.epoch + 1})`,
        );
      }
      say(
        `weights: ${result.files.join(', ') || join(flags.out, 'model.safetensors')}; log: ${join(flags.out, 'log.jsonl')}; plot: ${join(flags.out, 'curves.svg')}`,
      );
    });
}
