/**
 * The segmentation models by kind, and their checkpoints: glimpse's own (safetensors whose metadata
 * carries the model kind, its config, the class names and the input normalization), or a bare state
 * dict in MONAI's (UNETR) or the TransUNet authors' names, whose config is read off the tensor shapes.
 */
import { readCheckpoint } from '../models/checkpoint.js';
import { TRANSUNET_DEFAULTS, TransUNet } from '../models/transunet.js';
import { UNETR, UNETR_DEFAULTS } from '../models/unetr.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { describeLoadReport, type StateDict } from '../nn/module.js';
import { argmax } from '../ops/reduce.js';
import { noGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export type SegmentationModelKind = 'transunet' | 'unetr';
export type SegmentationModel = TransUNet | UNETR;

export const CHECKPOINT_FORMAT = 'glimpse.segment/1';

export function createSegmentationModel(
  kind: SegmentationModelKind,
  config: Record<string, unknown>,
): SegmentationModel {
  if (kind === 'transunet') return new TransUNet(config);
  if (kind === 'unetr') return new UNETR(config);
  throw new Error(`createSegmentationModel: model must be 'transunet' or 'unetr', got '${kind}'`);
}

/** The spatial input size the model was built for (its sliding-window size). */
export function modelInputSize(model: SegmentationModel): number[] {
  if (model instanceof UNETR) return [...model.imgSize];
  const s = model.config.imgSize;
  return typeof s === 'number' ? [s, s] : [...s];
}

export function modelInChannels(model: SegmentationModel): number {
  return model instanceof UNETR ? model.config.inChannels : model.config.inChans;
}

export interface SegmentationCheckpointInfo {
  kind: SegmentationModelKind;
  config: Record<string, unknown>;
  /** Class names, background first. */
  classes: string[];
  /** Input normalization (x - mean) / std applied before the model. */
  mean: number;
  std: number;
  /** Anything else worth keeping (preset, epoch, metrics), stored as JSON. */
  extra?: Record<string, unknown>;
}

export function saveSegmentationCheckpoint(
  path: string,
  model: SegmentationModel,
  info: SegmentationCheckpointInfo,
): void {
  writeSafetensors(path, model.stateDict(), {
    metadata: {
      format: CHECKPOINT_FORMAT,
      model: info.kind,
      config: JSON.stringify(info.config),
      classes: JSON.stringify(info.classes),
      mean: String(info.mean),
      std: String(info.std),
      extra: JSON.stringify(info.extra ?? {}),
    },
  });
}

/** MONAI UNETR's config from its state dict's shapes (patch, hidden, layers, channels, image size). */
function inferUnetrConfig(sd: StateDict): Record<string, unknown> {
  const pos = sd.get('vit.patch_embedding.position_embeddings');
  const out = sd.get('out.conv.conv.weight');
  const enc = sd.get('encoder1.layer.conv1.conv.weight');
  if (!pos || !out || !enc) {
    throw new Error(
      'loadSegmentationCheckpoint: a UNETR state dict needs vit.patch_embedding.position_embeddings, encoder1 and out.conv.conv',
    );
  }
  const layers = new Set([...sd.keys()].map((k) => /^vit\.blocks\.(\d+)\./.exec(k)?.[1]).filter(Boolean))
    .size;
  const decoders = [...sd.keys()].filter((k) => /^decoder\d+\.transp_conv\.conv\.weight$/.test(k)).length;
  const patchSize = 2 ** decoders;
  const grid = Math.round(Math.cbrt(pos.shape[1]));
  if (grid ** 3 !== pos.shape[1]) {
    throw new Error(
      `loadSegmentationCheckpoint: ${pos.shape[1]} UNETR position embeddings are not a cubic grid; pass --config`,
    );
  }
  const fc1 = sd.get('vit.blocks.0.mlp.linear1.weight') ?? sd.get('vit.blocks.0.mlp.fc1.weight');
  const hidden = pos.shape[2];
  const hasBn = sd.has('encoder1.layer.norm1.weight');
  const monaiSkips: Record<number, number[]> = { 16: [3, 6, 9] };
  return {
    inChannels: enc.shape[1],
    outChannels: out.shape[0],
    imgSize: grid * patchSize,
    patchSize,
    featureSize: enc.shape[0],
    hiddenSize: hidden,
    mlpDim: fc1 ? fc1.shape[0] : UNETR_DEFAULTS.mlpDim,
    numHeads: hidden === 768 ? 12 : UNETR_DEFAULTS.numHeads,
    numLayers: layers,
    skipLayers: monaiSkips[patchSize] ?? UNETR_DEFAULTS.skipLayers,
    normName: hasBn ? 'batch' : 'instance',
    qkvBias: sd.has('vit.blocks.0.attn.qkv.bias'),
    weightInit: 'skip',
  };
}

/** The TransUNet authors' R50-ViT-B_16 / ViT-B_16 config from a state dict's shapes. */
function inferTransUnetConfig(sd: StateDict): Record<string, unknown> {
  const head = sd.get('segmentation_head.0.weight');
  const pos = sd.get('transformer.embeddings.position_embeddings');
  const patch = sd.get('transformer.embeddings.patch_embeddings.weight');
  if (!head || !pos || !patch) {
    throw new Error(
      'loadSegmentationCheckpoint: a TransUNet state dict needs segmentation_head.0, the position and patch embeddings',
    );
  }
  const hybrid = sd.has('transformer.embeddings.hybrid_model.root.conv.weight');
  const grid = Math.round(Math.sqrt(pos.shape[1]));
  const patchSize = hybrid ? 16 : patch.shape[2];
  const layers = new Set(
    [...sd.keys()].map((k) => /^transformer\.encoder\.layer\.(\d+)\./.exec(k)?.[1]).filter(Boolean),
  ).size;
  const units = [1, 2, 3].map(
    (b) =>
      [...sd.keys()].filter((k) =>
        new RegExp(`hybrid_model\\.body\\.block${b}\\.unit\\d+\\.conv1\\.weight$`).test(k),
      ).length,
  );
  const decoderChannels = [0, 1, 2, 3].map(
    (i) => sd.get(`decoder.blocks.${i}.conv2.0.weight`)?.shape[0] ?? 0,
  );
  const skips = [0, 1, 2].filter((i) => {
    const w = sd.get(`decoder.blocks.${i}.conv1.0.weight`);
    const inC = i === 0 ? sd.get('decoder.conv_more.0.weight')?.shape[0] : decoderChannels[i - 1];
    return w && inC !== undefined && w.shape[1] > inC;
  }).length;
  const hidden = pos.shape[2];
  return {
    imgSize: grid * patchSize,
    inChans: hybrid
      ? sd.get('transformer.embeddings.hybrid_model.root.conv.weight')!.shape[1]
      : patch.shape[1],
    numClasses: head.shape[0],
    encoder: hybrid ? 'hybrid' : 'vit',
    resnetLayers: hybrid ? units : TRANSUNET_DEFAULTS.resnetLayers,
    resnetWidth: hybrid
      ? sd.get('transformer.embeddings.hybrid_model.root.conv.weight')!.shape[0]
      : TRANSUNET_DEFAULTS.resnetWidth,
    patchSize,
    hiddenSize: hidden,
    numLayers: layers,
    numHeads: hidden === 768 ? 12 : TRANSUNET_DEFAULTS.numHeads,
    mlpDim: (
      sd.get('transformer.encoder.layer.0.ffn.fc1.weight') ??
      sd.get('transformer.encoder.layer.0.mlp.fc1.weight')
    )?.shape[0],
    decoderChannels: decoderChannels.filter((c) => c > 0),
    headChannels: sd.get('decoder.conv_more.0.weight')?.shape[0],
    nSkip: hybrid ? skips : 0,
    weightInit: 'skip',
  };
}

export interface LoadedSegmentationModel {
  model: SegmentationModel;
  info: SegmentationCheckpointInfo;
  notes: string[];
}

/**
 * A glimpse segmentation checkpoint, or a MONAI UNETR / reference TransUNet state dict (config from
 * the shapes, overridden by `config`; classes numbered, normalization mean 0 std 1).
 */
export function loadSegmentationCheckpoint(
  path: string,
  options: { kind?: SegmentationModelKind; config?: Record<string, unknown> } = {},
): LoadedSegmentationModel {
  let file: ReturnType<typeof readSafetensors>;
  try {
    file = readSafetensors(path);
  } catch (e) {
    readCheckpoint(path); // throws the error that says what the file is and what to do
    throw e;
  }
  const meta = file.metadata;
  const notes: string[] = [];
  let info: SegmentationCheckpointInfo;
  let sd = file.tensors;
  if (meta.format === CHECKPOINT_FORMAT) {
    info = {
      kind: meta.model as SegmentationModelKind,
      config: { ...JSON.parse(meta.config), weightInit: 'skip', ...options.config },
      classes: JSON.parse(meta.classes),
      mean: Number(meta.mean),
      std: Number(meta.std),
      extra: JSON.parse(meta.extra ?? '{}'),
    };
    if (options.kind && options.kind !== info.kind) {
      throw new Error(
        `loadSegmentationCheckpoint: ${path} holds a ${info.kind} model, not ${options.kind}; pass --model ${info.kind}`,
      );
    }
  } else {
    const keys = [...sd.keys()];
    const kind: SegmentationModelKind | undefined = keys.some((k) => k.startsWith('vit.patch_embedding.'))
      ? 'unetr'
      : keys.some((k) => k.startsWith('transformer.embeddings.'))
        ? 'transunet'
        : undefined;
    if (!kind) {
      throw new Error(
        `loadSegmentationCheckpoint: ${path} is neither a glimpse segmentation checkpoint nor a MONAI UNETR / TransUNet state dict (first keys: ${keys.slice(0, 3).join(', ')})`,
      );
    }
    if (options.kind && options.kind !== kind) {
      throw new Error(
        `loadSegmentationCheckpoint: ${path} looks like a ${kind} checkpoint, not ${options.kind}`,
      );
    }
    const inferred = kind === 'unetr' ? inferUnetrConfig(sd) : inferTransUnetConfig(sd);
    const config = { ...inferred, ...options.config };
    const classes = Number(kind === 'unetr' ? config.outChannels : config.numClasses);
    info = {
      kind,
      config,
      classes: ['background', ...Array.from({ length: classes - 1 }, (_, i) => `class ${i + 1}`)],
      mean: 0,
      std: 1,
    };
    notes.push(`built ${kind} from the checkpoint's shapes: ${JSON.stringify(config)}`);
  }
  const model = createSegmentationModel(info.kind, info.config);
  const filtered = model.filterCheckpoint(sd);
  sd = filtered.stateDict;
  notes.push(...filtered.notes);
  // BatchNorm's step counter carries no learned value; checkpoints from other code may lack it.
  for (const [k, t] of model.stateDict()) if (k.endsWith('num_batches_tracked') && !sd.has(k)) sd.set(k, t);
  const report = model.loadStateDict(sd, { strict: false });
  if (report.missing.length || report.unexpected.length || report.mismatched.length) {
    throw new Error(
      `loadSegmentationCheckpoint: ${path} does not fit the ${info.kind} model: ${describeLoadReport(report)}`,
    );
  }
  if (info.classes.length !== model.numClasses) {
    throw new Error(
      `loadSegmentationCheckpoint: ${path} names ${info.classes.length} classes but the model outputs ${model.numClasses}`,
    );
  }
  model.eval();
  return { model, info, notes };
}

/** Class index per pixel/voxel of logits (B, K, ...spatial) → (B, ...spatial) bytes. */
export function predictLabels(logits: Tensor): Uint8Array {
  if (logits.ndim < 3)
    throw new Error(`predictLabels: expected logits (B, K, ...spatial), got ${fmt(logits.shape)}`);
  const idx = noGrad(() => argmax(logits, 1));
  return Uint8Array.from(idx.data as ArrayLike<number>, Number);
}
