/**
 * DETR checkpoints and configs: Hugging Face config.json ↔ DetrConfig, and one filter that maps the
 * layouts people have onto DetrForObjectDetection's names:
 * - transformers 5 (`model.backbone.model.*`, `o_proj`, `mlp.fc1`): the model's own names;
 * - transformers 4 (`model.backbone.conv_encoder.model.*`, `out_proj`, `fc1`), e.g. facebook/detr-resnet-50;
 * - facebookresearch/detr (`backbone.0.body.*`, `transformer.encoder.layers.0.self_attn.in_proj_weight`,
 *   `linear1`, `norm1`, `query_embed`, `class_embed`, `bbox_embed`), packed q/k/v split in three;
 * - Hugging Face ResNet backbones (`embedder.embedder.convolution`, `encoder.stages.0.layers.0`) under
 *   any of these prefixes, renamed to timm's ResNet names.
 */
import { readFileSync } from 'node:fs';
import { describeLoadReport, type StateDict } from '../nn/module.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import { readCheckpoint } from './checkpoint.js';
import { type DetrBackboneConfig, type DetrConfig, DetrForObjectDetection } from './detr.js';
import { hfLabels } from './registry.js';
import { filterResNetCheckpoint } from './resnet.js';

const BACKBONE = 'model.backbone.model.';

/** timm / torchvision ResNet depths by name (DETR's `backbone` with use_timm_backbone). */
const TIMM_RESNETS: Record<string, Pick<DetrBackboneConfig, 'block' | 'layers'>> = {
  resnet18: { block: 'basic', layers: [2, 2, 2, 2] },
  resnet34: { block: 'basic', layers: [3, 4, 6, 3] },
  resnet50: { block: 'bottleneck', layers: [3, 4, 6, 3] },
  resnet101: { block: 'bottleneck', layers: [3, 4, 23, 3] },
  resnet152: { block: 'bottleneck', layers: [3, 8, 36, 3] },
};

function readJson(config: string | Record<string, unknown>): Record<string, unknown> {
  if (typeof config !== 'string') return config;
  try {
    return JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(
      `DETR config: cannot read ${config} (${(e as Error).message}); pass the repository's config.json`,
    );
  }
}

function backboneFromHf(config: Record<string, unknown>): DetrBackboneConfig {
  if (config.dilation) {
    throw new Error(
      'DETR config: dilation (DC5 backbones) is not supported; use a checkpoint without dilation',
    );
  }
  const bc = config.backbone_config as Record<string, unknown> | null | undefined;
  if (config.use_timm_backbone || !bc) {
    const name = String(config.backbone ?? 'resnet50');
    const known = TIMM_RESNETS[name];
    if (!known) {
      throw new Error(
        `DETR config: backbone '${name}' is not supported; known: ${Object.keys(TIMM_RESNETS).join(', ')}`,
      );
    }
    const kwargs = (config.backbone_kwargs ?? {}) as Record<string, unknown>;
    const outIndices = (kwargs.out_indices as number[] | undefined) ?? [1, 2, 3, 4];
    return { ...known, channels: [64, 128, 256, 512], stemWidth: 64, outStage: Math.max(...outIndices) };
  }
  if (bc.model_type !== undefined && bc.model_type !== 'resnet') {
    throw new Error(
      `DETR config: backbone_config model_type '${String(bc.model_type)}' is not supported (resnet)`,
    );
  }
  if (bc.downsample_in_first_stage || bc.downsample_in_bottleneck) {
    throw new Error(
      'DETR config: ResNet backbones with downsample_in_first_stage or downsample_in_bottleneck are not supported',
    );
  }
  const block = bc.layer_type === 'basic' ? 'basic' : 'bottleneck';
  const hidden = (bc.hidden_sizes as number[] | undefined) ?? [256, 512, 1024, 2048];
  const layers = (bc.depths as number[] | undefined) ?? [3, 4, 6, 3];
  const outFeatures = bc.out_features as string[] | undefined;
  const outIndices = bc.out_indices as number[] | undefined;
  const outStage = outFeatures?.length
    ? Math.max(...outFeatures.map((f) => Number(/^stage(\d+)$/.exec(f)?.[1] ?? Number.NaN)))
    : outIndices?.length
      ? Math.max(...outIndices)
      : layers.length;
  if (!(outStage >= 1 && outStage <= layers.length)) {
    throw new Error(
      `DETR config: backbone out_features [${outFeatures}] name no stage of the ${layers.length}-stage ResNet`,
    );
  }
  return {
    block,
    layers,
    channels: hidden.map((h) => h / (block === 'basic' ? 1 : 4)),
    stemWidth: Number(bc.embedding_size ?? 64),
    outStage,
  };
}

/** A Hugging Face DetrConfig (config.json, a path or its parsed contents) as a DetrConfig. */
export function detrConfigFromHf(config: string | Record<string, unknown>): DetrConfig {
  const c = readJson(config);
  if (c.model_type !== undefined && c.model_type !== 'detr') {
    throw new Error(`DETR config: model_type is '${String(c.model_type)}', not 'detr'`);
  }
  if ((c.position_embedding_type ?? 'sine') !== 'sine') {
    throw new Error(
      `DETR config: position_embedding_type '${String(c.position_embedding_type)}' is not supported (sine)`,
    );
  }
  const act = String(c.activation_function ?? 'relu');
  if (act !== 'relu' && act !== 'gelu') {
    throw new Error(`DETR config: activation_function '${act}' is not supported (relu, gelu)`);
  }
  const labels = hfLabels(c);
  const num = (key: string, fallback: number) => Number(c[key] ?? fallback);
  return {
    numLabels: labels?.length ?? num('num_labels', 91),
    numQueries: num('num_queries', 100),
    dModel: num('d_model', 256),
    encoderLayers: num('encoder_layers', 6),
    decoderLayers: num('decoder_layers', 6),
    encoderAttentionHeads: num('encoder_attention_heads', 8),
    decoderAttentionHeads: num('decoder_attention_heads', 8),
    encoderFfnDim: num('encoder_ffn_dim', 2048),
    decoderFfnDim: num('decoder_ffn_dim', 2048),
    dropout: num('dropout', 0.1),
    attentionDropout: num('attention_dropout', 0),
    activationDropout: num('activation_dropout', 0),
    activation: act,
    numChannels: num('num_channels', 3),
    backbone: backboneFromHf(c),
    auxiliaryLoss: Boolean(c.auxiliary_loss ?? false),
    classCost: num('class_cost', 1),
    bboxCost: num('bbox_cost', 5),
    giouCost: num('giou_cost', 2),
    bboxLossCoefficient: num('bbox_loss_coefficient', 5),
    giouLossCoefficient: num('giou_loss_coefficient', 2),
    eosCoefficient: num('eos_coefficient', 0.1),
    ...(labels ? { labels } : {}),
  };
}

/** The config.json Hugging Face would write for this model (a ResNet backbone_config). */
export function detrConfigToHf(cfg: DetrConfig): Record<string, unknown> {
  const names = cfg.labels ?? Array.from({ length: cfg.numLabels }, (_, i) => `LABEL_${i}`);
  const expansion = cfg.backbone.block === 'basic' ? 1 : 4;
  const outStage = cfg.backbone.outStage ?? cfg.backbone.layers.length;
  return {
    model_type: 'detr',
    architectures: ['DetrForObjectDetection'],
    id2label: Object.fromEntries(names.map((n, i) => [String(i), n])),
    label2id: Object.fromEntries(names.map((n, i) => [n, i])),
    num_channels: cfg.numChannels,
    num_queries: cfg.numQueries,
    d_model: cfg.dModel,
    encoder_layers: cfg.encoderLayers,
    decoder_layers: cfg.decoderLayers,
    encoder_attention_heads: cfg.encoderAttentionHeads,
    decoder_attention_heads: cfg.decoderAttentionHeads,
    encoder_ffn_dim: cfg.encoderFfnDim,
    decoder_ffn_dim: cfg.decoderFfnDim,
    dropout: cfg.dropout,
    attention_dropout: cfg.attentionDropout,
    activation_dropout: cfg.activationDropout,
    activation_function: cfg.activation,
    position_embedding_type: 'sine',
    dilation: false,
    use_timm_backbone: false,
    backbone_config: {
      model_type: 'resnet',
      layer_type: cfg.backbone.block,
      depths: cfg.backbone.layers,
      hidden_sizes: cfg.backbone.channels.map((c) => c * expansion),
      embedding_size: cfg.backbone.stemWidth,
      num_channels: cfg.numChannels,
      out_features: [`stage${outStage}`],
    },
    auxiliary_loss: cfg.auxiliaryLoss,
    class_cost: cfg.classCost,
    bbox_cost: cfg.bboxCost,
    giou_cost: cfg.giouCost,
    bbox_loss_coefficient: cfg.bboxLossCoefficient,
    giou_loss_coefficient: cfg.giouLossCoefficient,
    eos_coefficient: cfg.eosCoefficient,
  };
}

const ORIGINAL_LAYER: Array<[RegExp, string]> = [
  [/^linear1\./, 'mlp.fc1.'],
  [/^linear2\./, 'mlp.fc2.'],
  [/^multihead_attn\./, 'encoder_attn.'],
];

/** A facebookresearch/detr transformer layer suffix (after `layers.N.`) in Hugging Face's names. */
function originalLayerKey(suffix: string, decoder: boolean): string {
  const norms = decoder
    ? { norm1: 'self_attn_layer_norm', norm2: 'encoder_attn_layer_norm', norm3: 'final_layer_norm' }
    : { norm1: 'self_attn_layer_norm', norm2: 'final_layer_norm' };
  const norm = /^(norm\d)\.(.+)$/.exec(suffix);
  if (norm && norm[1] in norms) return `${norms[norm[1] as keyof typeof norms]}.${norm[2]}`;
  let key = suffix;
  for (const [re, to] of ORIGINAL_LAYER) key = key.replace(re, to);
  return key.replace(/\.out_proj\./, '.o_proj.');
}

/** nn.MultiheadAttention's packed in_proj (3E, E) / (3E) as q_proj, k_proj, v_proj. */
function splitPacked(out: StateDict, prefix: string, kind: 'weight' | 'bias', t: Tensor): void {
  const rows = t.shape[0] / 3;
  const inner = t.size / t.shape[0];
  ['q_proj', 'k_proj', 'v_proj'].forEach((name, i) => {
    const data = (t.data as Float32Array).slice(i * rows * inner, (i + 1) * rows * inner);
    out.set(`${prefix}${name}.${kind}`, new Tensor(data, kind === 'weight' ? [rows, inner] : [rows]));
  });
}

export interface FilteredDetrCheckpoint {
  stateDict: StateDict;
  /** 'transformers', 'transformers-4', 'facebookresearch'. */
  source: string;
}

/** Renames any supported DETR layout to DetrForObjectDetection's names. */
export function filterDetrCheckpoint(sd: StateDict): FilteredDetrCheckpoint {
  const keys = [...sd.keys()];
  const original = keys.some((k) => k.startsWith('transformer.') || k.startsWith('backbone.0.body.'));
  const hf4 = keys.some(
    (k) => k.includes('backbone.conv_encoder.') || /\.out_proj\.|layers\.\d+\.fc1\./.test(k),
  );
  const out: StateDict = new Map();
  const backbone: StateDict = new Map();
  for (const [key, t] of sd) {
    if (/(?:^|\.)num_batches_tracked$/.test(key)) continue; // frozen batch norm has no counter
    let k = key.startsWith('module.') ? key.slice('module.'.length) : key;
    const bb = /^(?:model\.backbone\.(?:conv_encoder\.)?model\.|backbone\.0\.body\.)(.+)$/.exec(k);
    if (bb) {
      backbone.set(bb[1], t);
      continue;
    }
    if (original) {
      const layer = /^transformer\.(encoder|decoder)\.layers\.(\d+)\.(.+)$/.exec(k);
      if (layer) {
        const prefix = `model.${layer[1]}.layers.${layer[2]}.`;
        const packed = /^(self_attn|multihead_attn)\.in_proj_(weight|bias)$/.exec(layer[3]);
        if (packed) {
          const attn = packed[1] === 'self_attn' ? 'self_attn.' : 'encoder_attn.';
          splitPacked(out, prefix + attn, packed[2] as 'weight' | 'bias', t);
          continue;
        }
        out.set(prefix + originalLayerKey(layer[3], layer[1] === 'decoder'), t);
        continue;
      }
      k = k
        .replace(/^transformer\.decoder\.norm\./, 'model.decoder.layernorm.')
        .replace(/^input_proj\./, 'model.input_projection.')
        .replace(/^query_embed\./, 'model.query_position_embeddings.')
        .replace(/^class_embed\./, 'class_labels_classifier.')
        .replace(/^bbox_embed\./, 'bbox_predictor.');
    } else {
      k = k.replace(/\.out_proj\./, '.o_proj.').replace(/(layers\.\d+)\.(fc[12])\./, '$1.mlp.$2.');
    }
    out.set(k, t);
  }
  for (const [k, t] of filterResNetCheckpoint(backbone).stateDict) out.set(BACKBONE + k, t);
  return { stateDict: out, source: original ? 'facebookresearch' : hf4 ? 'transformers-4' : 'transformers' };
}

export interface LoadDetrOptions {
  /**
   * When the checkpoint was trained for another number of classes: keep this model's freshly
   * initialized class head instead of failing (fine-tuning to new classes).
   */
  reinitializeClassHead?: boolean;
  /** Accept missing / unexpected keys (reported, not thrown). Shape mismatches always throw. */
  strict?: boolean;
}

export interface DetrLoadReport {
  source: string;
  loaded: number;
  missing: string[];
  unexpected: string[];
  /** Keys skipped because the class head was re-initialized. */
  reinitialized: string[];
}

const CLASS_HEAD = /^class_labels_classifier\.(weight|bias)$/;

/** Loads a state dict (any supported layout) into a DETR, with one-line errors for what does not fit. */
export function loadDetrStateDict(
  model: DetrForObjectDetection,
  sd: StateDict,
  options: LoadDetrOptions = {},
  what = 'the checkpoint',
): DetrLoadReport {
  const filtered = filterDetrCheckpoint(sd);
  const own = model.stateDict();
  const reinitialized: string[] = [];
  const head = filtered.stateDict.get('class_labels_classifier.weight');
  const ownHead = own.get('class_labels_classifier.weight') as Tensor;
  if (head && head.shape[0] !== ownHead.shape[0]) {
    if (!options.reinitializeClassHead) {
      throw new Error(
        `loadDetr: ${what} detects ${head.shape[0] - 1} classes (+ no-object) but the model ${ownHead.shape[0] - 1}; build the model from the checkpoint's config.json, or pass { reinitializeClassHead: true } to fine-tune a new class head`,
      );
    }
    for (const k of [...filtered.stateDict.keys()]) {
      if (CLASS_HEAD.test(k)) {
        filtered.stateDict.delete(k);
        reinitialized.push(k);
      }
    }
  }
  const missing = [...own.keys()].filter((k) => !filtered.stateDict.has(k) && !reinitialized.includes(k));
  const unexpected = [...filtered.stateDict.keys()].filter((k) => !own.has(k));
  const mismatched = [...filtered.stateDict]
    .filter(([k, t]) => own.has(k) && !shapesEqual((own.get(k) as Tensor).shape, t.shape))
    .map(([key, t]) => ({ key, expected: (own.get(key) as Tensor).shape, got: t.shape }));
  if (mismatched.length > 0) {
    const m = mismatched[0];
    throw new Error(
      `loadDetr: ${what} does not fit the model: ${mismatched.length} tensors have other shapes (${m.key}: checkpoint ${fmt(m.got)}, model ${fmt(m.expected)}); build the model from the checkpoint's config.json`,
    );
  }
  if ((missing.length || unexpected.length) && options.strict !== false) {
    throw new Error(
      `loadDetr: ${what} (${filtered.source} names) does not fit the model: ${describeLoadReport({ missing: missing.slice(0, 5), unexpected: unexpected.slice(0, 5), mismatched: [] })}${missing.length + unexpected.length > 10 ? ' (first 5 of each)' : ''}; pass { strict: false } to load anyway`,
    );
  }
  model.loadStateDict(filtered.stateDict, { strict: false });
  return {
    source: filtered.source,
    loaded: filtered.stateDict.size - unexpected.length,
    missing,
    unexpected,
    reinitialized,
  };
}

/** Loads a safetensors DETR checkpoint (F32/F16/BF16, any supported layout) into `model`. */
export function loadDetrCheckpoint(
  model: DetrForObjectDetection,
  path: string,
  options: LoadDetrOptions = {},
): DetrLoadReport {
  return loadDetrStateDict(model, readCheckpoint(path).stateDict, options, path);
}

/** A DETR built from a Hugging Face config.json and loaded from its weights. */
export function loadHfDetr(
  weightsPath: string,
  config: string | Record<string, unknown>,
  options: LoadDetrOptions = {},
): { model: DetrForObjectDetection; report: DetrLoadReport } {
  const model = new DetrForObjectDetection(detrConfigFromHf(config));
  const report = loadDetrCheckpoint(model, weightsPath, options);
  return { model, report };
}
