/**
 * The training loop: AdamW over weight-decay groups, linear warmup then cosine, label smoothing or
 * Mixup/CutMix soft targets, gradient clipping, an optional EMA of the weights, DeiT hard-label
 * distillation, evaluation after every epoch, a progress bar, JSONL logs, a learning-curve SVG and
 * resumable checkpoints.
 *
 * Reproducibility is by construction: batch b of epoch e is a function of (seed, e, b) (DataLoader),
 * the global generator (dropout, drop-path) is reseeded from (seed, step) before every step, and the
 * lr is a function of the step. A checkpoint therefore only needs the weights, the optimizer and EMA
 * state and the position (epoch, batch, step) to continue bit-for-bit like an uninterrupted run.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { ImageDataset } from '../data/dataset.js';
import { type Batch, DataLoader, deriveSeed } from '../data/loader.js';
import type { MixupOptions, Transform } from '../data/transforms.js';
import { writeFileAtomic, writeSafetensors } from '../io/safetensors.js';
import type { Module } from '../nn/module.js';
import { manualSeed } from '../ops/creation.js';
import { add, div, mul } from '../ops/elementwise.js';
import { crossEntropy, klDiv } from '../ops/loss.js';
// From the ops entry, which also installs the Tensor methods softmax's backward uses.
import { logSoftmax, softmax } from '../ops/index.js';
import { argmax } from '../ops/reduce.js';
import { AdamW } from '../optim/adam.js';
import { clipGradNorm_ } from '../optim/optimizer.js';
import { paramGroupsWeightDecay } from '../optim/param_groups.js';
import { cosineSchedule, linearWarmup, setLr } from '../optim/schedule.js';
import { noGrad } from '../tensor/autograd.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  checkpointProblems,
  readTrainingCheckpoint,
  restoreTrainingCheckpoint,
  saveTrainingCheckpoint,
  type TrainPosition,
} from './checkpoint.js';
import { type EmaOptions, ModelEma } from './ema.js';
import { type EpochRecord, JsonlLog } from './log.js';
import { learningCurveSvg } from './plot.js';
import { TrainProgress } from './progress.js';

/** Any module that maps an image batch (B, C, H, W) to logits (B, K). */
export type ClassifierModule = Module & { forward(x: Tensor): Tensor };

/** A model with a distillation token (DeiT): both heads' logits in training. */
export type DistillableModule = ClassifierModule & {
  forwardHeads(x: Tensor): { logits: Tensor; distLogits: Tensor };
};

export interface TrainOptions {
  model: ClassifierModule;
  train: ImageDataset;
  /** Evaluated after every epoch when given. */
  eval?: ImageDataset;
  epochs: number;
  batchSize: number;
  /** Peak learning rate, reached at the end of the warmup (default 1e-3). */
  lr?: number;
  /** Final learning rate of the cosine (default 1e-6). */
  minLr?: number;
  /** Warmup length in epochs, fractions allowed (default 0). */
  warmupEpochs?: number;
  /** Learning rate the warmup starts from (default 1e-6). */
  warmupLr?: number;
  /** AdamW weight decay on weights; biases, norms and tokens are never decayed (default 0.05). */
  weightDecay?: number;
  /**
   * Parameters with a learning rate of their own: lrScale times the run's lr, on the run's schedule
   * ('cosine', default) or held at the peak after the warmup ('constant'). Parameters in no group
   * follow the run's lr. Weight decay applies as for every parameter.
   */
  paramGroups?: TrainParamGroup[];
  betas?: [number, number];
  eps?: number;
  /** Label smoothing of the hard targets (default 0); with Mixup it smooths the mixed targets. */
  labelSmoothing?: number;
  /** Clip the global gradient norm to this value (default: no clipping). */
  clipGrad?: number | null;
  mixup?: Omit<MixupOptions, 'numClasses' | 'labelSmoothing'> | null;
  ema?: EmaOptions | null;
  /** DeiT distillation: the teacher supervises the distillation head (see `distillation`). */
  teacher?: ClassifierModule | null;
  /**
   * With a teacher: 'hard' (default; DeiT's choice) trains the distillation head on the teacher's
   * argmax, 'soft' on its temperature-softened distribution, tau^2 KL(p_teacher/tau || p_dist/tau)
   * (per-sample KL; DeiT's code divides by the logits' element count instead). Each half of the loss.
   */
  distillation?: 'hard' | 'soft';
  /** Temperature of soft distillation (default 3, Hinton et al.'s range; DeiT's code defaults to 1). */
  distillationTau?: number;
  /**
   * A term added to each step's loss, computed from the batch's (transformed) images and labels,
   * e.g. a self-supervised one (rotationEquivarianceLoss of src/models/stn.ts). Null adds nothing.
   */
  auxiliaryLoss?: ((images: Tensor, labels: Tensor) => Tensor | null) | null;
  trainTransform?: Transform;
  evalTransform?: Transform;
  evalBatchSize?: number;
  /** Evaluate after every this many epochs, and always after the last (default 1). */
  evalEvery?: number;
  seed?: number;
  /** Where checkpoints, logs and the plot go; without it nothing is written. */
  outDir?: string | null;
  /** Continue the run whose checkpoint is in outDir. */
  resume?: boolean;
  /** Also checkpoint every this many steps (0: only at epoch ends). */
  checkpointEvery?: number;
  /** Log a step record every this many steps (default 50). */
  logEvery?: number;
  /** Batches prepared ahead (default 2). */
  prefetch?: number;
  /** Draw the progress bar (on stderr). */
  progress?: boolean;
  /** Where one-line epoch summaries go. */
  print?: (line: string) => void;
  /** Describes the run beyond the loop's settings (model id and overrides, dataset); saved and compared on resume. */
  meta?: Record<string, unknown>;
  onStep?: (info: {
    epoch: number;
    batch: number;
    step: number;
    loss: number;
    lr: number;
    /** The lr each of options.paramGroups had at this step (when given). */
    groupLrs?: number[];
  }) => void;
  onEpoch?: (record: EpochRecord) => void;
}

/** A set of parameters trained with its own learning rate (TrainOptions.paramGroups). */
export interface TrainParamGroup {
  params: Tensor[];
  /** Multiplies the run's lr (default 1). */
  lrScale?: number;
  /** 'cosine' (default): the run's schedule; 'constant': the warmup, then the peak lr to the end. */
  schedule?: 'cosine' | 'constant';
}

export interface EvalResult {
  loss: number;
  acc: number;
  count: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

export interface TrainResult {
  /** One record per epoch, the resumed-from part included. */
  history: EpochRecord[];
  steps: number;
  /** The weights files written (model.safetensors, model_ema.safetensors) when outDir was given. */
  files: string[];
}

/** Top-1 accuracy and mean cross-entropy of `model` on `dataset` (eval mode, no graph). */
export async function evaluate(
  model: ClassifierModule,
  dataset: ImageDataset,
  options: { batchSize?: number; transform?: Transform; prefetch?: number } = {},
): Promise<EvalResult> {
  const loader = new DataLoader(dataset, {
    batchSize: options.batchSize ?? 256,
    transform: options.transform,
    prefetch: options.prefetch,
  });
  const wasTraining = model.training;
  model.eval();
  const classes = dataset.classes.length;
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  try {
    for await (const batch of loader.epoch(0)) {
      noGrad(() => {
        const logits = model.forward(batch.images);
        lossSum += crossEntropy(logits, batch.labels, { reduction: 'sum' }).item();
        const pred = argmax(logits, 1).data;
        for (let i = 0; i < batch.labels.size; i++) {
          const y = batch.labels.data[i];
          confusion[y][pred[i]]++;
          if (pred[i] === y) correct++;
        }
      });
      count += batch.labels.size;
    }
  } finally {
    model.train(wasTraining);
  }
  return { loss: lossSum / count, acc: correct / count, count, confusion };
}

function countCorrect(logits: Tensor, labels: Tensor): number {
  const pred = argmax(logits, 1).data;
  let n = 0;
  for (let i = 0; i < labels.size; i++) if (pred[i] === labels.data[i]) n++;
  return n;
}

function isDistillable(model: ClassifierModule): model is DistillableModule {
  return typeof (model as { forwardHeads?: unknown }).forwardHeads === 'function';
}

function checkNumber(name: string, value: number, ok: (v: number) => boolean, want: string): void {
  if (!ok(value)) throw new Error(`train: ${name} must be ${want}, got ${value}`);
}

const OUTPUTS = [
  'checkpoint.safetensors',
  'model.safetensors',
  'model_ema.safetensors',
  'log.jsonl',
  'curves.svg',
];

/** Temp files a killed atomic write left behind. */
function removeStaleTemps(outDir: string): void {
  for (const f of readdirSync(outDir)) {
    if (f.endsWith('.tmp') && OUTPUTS.some((o) => f.startsWith(`${o}.`)))
      rmSync(join(outDir, f), { force: true });
  }
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const {
    model,
    epochs,
    batchSize,
    lr = 1e-3,
    minLr = 1e-6,
    warmupEpochs = 0,
    warmupLr = 1e-6,
    weightDecay = 0.05,
    betas = [0.9, 0.999],
    eps = 1e-8,
    labelSmoothing = 0,
    clipGrad = null,
    seed = 0,
    checkpointEvery = 0,
    logEvery = 50,
    evalEvery = 1,
    distillation = 'hard',
    distillationTau: tau = 3,
  } = options;
  // Every check runs before anything is written, so bad input never touches an existing run.
  checkNumber('epochs', epochs, (v) => Number.isInteger(v) && v > 0, 'a positive integer');
  checkNumber('batchSize', batchSize, (v) => Number.isInteger(v) && v > 0, 'a positive integer');
  checkNumber('lr', lr, (v) => v > 0 && Number.isFinite(v), 'a positive number');
  checkNumber('warmupEpochs', warmupEpochs, (v) => v >= 0 && v < epochs, `in [0, epochs=${epochs})`);
  checkNumber('labelSmoothing', labelSmoothing, (v) => v >= 0 && v < 1, 'in [0, 1)');
  if (distillation !== 'hard' && distillation !== 'soft')
    throw new Error(`train: distillation must be 'hard' or 'soft', got '${distillation}'`);
  checkNumber('distillationTau', tau, (v) => v > 0 && Number.isFinite(v), 'a positive number');
  checkNumber(
    'checkpointEvery',
    checkpointEvery,
    (v) => Number.isInteger(v) && v >= 0,
    'a non-negative integer',
  );
  if (clipGrad !== null) checkNumber('clipGrad', clipGrad, (v) => v > 0, 'positive');
  checkNumber('evalEvery', evalEvery, (v) => Number.isInteger(v) && v > 0, 'a positive integer');
  const numClasses = options.train.classes.length;
  if (options.eval && options.eval.classes.length !== numClasses) {
    throw new Error(
      `train: the eval set has ${options.eval.classes.length} classes but the training set ${numClasses}`,
    );
  }
  const teacher = options.teacher ?? null;
  if (teacher && !isDistillable(model)) {
    throw new Error(
      'train: distillation needs a student with a distillation token and head (e.g. deit_tiny_distilled_patch16_224)',
    );
  }
  const mixup = options.mixup ? { ...options.mixup, numClasses, labelSmoothing } : undefined;
  const loader = new DataLoader(options.train, {
    batchSize,
    shuffle: true,
    seed,
    dropLast: true,
    transform: options.trainTransform,
    mixup,
    prefetch: options.prefetch,
  });
  const stepsPerEpoch = loader.numBatches;
  const totalSteps = epochs * stepsPerEpoch;
  const schedule = cosineSchedule({
    baseLr: lr,
    minLr,
    totalSteps,
    warmupSteps: Math.round(warmupEpochs * stepsPerEpoch),
    warmupInitLr: warmupLr,
  });
  const groups = splitParamGroups(paramGroupsWeightDecay(model, { weightDecay }), options.paramGroups ?? []);
  const constantLr = linearWarmup({
    baseLr: lr,
    warmupSteps: Math.round(warmupEpochs * stepsPerEpoch),
    warmupInitLr: warmupLr,
  });
  const optimizer = new AdamW(groups.optimizerGroups, { lr, betas, eps });
  const ema = options.ema ? new ModelEma(model, options.ema) : null;
  const parts = { model, optimizer, ema };
  const config: Record<string, unknown> = {
    ...options.meta,
    epochs,
    batchSize,
    lr,
    minLr,
    warmupEpochs,
    warmupLr,
    weightDecay,
    betas,
    eps,
    labelSmoothing,
    clipGrad,
    mixup: options.mixup ?? null,
    ...(options.paramGroups
      ? {
          paramGroups: options.paramGroups.map((g) => ({
            size: g.params.length,
            lrScale: g.lrScale ?? 1,
            schedule: g.schedule ?? 'cosine',
          })),
        }
      : {}),
    ema: options.ema ?? null,
    distillation: teacher ? distillation : null,
    ...(teacher && distillation === 'soft' ? { distillationTau: tau } : {}),
    seed,
    trainSize: options.train.length,
    numClasses,
  };

  let position: TrainPosition = { epoch: 0, batch: 0, step: 0, running: { lossSum: 0, correct: 0, seen: 0 } };
  const outDir = options.outDir ?? null;
  const ckptPath = outDir ? join(outDir, 'checkpoint.safetensors') : '';
  const log = outDir ? new JsonlLog(join(outDir, 'log.jsonl')) : null;
  let history: EpochRecord[] = [];
  if (outDir) {
    const exists = existsSync(ckptPath);
    if (options.resume) {
      if (!exists)
        throw new Error(
          `train --resume: ${outDir} holds no checkpoint.safetensors; drop --resume to start a new run there`,
        );
      const ckpt = readTrainingCheckpoint(ckptPath);
      const problems = checkpointProblems(ckpt, parts, config);
      if (problems.length) {
        const more = problems.length > 3 ? ` (+${problems.length - 3} more)` : '';
        throw new Error(
          `train --resume: the checkpoint in ${outDir} does not fit this run: ${problems.slice(0, 3).join('; ')}${more}; resume with the original settings or train into a new --out`,
        );
      }
      restoreTrainingCheckpoint(ckpt, parts);
      position = ckpt.position;
      removeStaleTemps(outDir);
      history = log!
        .truncate(position.step, position.epoch)
        .filter((r): r is EpochRecord => r.type === 'epoch');
    } else {
      if (exists) {
        throw new Error(
          `train: ${outDir} already holds a training run (checkpoint.safetensors); pass --resume to continue it or choose another --out`,
        );
      }
      mkdirSync(outDir, { recursive: true });
      removeStaleTemps(outDir);
      writeFileAtomic(log!.path, '');
    }
  }

  if (teacher) teacher.eval();
  const print = options.print ?? (() => {});
  const progress = new TrainProgress(options.progress ?? false);
  const files: string[] = [];
  let step = position.step;

  const trainStep = (batch: Batch): { loss: number; correct: number; lr: number } => {
    manualSeed(deriveSeed(seed, step, 0x57e9));
    const stepLr = schedule(step);
    setLr(optimizer, stepLr);
    for (const i of groups.constant) {
      const g = optimizer.paramGroups[i];
      g.lr = constantLr(step) * (g.lrScale ?? 1);
    }
    const target = batch.targets ?? batch.labels;
    const ceOptions = batch.targets ? {} : { labelSmoothing };
    let logits: Tensor;
    let loss: Tensor;
    if (teacher) {
      const heads = (model as DistillableModule).forwardHeads(batch.images);
      const teacherLogits = noGrad(() => teacher.forward(batch.images));
      // DeiT: (1 - alpha) * CE(cls, y) + alpha * distillation term on the dist head, alpha = 1/2.
      const distLoss =
        distillation === 'hard'
          ? crossEntropy(heads.distLogits, argmax(teacherLogits, 1))
          : mul(
              klDiv(
                logSoftmax(div(heads.distLogits, tau), 1),
                noGrad(() => softmax(div(teacherLogits, tau), 1)),
                {
                  reduction: 'batchmean',
                },
              ),
              tau * tau,
            );
      loss = add(mul(crossEntropy(heads.logits, target, ceOptions), 0.5), mul(distLoss, 0.5));
      logits = heads.logits;
    } else {
      logits = model.forward(batch.images);
      loss = crossEntropy(logits, target, ceOptions);
    }
    const auxiliary = options.auxiliaryLoss?.(batch.images, batch.labels) ?? null;
    if (auxiliary) loss = add(loss, auxiliary);
    const value = loss.item();
    if (!Number.isFinite(value)) {
      throw new Error(
        `train: the loss is ${value} at step ${step} (epoch ${batch.epoch + 1}); lower --lr or set a gradient clip`,
      );
    }
    optimizer.zeroGrad();
    loss.backward();
    if (clipGrad !== null) clipGradNorm_(model.parameters(), clipGrad);
    optimizer.step();
    ema?.update(model, step);
    return { loss: value, correct: noGrad(() => countCorrect(logits, batch.labels)), lr: stepLr };
  };
  const groupLrs = () =>
    groups.firstOfUserGroup.map((i) => (i < 0 ? Number.NaN : optimizer.paramGroups[i].lr));

  model.train();
  for (let epoch = position.epoch; epoch < epochs; epoch++) {
    const resumed = epoch === position.epoch;
    const running = resumed ? { ...position.running } : { lossSum: 0, correct: 0, seen: 0 };
    const epochStart = performance.now();
    const cpuStart = process.cpuUsage();
    const waitStart = loader.waitMs;
    let imagesThisRun = 0;
    // The lr of the last step taken, even when a resumed epoch has no batches left.
    let lastLr = schedule(Math.max(0, step - 1));
    let interval = { start: performance.now(), images: 0 };
    progress.start(epoch, epochs, stepsPerEpoch, resumed ? position.batch : 0);
    for await (const batch of loader.epoch(epoch, { startBatch: resumed ? position.batch : 0 })) {
      const r = trainStep(batch);
      step++;
      lastLr = r.lr;
      const n = batch.labels.size;
      running.lossSum += r.loss * n;
      running.correct += r.correct;
      running.seen += n;
      imagesThisRun += n;
      interval.images += n;
      const elapsed = (performance.now() - epochStart) / 1000;
      progress.update(batch.batch + 1, {
        loss: running.lossSum / running.seen,
        acc: running.correct / running.seen,
        imagesPerSecond: imagesThisRun / Math.max(elapsed, 1e-9),
        lr: r.lr,
      });
      if (log && step % logEvery === 0) {
        const seconds = (performance.now() - interval.start) / 1000;
        log.append({
          type: 'step',
          epoch,
          step,
          lr: r.lr,
          loss: r.loss,
          images_per_s: interval.images / Math.max(seconds, 1e-9),
        });
        interval = { start: performance.now(), images: 0 };
      }
      if (outDir && checkpointEvery > 0 && step % checkpointEvery === 0) {
        saveTrainingCheckpoint(ckptPath, parts, { epoch, batch: batch.batch + 1, step, running }, config);
      }
      options.onStep?.({
        epoch,
        batch: batch.batch,
        step,
        loss: r.loss,
        lr: r.lr,
        ...(options.paramGroups ? { groupLrs: groupLrs() } : {}),
      });
    }
    const trainSeconds = (performance.now() - epochStart) / 1000;
    progress.stop();
    const record: EpochRecord = {
      type: 'epoch',
      epoch,
      step,
      lr: lastLr,
      train_loss: running.lossSum / running.seen,
      train_acc: running.correct / running.seen,
      time_s: 0,
      images_per_s: imagesThisRun / Math.max(trainSeconds, 1e-9),
      data_wait_s: (loader.waitMs - waitStart) / 1000,
    };
    if (options.eval && ((epoch + 1) % evalEvery === 0 || epoch + 1 === epochs)) {
      const evalOptions = {
        batchSize: options.evalBatchSize ?? 2 * batchSize,
        transform: options.evalTransform,
      };
      const ev = await evaluate(model, options.eval, evalOptions);
      record.eval_loss = ev.loss;
      record.eval_acc = ev.acc;
      if (ema) {
        const evEma = await ema.withWeights(model, () => evaluate(model, options.eval!, evalOptions));
        record.eval_ema_loss = evEma.loss;
        record.eval_ema_acc = evEma.acc;
      }
    }
    record.time_s = (performance.now() - epochStart) / 1000;
    const cpu = process.cpuUsage(cpuStart);
    record.cpu_s = (cpu.user + cpu.system) / 1e6;
    record.load_avg = loadavg()[0];
    history.push(record);
    print(formatEpoch(record, epochs));
    options.onEpoch?.(record);
    if (outDir && log) {
      // The record goes to the log before the checkpoint that covers it, so a kill in between only
      // means the epoch's tail is redone and its record rewritten.
      log.append(record);
      saveTrainingCheckpoint(
        ckptPath,
        parts,
        { epoch: epoch + 1, batch: 0, step, running: { lossSum: 0, correct: 0, seen: 0 } },
        config,
      );
      const metadata = { format: 'pt', 'glimpse.train': JSON.stringify(config), epoch: String(epoch + 1) };
      const modelPath = join(outDir, 'model.safetensors');
      writeSafetensors(modelPath, model.stateDict(), { metadata });
      files.length = 0;
      files.push(modelPath);
      if (ema) {
        const emaPath = join(outDir, 'model_ema.safetensors');
        writeSafetensors(emaPath, ema.stateDict(), { metadata });
        files.push(emaPath);
      }
      const title = `${String(options.meta?.model ?? model.constructor.name)}: ${history.length} epochs`;
      writeFileAtomic(join(outDir, 'curves.svg'), learningCurveSvg(history, title));
    }
  }
  return { history, steps: step, files };
}

/**
 * The optimizer's groups: each weight-decay group split by TrainOptions.paramGroups (the rest keep the
 * run's lr), empty ones dropped. `constant` lists the optimizer groups on the constant schedule,
 * `firstOfUserGroup[k]` an optimizer group that holds user group k's parameters (-1: none trainable).
 */
function splitParamGroups(
  decayGroups: Array<{ params: Tensor[]; weightDecay: number }>,
  userGroups: TrainParamGroup[],
): {
  optimizerGroups: Array<{ params: Tensor[]; weightDecay: number; lrScale?: number }>;
  constant: number[];
  firstOfUserGroup: number[];
} {
  const owner = new Map<Tensor, number>();
  userGroups.forEach((g, k) => {
    checkNumber(`paramGroups[${k}].lrScale`, g.lrScale ?? 1, (v) => v >= 0 && Number.isFinite(v), '>= 0');
    if (g.schedule !== undefined && g.schedule !== 'cosine' && g.schedule !== 'constant') {
      throw new Error(
        `train: paramGroups[${k}].schedule must be 'cosine' or 'constant', got '${g.schedule}'`,
      );
    }
    for (const p of g.params) {
      if (owner.has(p)) {
        throw new Error(
          `train: a parameter is in paramGroups[${owner.get(p)}] and paramGroups[${k}]; each may be in one group`,
        );
      }
      owner.set(p, k);
    }
  });
  const trainable = new Set(decayGroups.flatMap((g) => g.params));
  const foreign = [...owner.keys()].filter((p) => !trainable.has(p)).length;
  if (foreign > 0) {
    throw new Error(
      `train: ${foreign} tensor(s) in paramGroups are not trainable parameters of the model; pass the model's own parameters`,
    );
  }
  const optimizerGroups: Array<{ params: Tensor[]; weightDecay: number; lrScale?: number }> = [];
  const constant: number[] = [];
  const firstOfUserGroup = userGroups.map(() => -1);
  for (const dg of decayGroups) {
    for (let k = -1; k < userGroups.length; k++) {
      const params = dg.params.filter((p) => (owner.get(p) ?? -1) === k);
      if (params.length === 0 && !(k === -1 && userGroups.length === 0)) continue;
      if (k >= 0) {
        if (firstOfUserGroup[k] < 0) firstOfUserGroup[k] = optimizerGroups.length;
        if (userGroups[k].schedule === 'constant') constant.push(optimizerGroups.length);
      }
      optimizerGroups.push(
        k >= 0
          ? { params, weightDecay: dg.weightDecay, lrScale: userGroups[k].lrScale ?? 1 }
          : { params, weightDecay: dg.weightDecay },
      );
    }
  }
  return { optimizerGroups, constant, firstOfUserGroup };
}

function formatEpoch(r: EpochRecord, epochs: number): string {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  const parts = [
    `epoch ${r.epoch + 1}/${epochs}`,
    `train loss ${r.train_loss.toFixed(4)} acc ${pct(r.train_acc)}`,
  ];
  if (r.eval_acc !== undefined) parts.push(`eval loss ${r.eval_loss!.toFixed(4)} acc ${pct(r.eval_acc)}`);
  if (r.eval_ema_acc !== undefined) parts.push(`ema acc ${pct(r.eval_ema_acc)}`);
  parts.push(`lr ${r.lr.toExponential(2)}`, `${r.images_per_s.toFixed(0)} img/s`, `${r.time_s.toFixed(1)} s`);
  if (r.cpu_s !== undefined) parts.push(`${r.cpu_s.toFixed(0)} s CPU`);
  return parts.join('  ');
}
