/**
 * Training checkpoints: one safetensors file holding the model's tensors under its own (timm) names,
 * the optimizer state under `optimizer.state.<param>.<key>`, the EMA weights under `ema.<param>`,
 * and in the metadata the optimizer's groups, the position in training (epoch, batch, step, the
 * epoch's running sums) and the run's settings. Written atomically (temp file + rename), so a kill
 * at any moment leaves the previous checkpoint intact; with the data order and every random draw a
 * function of (seed, epoch, batch, step), that position is all a resumed run needs to continue
 * exactly where the killed one stopped.
 */
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import type { Module, StateDict } from '../nn/module.js';
import type { Optimizer, OptimizerStateDict, ParamState } from '../optim/optimizer.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import type { ModelEma } from './ema.js';

export const TRAIN_CHECKPOINT_FORMAT = 'glimpse.train/1';

const OPT_PREFIX = 'optimizer.state.';
const EMA_PREFIX = 'ema.';

export interface TrainPosition {
  /** The epoch in progress (0-based), i.e. the number of finished epochs. */
  epoch: number;
  /** Batches of `epoch` already trained. */
  batch: number;
  /** Optimizer steps taken so far. */
  step: number;
  /** Running sums of the epoch in progress, so its epoch record comes out the same after a resume. */
  running: { lossSum: number; correct: number; seen: number };
}

interface SavedOptimizer {
  groups: Array<Record<string, unknown> & { params: string[] }>;
  /** Non-tensor state per parameter (Adam's step). */
  scalars: Record<string, Record<string, number>>;
}

export interface TrainingCheckpoint {
  path: string;
  model: StateDict;
  optimizer: SavedOptimizer;
  optimizerTensors: Map<string, Map<string, Tensor>>;
  ema: StateDict | null;
  position: TrainPosition;
  /** The settings that define the run (model, data, hyperparameters, seed). */
  config: Record<string, unknown>;
}

export interface TrainingParts {
  model: Module;
  optimizer: Optimizer;
  ema: ModelEma | null;
}

/** The state-dict name of every parameter the optimizer holds, in its flat (group) order. */
function optimizerParamNames(model: Module, optimizer: Optimizer): string[] {
  const names = new Map<Tensor, string>();
  for (const [name, p] of model.namedParameters()) names.set(p, name);
  return optimizer.paramGroups.flatMap((g, gi) =>
    g.params.map((p) => {
      const name = names.get(p);
      if (!name)
        throw new Error(
          `checkpoint: optimizer group ${gi} holds a tensor ${fmt(p.shape)} that is not a parameter of the model`,
        );
      return name;
    }),
  );
}

export function saveTrainingCheckpoint(
  path: string,
  parts: TrainingParts,
  position: TrainPosition,
  config: Record<string, unknown>,
): void {
  const { model, optimizer, ema } = parts;
  const tensors = new Map<string, Tensor>();
  for (const [name, t] of model.stateDict()) {
    if (name.startsWith(OPT_PREFIX) || name.startsWith(EMA_PREFIX)) {
      throw new Error(`checkpoint: model tensor '${name}' collides with the optimizer/EMA namespace`);
    }
    tensors.set(name, t);
  }
  const names = optimizerParamNames(model, optimizer);
  const sd = optimizer.stateDict();
  const scalars: SavedOptimizer['scalars'] = {};
  for (const [index, st] of sd.state) {
    const name = names[index];
    for (const [key, v] of Object.entries(st)) {
      if (v instanceof Tensor) tensors.set(`${OPT_PREFIX}${name}.${key}`, v);
      else (scalars[name] ??= {})[key] = v;
    }
  }
  let offset = 0;
  const groups = sd.paramGroups.map((g) => {
    const { params, ...hyper } = g;
    const out = { ...hyper, params: names.slice(offset, offset + params.length) };
    offset += params.length;
    return out;
  });
  if (ema) for (const [name, t] of ema.stateDict()) tensors.set(`${EMA_PREFIX}${name}`, t);
  writeSafetensors(path, tensors, {
    metadata: {
      format: TRAIN_CHECKPOINT_FORMAT,
      position: JSON.stringify(position),
      config: JSON.stringify(config),
      optimizer: JSON.stringify({ groups, scalars } satisfies SavedOptimizer),
    },
  });
}

export function readTrainingCheckpoint(path: string): TrainingCheckpoint {
  const file = readSafetensors(path);
  const meta = file.metadata;
  if (meta.format !== TRAIN_CHECKPOINT_FORMAT) {
    throw new Error(
      `${path} is not a glimpse training checkpoint (format '${meta.format ?? 'none'}'); --resume needs the checkpoint.safetensors that glimpse train wrote`,
    );
  }
  let position: TrainPosition;
  let config: Record<string, unknown>;
  let optimizer: SavedOptimizer;
  try {
    position = JSON.parse(meta.position);
    config = JSON.parse(meta.config);
    optimizer = JSON.parse(meta.optimizer);
  } catch (e) {
    throw new Error(`${path}: the checkpoint metadata is not valid JSON (${(e as Error).message})`);
  }
  const model: StateDict = new Map();
  const ema: StateDict = new Map();
  const optimizerTensors = new Map<string, Map<string, Tensor>>();
  for (const [name, t] of file.tensors) {
    if (name.startsWith(OPT_PREFIX)) {
      const rest = name.slice(OPT_PREFIX.length);
      const cut = rest.lastIndexOf('.');
      const param = rest.slice(0, cut);
      if (!optimizerTensors.has(param)) optimizerTensors.set(param, new Map());
      optimizerTensors.get(param)!.set(rest.slice(cut + 1), t);
    } else if (name.startsWith(EMA_PREFIX)) {
      ema.set(name.slice(EMA_PREFIX.length), t);
    } else {
      model.set(name, t);
    }
  }
  return { path, model, optimizer, optimizerTensors, ema: ema.size ? ema : null, position, config };
}

function describeValue(v: unknown): string {
  return v === undefined ? 'unset' : JSON.stringify(v);
}

/**
 * Every reason `ckpt` cannot continue this run: different settings, a model with other tensors, an
 * optimizer over other parameters, EMA on one side only. Empty when it fits.
 */
export function checkpointProblems(
  ckpt: TrainingCheckpoint,
  parts: TrainingParts,
  config: Record<string, unknown>,
): string[] {
  const problems: string[] = [];
  for (const key of new Set([...Object.keys(ckpt.config), ...Object.keys(config)])) {
    const a = JSON.stringify(ckpt.config[key]);
    const b = JSON.stringify(config[key]);
    if (a !== b)
      problems.push(`${key} was ${describeValue(ckpt.config[key])}, now ${describeValue(config[key])}`);
  }
  const current = parts.model.stateDict();
  const list = (names: string[]) => `${names.slice(0, 4).join(', ')}${names.length > 4 ? ', ...' : ''}`;
  const tensorProblems = (saved: StateDict, what: string): string[] => {
    const out: string[] = [];
    const missing = [...current.keys()].filter((k) => !saved.has(k));
    const extra = [...saved.keys()].filter((k) => !current.has(k));
    if (missing.length) out.push(`${what} lacks ${missing.length} of the model's tensors (${list(missing)})`);
    if (extra.length) out.push(`${what} has ${extra.length} tensors the model does not (${list(extra)})`);
    for (const [name, t] of current) {
      const st = saved.get(name);
      if (st && !shapesEqual(st.shape, t.shape))
        out.push(`${what} ${name} is ${fmt(st.shape)}, the model's ${fmt(t.shape)}`);
    }
    return out;
  };
  const modelProblems = tensorProblems(ckpt.model, 'the checkpoint');
  problems.push(...modelProblems);
  // Optimizer and EMA state only make sense over the same tensors.
  if (modelProblems.length) return problems;
  if (parts.ema && !ckpt.ema)
    problems.push('this run keeps an EMA of the weights but the checkpoint has none');
  if (!parts.ema && ckpt.ema) problems.push('the checkpoint has EMA weights but this run keeps no EMA');
  if (parts.ema && ckpt.ema) problems.push(...tensorProblems(ckpt.ema, "the checkpoint's EMA"));
  const names = optimizerParamNames(parts.model, parts.optimizer);
  const groups = parts.optimizer.paramGroups;
  if (ckpt.optimizer.groups.length !== groups.length) {
    problems.push(
      `the checkpoint's optimizer has ${ckpt.optimizer.groups.length} parameter groups, this one ${groups.length}`,
    );
  } else {
    let offset = 0;
    ckpt.optimizer.groups.forEach((g, i) => {
      const mine = names.slice(offset, offset + groups[i].params.length);
      offset += groups[i].params.length;
      if (JSON.stringify(g.params) !== JSON.stringify(mine)) {
        problems.push(`optimizer group ${i} held [${g.params.join(', ')}], now [${mine.join(', ')}]`);
      }
    });
  }
  return problems;
}

/** Loads model, optimizer and EMA state from a checkpoint that `checkpointProblems` accepted. */
export function restoreTrainingCheckpoint(ckpt: TrainingCheckpoint, parts: TrainingParts): void {
  const { model, optimizer, ema } = parts;
  model.loadStateDict(ckpt.model);
  const names = optimizerParamNames(model, optimizer);
  const state = new Map<number, ParamState>();
  names.forEach((name, index) => {
    const tensors = ckpt.optimizerTensors.get(name);
    const scalars = ckpt.optimizer.scalars[name];
    if (!tensors && !scalars) return;
    const st: ParamState = { ...(scalars ?? {}) };
    for (const [k, t] of tensors ?? []) st[k] = t;
    state.set(index, st);
  });
  let offset = 0;
  const paramGroups = ckpt.optimizer.groups.map((g) => {
    const n = g.params.length;
    const out = { ...g, params: Array.from({ length: n }, (_, i) => offset + i) };
    offset += n;
    return out;
  });
  optimizer.loadStateDict({ state, paramGroups } as unknown as OptimizerStateDict);
  if (ema && ckpt.ema) ema.loadStateDict(ckpt.ema);
}
