/**
 * Loading hub checkpoints into zoo models: safetensors in F32/F16/BF16 (converted to float32 on read),
 * names from timm, Hugging Face or torchvision mapped by the model family's checkpoint filter, and a
 * one-line error that says what to do when the file does not fit the model.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describeLoadReport, type LoadReport, type StateDict } from '../nn/module.js';
import { readSafetensors, type SafetensorsDType } from '../io/safetensors.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import type { ImageClassifier } from './classifier.js';
import { guessCheckpointFamily, hfLabels, modelFromHfConfig } from './registry.js';

export interface LoadCheckpointOptions {
  /**
   * The Hugging Face config.json (a path or its parsed contents) that came with the weights: its
   * id2label becomes the model's class names, and its model_type must match the model. By default
   * a config.json next to a Hugging Face checkpoint is read.
   */
  config?: string | Record<string, unknown>;
  /** Accept missing / unexpected keys (reported, not thrown). Shape mismatches always throw. */
  strict?: boolean;
}

export interface CheckpointReport extends LoadReport {
  path: string;
  /** Whose names the file used: 'timm', 'huggingface', 'torchvision'. */
  source: string;
  /** How many tensors of each dtype the file held (all are float32 once loaded). */
  dtypes: Partial<Record<SafetensorsDType, number>>;
  loaded: number;
  notes: string[];
}

/** Keys that carry no learned value: a checkpoint without them is still complete. */
const OPTIONAL_KEYS = /(?:^|\.)num_batches_tracked$/;

function sniffFormat(path: string): string | null {
  const fd = openSync(path, 'r');
  try {
    const head = new Uint8Array(8);
    const n = readSync(fd, head, 0, 8, 0);
    if (n >= 4 && head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
      return 'a PyTorch zip checkpoint (torch.save)';
    }
    if (n >= 2 && head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) return 'a Python pickle';
    if (n >= 1 && head[0] === 0x3c) return 'an HTML page (a failed download?)';
    return null;
  } finally {
    closeSync(fd);
  }
}

/** Reads a safetensors file into a state dict, with errors that say what the file is and what to do. */
export function readCheckpoint(path: string): {
  stateDict: StateDict;
  dtypes: Map<string, SafetensorsDType>;
} {
  if (!existsSync(path))
    throw new Error(`loadCheckpoint: ${path} does not exist; pass the path of a .safetensors file`);
  const kind = sniffFormat(path);
  if (kind) {
    throw new Error(
      `loadCheckpoint: ${path} is ${kind}, not safetensors; download the model.safetensors file of the checkpoint, or convert it with safetensors.torch.save_file(torch.load(path), 'model.safetensors')`,
    );
  }
  try {
    const file = readSafetensors(path);
    return { stateDict: file.tensors, dtypes: file.dtypes };
  } catch (e) {
    const msg = (e as Error).message.replace(/^safetensors /, '').replace(/;? ?truncated\?$/, ' (truncated)');
    throw new Error(`loadCheckpoint: ${msg}; the file is damaged or incomplete, download it again`);
  }
}

/** `module.` (DistributedDataParallel) prefixes come off, as timm's clean_state_dict does. */
function cleanStateDict(sd: StateDict): StateDict {
  if (![...sd.keys()].every((k) => k.startsWith('module.'))) return sd;
  return new Map([...sd].map(([k, v]) => [k.slice('module.'.length), v]));
}

function listSome(keys: string[], n = 4): string {
  return keys.length <= n ? keys.join(', ') : `${keys.slice(0, n).join(', ')} and ${keys.length - n} more`;
}

function describeModel(model: ImageClassifier): string {
  return `${model.constructor.name} (${model.family})`;
}

/**
 * The single-line error for a checkpoint that does not fit: another architecture, another size,
 * another number of classes, or a few stray keys.
 */
function fitError(model: ImageClassifier, path: string, report: LoadReport, sd: StateDict): Error {
  const expected = model.stateDict().size;
  const matched = expected - report.missing.length - report.mismatched.length;
  const prefix = `loadCheckpoint: ${path} does not fit ${describeModel(model)}`;
  if (matched < expected / 2) {
    const guess = guessCheckpointFamily(sd);
    const mine = model.family;
    const what =
      guess && !guess.startsWith(mine)
        ? `it looks like a ${guess} checkpoint; create that model instead (glimpse classify --model ID)`
        : report.mismatched.length > 0
          ? `${report.mismatched.length} tensors have other shapes (${report.mismatched[0].key} is ${fmt(report.mismatched[0].got)}, the model has ${fmt(report.mismatched[0].expected)}); create the model size that matches the checkpoint`
          : 'create the model that matches the checkpoint';
    return new Error(`${prefix}: only ${matched} of ${expected} tensors match; ${what}`);
  }
  const head = report.mismatched.filter((m) =>
    /^(?:head|fc|head\.fc|head_dist)\.(?:weight|bias)$/.test(m.key),
  );
  if (head.length > 0 && head.length === report.mismatched.length && report.missing.length === 0) {
    const n = head[0].got[0];
    return new Error(
      `${prefix}: the checkpoint classifies ${n} classes, the model ${head[0].expected[0]}; create the model with { num_classes: ${n} }`,
    );
  }
  if (report.mismatched.length > 0) {
    const m = report.mismatched[0];
    return new Error(
      `${prefix}: ${report.mismatched.length} tensors have other shapes (${m.key}: checkpoint ${fmt(m.got)}, model ${fmt(m.expected)}${
        report.mismatched.length > 1
          ? `; also ${listSome(
              report.mismatched.slice(1).map((x) => x.key),
              3,
            )}`
          : ''
      }); create the model with the checkpoint's sizes`,
    );
  }
  return new Error(
    `${prefix}: ${describeLoadReport({ ...report, missing: report.missing.length ? [listSome(report.missing)] : [], unexpected: report.unexpected.length ? [listSome(report.unexpected)] : [] }).replace(/\((\d+)\)/g, '($1)')}; pass { strict: false } to load anyway`,
  );
}

function readConfig(config: string | Record<string, unknown>): Record<string, unknown> {
  if (typeof config !== 'string') return config;
  try {
    return JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(
      `loadCheckpoint: cannot read config ${config} (${(e as Error).message}); pass the repository's config.json`,
    );
  }
}

/** Which keys of `sd` the model lacks, which it has that `sd` lacks, and which differ in shape. */
function compareKeys(model: ImageClassifier, sd: StateDict): LoadReport {
  const own = model.stateDict();
  const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
  for (const [key, t] of sd) {
    const target = own.get(key);
    if (!target) report.unexpected.push(key);
    else if (!shapesEqual(target.shape, t.shape))
      report.mismatched.push({ key, expected: target.shape, got: t.shape });
  }
  for (const key of own.keys()) if (!sd.has(key) && !OPTIONAL_KEYS.test(key)) report.missing.push(key);
  return report;
}

function applyCheckpoint(
  model: ImageClassifier,
  path: string,
  raw: StateDict,
  dtypes: Map<string, SafetensorsDType>,
  options: LoadCheckpointOptions,
): CheckpointReport {
  const filtered = model.filterCheckpoint(cleanStateDict(raw));
  let config: Record<string, unknown> | undefined;
  if (options.config) config = readConfig(options.config);
  else if (filtered.source === 'huggingface' && existsSync(join(dirname(path), 'config.json'))) {
    config = readConfig(join(dirname(path), 'config.json'));
  }
  if (config?.model_type) {
    const type = String(config.model_type);
    const compatible =
      type === model.family ||
      (type === 'deit' && model.family === 'vit') ||
      (type === 'vit' && model.family === 'deit');
    if (!compatible) {
      throw new Error(
        `loadCheckpoint: the config says model_type '${type}' but the model is ${describeModel(model)}; build the model from the config (glimpse classify --config config.json)`,
      );
    }
  }
  const sd = filtered.stateDict;
  const report = compareKeys(model, sd);
  const problems = report.missing.length + report.unexpected.length + report.mismatched.length;
  if (report.mismatched.length > 0 || (problems > 0 && options.strict !== false))
    throw fitError(model, path, report, sd);
  model.loadStateDict(sd, { strict: false });
  const labels = config ? hfLabels(config) : undefined;
  if (labels && labels.length === model.numClasses && model.pretrainedCfg)
    model.pretrainedCfg.labels = labels;
  const counts: Partial<Record<SafetensorsDType, number>> = {};
  for (const d of dtypes.values()) counts[d] = (counts[d] ?? 0) + 1;
  return {
    ...report,
    path,
    source: filtered.source,
    dtypes: counts,
    loaded: sd.size - report.unexpected.length,
    notes: filtered.notes,
  };
}

/** loadCheckpoint without the promise. */
export function loadCheckpointSync(
  model: ImageClassifier,
  path: string,
  options: LoadCheckpointOptions = {},
): CheckpointReport {
  const { stateDict, dtypes } = readCheckpoint(path);
  return applyCheckpoint(model, path, stateDict, dtypes, options);
}

/** Loads a safetensors checkpoint (timm, Hugging Face or torchvision names; F32/F16/BF16) into `model`. */
export async function loadCheckpoint(
  model: ImageClassifier,
  path: string,
  options: LoadCheckpointOptions = {},
): Promise<CheckpointReport> {
  return loadCheckpointSync(model, path, options);
}

/**
 * A Hugging Face repository's model: built from its config.json (ViT, DeiT, Swin, ConvNeXt, ResNet;
 * the head from `architectures`, else from the checkpoint's keys), then loaded.
 */
export function loadHfModel(
  weightsPath: string,
  config: string | Record<string, unknown>,
): { model: ImageClassifier; report: CheckpointReport } {
  const cfg = readConfig(config);
  const { stateDict, dtypes } = readCheckpoint(weightsPath);
  // The checkpoint replaces every weight: skip the random init.
  const model = modelFromHfConfig(cfg, stateDict.keys(), { weightInit: 'skip' });
  const report = applyCheckpoint(model, weightsPath, stateDict, dtypes, { config: cfg });
  return { model, report };
}
