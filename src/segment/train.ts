/**
 * Training and evaluation of the segmentation models on the two synthetic sets, with presets sized
 * for a small CPU: TransUNet (R50-ViT hybrid, narrow) on 64x64 Fashion-MNIST canvases and UNETR
 * (patch 8) on 32^3 shape volumes. AdamW with linear warmup and cosine decay, Dice + cross-entropy,
 * a JSONL log, a checkpoint after every epoch, the test split's Dice/IoU/HD95 at the end.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { getBackend } from '../backend/backend.js';
import {
  type SegmentationDataset,
  loadFashionSegmentation,
  loadShapes3d,
  segmentationBatch,
} from '../data/segmentation.js';
import { deriveSeed } from '../data/loader.js';
import { Generator, manualSeed } from '../ops/creation.js';
import { div, sub } from '../ops/elementwise.js';
import { AdamW } from '../optim/adam.js';
import { clipGradNorm_ } from '../optim/optimizer.js';
import { paramGroupsWeightDecay } from '../optim/param_groups.js';
import { cosineSchedule, setLr } from '../optim/schedule.js';
import { noGrad } from '../tensor/autograd.js';
import type { Tensor } from '../tensor/tensor.js';
import { TransUNet, TransUnetTokenProbe } from '../models/transunet.js';
import { type DiceCeLossOptions, diceCeLoss } from './losses.js';
import { SegmentationMetrics, type SegmentationSummary } from './metrics.js';
import {
  createSegmentationModel,
  loadSegmentationCheckpoint,
  predictLabels,
  type SegmentationModel,
  type SegmentationModelKind,
  saveSegmentationCheckpoint,
} from './model.js';

export interface SegmentPreset {
  description: string;
  model: SegmentationModelKind;
  modelConfig: Record<string, unknown>;
  dataset: 'fashion2d' | 'shapes3d';
  /** Options of the dataset (canvas, items, scale / size, objects, noise). */
  dataOptions: Record<string, unknown>;
  trainSize: number;
  testSize: number;
  epochs: number;
  batchSize: number;
  lr: number;
  minLr: number;
  weightDecay: number;
  warmupSteps: number;
  clipGrad: number;
  /** Dice + cross-entropy options (batch Dice: one Dice per class over the batch, so the classes a sample lacks do not sit at 1). */
  loss: DiceCeLossOptions;
  /** Input normalization (x - mean) / std. */
  mean: number;
  std: number;
}

export const SEGMENT_PRESETS: Record<string, SegmentPreset> = {
  fashion2d: {
    description:
      'TransUNet (R50-ViT hybrid, width 32, ViT 128x4) on 64x64 Fashion-MNIST canvases, 11 classes',
    model: 'transunet',
    modelConfig: {
      imgSize: 64,
      inChans: 1,
      numClasses: 11,
      encoder: 'hybrid',
      resnetLayers: [1, 1, 1],
      resnetWidth: 32,
      gnGroups: 8,
      hiddenSize: 128,
      numLayers: 4,
      numHeads: 4,
      mlpDim: 512,
      dropRate: 0,
      decoderChannels: [32, 16, 8, 8],
      headChannels: 64,
      nSkip: 3,
    },
    dataset: 'fashion2d',
    dataOptions: { canvas: 64, items: [2, 4], scale: [0.8, 1.05] },
    trainSize: 32000,
    testSize: 1000,
    epochs: 1,
    batchSize: 32,
    lr: 2e-3,
    minLr: 1e-5,
    weightDecay: 1e-4,
    warmupSteps: 50,
    clipGrad: 1,
    loss: { batch: true },
    mean: 0.15,
    std: 0.3,
  },
  shapes3d: {
    description: 'UNETR (patch 8, ViT 96x4, feature size 6) on 32^3 volumes of spheres, cubes and tori',
    model: 'unetr',
    modelConfig: {
      inChannels: 1,
      outChannels: 4,
      imgSize: 32,
      patchSize: 8,
      featureSize: 6,
      hiddenSize: 96,
      mlpDim: 384,
      numHeads: 4,
      numLayers: 4,
      skipLayers: [1, 2],
    },
    dataset: 'shapes3d',
    dataOptions: { size: 32, objects: [2, 3], noise: 0.08 },
    trainSize: 2400,
    testSize: 100,
    epochs: 1,
    batchSize: 4,
    lr: 2e-3,
    minLr: 1e-5,
    weightDecay: 1e-4,
    warmupSteps: 20,
    clipGrad: 1,
    loss: { batch: true },
    mean: 0.2,
    std: 0.3,
  },
};

export function getSegmentPreset(name: string): SegmentPreset {
  const p = SEGMENT_PRESETS[name];
  if (!p)
    throw new Error(`segment: unknown preset '${name}'; presets: ${Object.keys(SEGMENT_PRESETS).join(', ')}`);
  return p;
}

/** The preset's train or test split. */
export async function loadPresetData(
  preset: SegmentPreset,
  split: 'train' | 'test',
  options: { length?: number; seed?: number } = {},
): Promise<SegmentationDataset> {
  const length = options.length ?? (split === 'train' ? preset.trainSize : preset.testSize);
  const seed = options.seed ?? 0;
  if (preset.dataset === 'fashion2d')
    return loadFashionSegmentation(split, { ...preset.dataOptions, length, seed });
  return loadShapes3d(split, { ...preset.dataOptions, length, seed });
}

/** A loaded checkpoint's config minus the loader's weightInit 'skip', which must not be saved on. */
function withoutWeightInit(config: Record<string, unknown>): Record<string, unknown> {
  const { weightInit: _, ...rest } = config;
  return rest;
}

function normalize(x: Tensor, mean: number, std: number): Tensor {
  return noGrad(() => div(sub(x, mean), std));
}

/** Dice/IoU (and HD95 when asked) of `model` over `dataset`, batch by batch. */
export function evaluateSegmentation(
  model: SegmentationModel | TransUnetTokenProbe,
  dataset: SegmentationDataset,
  options: { batchSize?: number; mean: number; std: number; hd95?: boolean },
): SegmentationSummary {
  const metrics = new SegmentationMetrics(dataset.classes, { hd95: options.hd95 });
  const spatial = dataset.shape.slice(1);
  const voxels = spatial.reduce((a, b) => a * b, 1);
  const bs = options.batchSize ?? 8;
  const wasTraining = model.training;
  model.eval();
  noGrad(() => {
    for (let i = 0; i < dataset.length; i += bs) {
      const idx = Array.from({ length: Math.min(bs, dataset.length - i) }, (_, k) => i + k);
      const { images, masks } = segmentationBatch(dataset, idx);
      const pred = predictLabels(model.forward(normalize(images, options.mean, options.std)));
      const truth = masks.data as Int32Array;
      idx.forEach((_, b) => {
        metrics.update(
          pred.subarray(b * voxels, (b + 1) * voxels),
          truth.subarray(b * voxels, (b + 1) * voxels),
          spatial,
        );
      });
    }
  });
  model.train(wasTraining);
  return metrics.summary();
}

export interface TrainSegmentationOptions {
  out: string;
  epochs?: number;
  trainSize?: number;
  testSize?: number;
  batchSize?: number;
  /** Peak learning rate (default: the preset's). */
  lr?: number;
  /** Start from this glimpse segmentation checkpoint (the preset's model kind, the checkpoint's own config) instead of a fresh init. */
  init?: string;
  /** Entries that replace the preset's model config (a fresh model only; --init brings its own). */
  modelConfig?: Record<string, unknown>;
  /**
   * 'full' (default) trains the whole model; 'encoder' (TransUNet only) trains the encoder with a
   * linear head on its tokens (TransUnetTokenProbe) and leaves the decoder as it is: a cheap first
   * stage, continued with `init` on the checkpoint it writes (the whole model, without the head).
   */
  stage?: 'full' | 'encoder';
  /** Steps between checkpoints within an epoch (default 50; one is also written after every epoch). */
  saveEvery?: number;
  seed?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Steps between log records (default 10). */
  logEvery?: number;
}

export interface TrainSegmentationResult {
  model: SegmentationModel;
  checkpoint: string;
  summary: SegmentationSummary;
  /** Seconds of training (without the final evaluation), wall and process CPU. */
  trainSeconds: number;
  trainCpuSeconds: number;
  evalSeconds: number;
  steps: number;
  hardware: string;
}

/** The machine, for reports: CPU model, logical cores, backend. */
export function describeHardware(): string {
  const c = cpus();
  return `${c[0]?.model.trim() ?? 'unknown CPU'}, ${c.length} logical cores visible, backend ${getBackend()}`;
}

export async function trainSegmentation(
  presetName: string,
  options: TrainSegmentationOptions,
): Promise<TrainSegmentationResult> {
  const preset = getSegmentPreset(presetName);
  const seed = options.seed ?? 0;
  const epochs = options.epochs ?? preset.epochs;
  const batchSize = options.batchSize ?? preset.batchSize;
  const say = options.log ?? (() => {});
  const logEvery = options.logEvery ?? 10;
  const saveEvery = options.saveEvery ?? 50;
  mkdirSync(options.out, { recursive: true });
  const logPath = join(options.out, 'log.jsonl');
  writeFileSync(logPath, '');
  const record = (r: Record<string, unknown>) => appendFileSync(logPath, `${JSON.stringify(r)}\n`);

  const train = await loadPresetData(preset, 'train', { length: options.trainSize, seed });
  const test = await loadPresetData(preset, 'test', { length: options.testSize, seed });
  manualSeed(seed);
  // A checkpoint brings its own config, so that runs of an earlier preset size can be continued.
  const start = options.init ? loadSegmentationCheckpoint(options.init, { kind: preset.model }) : null;
  const modelConfig = start
    ? withoutWeightInit(start.info.config)
    : { ...preset.modelConfig, ...options.modelConfig };
  const model = start ? start.model : createSegmentationModel(preset.model, modelConfig);
  const stage = options.stage ?? 'full';
  if (stage !== 'full' && stage !== 'encoder')
    throw new Error(`trainSegmentation: stage must be 'full' or 'encoder', got '${stage}'`);
  if (stage === 'encoder' && !(model instanceof TransUNet))
    throw new Error(
      `trainSegmentation: stage 'encoder' is for TransUNet; preset ${presetName} trains a ${preset.model}`,
    );
  /** What is trained and evaluated: the model, or its encoder with a token head. */
  const net = stage === 'encoder' ? new TransUnetTokenProbe(model as TransUNet) : model;
  net.train();
  const lrPeak = options.lr ?? preset.lr;
  const positionTables = net
    .namedParameters()
    .map(([name]) => name)
    .filter((name) => name.endsWith('position_embeddings'));
  const optimizer = new AdamW(
    paramGroupsWeightDecay(net, { weightDecay: preset.weightDecay, noWeightDecay: positionTables }),
    { lr: lrPeak },
  );
  const stepsPerEpoch = Math.floor(train.length / batchSize);
  if (stepsPerEpoch < 1)
    throw new Error(`trainSegmentation: ${train.length} training samples make no batch of ${batchSize}`);
  const totalSteps = stepsPerEpoch * epochs;
  const schedule = cosineSchedule({
    baseLr: lrPeak,
    totalSteps: Math.max(totalSteps, preset.warmupSteps + 1),
    minLr: preset.minLr,
    warmupSteps: preset.warmupSteps,
  });
  const hardware = describeHardware();
  const info = {
    kind: preset.model,
    config: modelConfig,
    classes: [...train.classes],
    mean: preset.mean,
    std: preset.std,
  };
  const checkpoint = join(options.out, 'model.safetensors');
  say(
    `${presetName}: ${preset.description}${stage === 'encoder' ? ' (stage: encoder with a token head)' : ''}; ${net.numParameters()} trained parameters; ${totalSteps} steps of ${batchSize}; ${hardware}`,
  );
  record({
    type: 'start',
    stage,
    init: options.init ?? null,
    config: modelConfig,
    lr: lrPeak,
    preset: presetName,
    parameters: model.numParameters(),
    steps: totalSteps,
    batch_size: batchSize,
    hardware,
    loadavg: loadavg(),
  });

  const started = performance.now();
  const cpuStarted = process.cpuUsage();
  /** Process CPU seconds (all threads) since training began: on a shared machine wall time says little. */
  const cpuSeconds = () => {
    const u = process.cpuUsage(cpuStarted);
    return (u.user + u.system) / 1e6;
  };
  let step = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = new Generator(deriveSeed(seed, epoch, 0x5e6)).shuffle(
      Array.from({ length: train.length }, (_, i) => i),
    );
    let windowLoss = 0;
    let windowStart = performance.now();
    let windowSteps = 0;
    for (let b = 0; b < stepsPerEpoch; b++) {
      const { images, masks } = segmentationBatch(train, order.slice(b * batchSize, (b + 1) * batchSize));
      const lr = schedule(step);
      setLr(optimizer, lr);
      const logits = net.forward(normalize(images, preset.mean, preset.std));
      const loss = diceCeLoss(logits, masks, preset.loss);
      optimizer.zeroGrad();
      loss.backward();
      clipGradNorm_(net.parameters(), preset.clipGrad);
      optimizer.step();
      step++;
      windowLoss += loss.item();
      windowSteps++;
      if (step % logEvery === 0 || b === stepsPerEpoch - 1) {
        const seconds = (performance.now() - windowStart) / 1000;
        const r = {
          type: 'step',
          epoch,
          step,
          lr,
          loss: windowLoss / windowSteps,
          samples_per_s: (windowSteps * batchSize) / seconds,
          elapsed_s: (performance.now() - started) / 1000,
          cpu_s: cpuSeconds(),
        };
        record(r);
        say(
          `epoch ${epoch} step ${step}/${totalSteps} loss ${r.loss.toFixed(4)} lr ${lr.toExponential(2)} ${r.samples_per_s.toFixed(1)} samples/s`,
        );
        windowLoss = 0;
        windowSteps = 0;
        windowStart = performance.now();
      }
      if (step % saveEvery === 0 && b < stepsPerEpoch - 1)
        saveSegmentationCheckpoint(checkpoint, model, {
          ...info,
          extra: { preset: presetName, epoch, step },
        });
    }
    saveSegmentationCheckpoint(checkpoint, model, { ...info, extra: { preset: presetName, epoch, step } });
  }
  const trainSeconds = (performance.now() - started) / 1000;
  const trainCpuSeconds = cpuSeconds();
  const evalStart = performance.now();
  const summary = evaluateSegmentation(net, test, { mean: preset.mean, std: preset.std, hd95: true });
  const evalSeconds = (performance.now() - evalStart) / 1000;
  const result = {
    type: 'final',
    preset: presetName,
    steps: step,
    train_seconds: trainSeconds,
    train_cpu_seconds: trainCpuSeconds,
    eval_seconds: evalSeconds,
    hardware,
    loadavg: loadavg(),
    test: summary,
  };
  record(result);
  writeFileSync(join(options.out, 'metrics.json'), `${JSON.stringify(result, null, 2)}\n`);
  saveSegmentationCheckpoint(checkpoint, model, {
    ...info,
    extra: { preset: presetName, epoch: epochs - 1, step, meanForegroundDice: summary.meanForegroundDice },
  });
  say(
    `test Dice per class: ${summary.classes.map((c, k) => `${c} ${summary.dice[k].toFixed(3)}`).join(', ')}`,
  );
  say(
    `test: mean foreground Dice ${summary.meanForegroundDice.toFixed(4)} (per image ${summary.meanForegroundImageDice.toFixed(4)}), IoU ${summary.meanForegroundIou.toFixed(4)}, HD95 ${summary.meanForegroundHd95.toFixed(2)}; trained ${(trainSeconds / 60).toFixed(1)} min (${(trainCpuSeconds / 60).toFixed(1)} CPU min)`,
  );
  return { model, checkpoint, summary, trainSeconds, trainCpuSeconds, evalSeconds, steps: step, hardware };
}
