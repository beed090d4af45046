/**
 * Checkpoint loading beyond the fixtures' own names: F16 conversion, Hugging Face layouts of DeiT, Swin
 * and ConvNeXt (transformers 4 and 5 names) built from a config.json, bare *Model checkpoints, and
 * DistributedDataParallel prefixes. The Hugging Face files are the timm fixtures renamed the way
 * transformers names them, so the logits must not move.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { noGrad, writeSafetensors } from '../../src/index.js';
import { loadCheckpointSync, loadHfModel } from '../../src/models/checkpoint.js';
import { createModelFromConstructor } from '../../src/models/registry.js';
import { chunk } from '../../src/ops/shape.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath, get, loadFixture } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'glimpse-ckpt-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function peers(name: string): { weights: Map<string, Tensor>; io: Map<string, Tensor> } {
  return {
    weights: loadFixture(`peers/${name}.safetensors`),
    io: loadFixture(`peers/${name}.io.safetensors`),
  };
}

/** Renames with [regex, replacement] rules; qkv tensors split into three renamed parts. */
function rename(
  sd: Map<string, Tensor>,
  rules: Array<[RegExp, string]>,
  qkv: (key: string) => [string, string, string] | null,
): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, v] of sd) {
    const split = qkv(k);
    if (split) {
      chunk(v, 3, 0).forEach((part, i) => {
        out.set(split[i], part);
      });
      continue;
    }
    const rule = rules.find(([re]) => re.test(k));
    out.set(rule ? k.replace(rule[0], rule[1]) : k, v);
  }
  return out;
}

function labels(n: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), `class_${i}`]));
}

function writeRepo(name: string, sd: Map<string, Tensor>, config: Record<string, unknown>): [string, string] {
  const weights = join(dir, `${name}.safetensors`);
  const configPath = join(dir, `${name}.config.json`);
  writeSafetensors(weights, sd);
  writeFileSync(configPath, JSON.stringify(config));
  return [weights, configPath];
}

function logitsOf(model: ReturnType<typeof loadHfModel>['model'], input: Tensor): Tensor {
  model.eval();
  return noGrad(() => model.forward(input));
}

describe('dtypes', () => {
  test('F16 weights convert to float32 on load (logits within F16 rounding)', () => {
    const { weights, io } = peers('timm_vit');
    const path = join(dir, 'vit_f16.safetensors');
    writeSafetensors(path, weights, { dtype: 'F16' });
    const model = createModelFromConstructor('timm.models.vision_transformer.VisionTransformer', {
      img_size: 32,
      patch_size: 4,
      num_classes: 10,
      embed_dim: 64,
      depth: 3,
      num_heads: 4,
    });
    const report = loadCheckpointSync(model, path);
    assert.deepEqual(report.dtypes, { F16: 44 });
    assertClose(logitsOf(model, get(io, 'input')), get(io, 'output'), 2e-2, 'F16 logits');
  });

  test('module. prefixes (DistributedDataParallel) come off', () => {
    const { weights, io } = peers('timm_mixer');
    const path = join(dir, 'ddp.safetensors');
    writeSafetensors(path, new Map([...weights].map(([k, v]) => [`module.${k}`, v])));
    const model = createModelFromConstructor('timm.models.mlp_mixer.MlpMixer', {
      img_size: 32,
      patch_size: 4,
      num_blocks: 2,
      embed_dim: 64,
      num_classes: 10,
    });
    loadCheckpointSync(model, path);
    assertClose(logitsOf(model, get(io, 'input')), get(io, 'output'), 1e-4, 'logits');
  });
});

describe('Hugging Face layouts built from config.json', () => {
  test('DeiTForImageClassificationWithTeacher (transformers 4 names)', () => {
    const { weights, io } = peers('timm_deit_distilled');
    const sd = rename(
      weights,
      [
        [/^cls_token$/, 'deit.embeddings.cls_token'],
        [/^dist_token$/, 'deit.embeddings.distillation_token'],
        [/^pos_embed$/, 'deit.embeddings.position_embeddings'],
        [/^patch_embed\.proj\./, 'deit.embeddings.patch_embeddings.projection.'],
        [/^blocks\.(\d+)\.norm1\./, 'deit.encoder.layer.$1.layernorm_before.'],
        [/^blocks\.(\d+)\.norm2\./, 'deit.encoder.layer.$1.layernorm_after.'],
        [/^blocks\.(\d+)\.attn\.proj\./, 'deit.encoder.layer.$1.attention.output.dense.'],
        [/^blocks\.(\d+)\.mlp\.fc1\./, 'deit.encoder.layer.$1.intermediate.dense.'],
        [/^blocks\.(\d+)\.mlp\.fc2\./, 'deit.encoder.layer.$1.output.dense.'],
        [/^norm\./, 'deit.layernorm.'],
        [/^head\./, 'cls_classifier.'],
        [/^head_dist\./, 'distillation_classifier.'],
      ],
      (k) => {
        const m = /^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$/.exec(k);
        const base = m && `deit.encoder.layer.${m[1]}.attention.attention`;
        return m ? [`${base}.query.${m[2]}`, `${base}.key.${m[2]}`, `${base}.value.${m[2]}`] : null;
      },
    );
    const [w, c] = writeRepo('hf_deit', sd, {
      model_type: 'deit',
      architectures: ['DeiTForImageClassificationWithTeacher'],
      hidden_size: 48,
      num_hidden_layers: 2,
      num_attention_heads: 3,
      intermediate_size: 192,
      image_size: 32,
      patch_size: 4,
      layer_norm_eps: 1e-6,
      id2label: labels(10),
    });
    const { model, report } = loadHfModel(w, c);
    assert.equal(report.source, 'huggingface');
    assert.equal(model.pretrainedCfg.labels?.[3], 'class_3');
    assertClose(logitsOf(model, get(io, 'input')), get(io, 'output'), 1e-4, 'DeiT logits');
  });

  test('SwinForImageClassification (transformers 5 names; downsample moves to the next stage)', () => {
    const { weights, io } = peers('timm_swin');
    const sd = rename(
      weights,
      [
        [/^patch_embed\.proj\./, 'swin.embeddings.patch_embeddings.projection.'],
        [/^patch_embed\.norm\./, 'swin.embeddings.norm.'],
        [/^layers\.1\.downsample\./, 'swin.encoder.layers.0.downsample.'],
        [/^layers\.(\d+)\.blocks\.(\d+)\.norm1\./, 'swin.encoder.layers.$1.blocks.$2.layernorm_before.'],
        [/^layers\.(\d+)\.blocks\.(\d+)\.norm2\./, 'swin.encoder.layers.$1.blocks.$2.layernorm_after.'],
        [
          /^layers\.(\d+)\.blocks\.(\d+)\.attn\.relative_position_bias_table$/,
          'swin.encoder.layers.$1.blocks.$2.attention.relative_position_bias.relative_position_bias_table',
        ],
        [/^layers\.(\d+)\.blocks\.(\d+)\.attn\.proj\./, 'swin.encoder.layers.$1.blocks.$2.attention.o_proj.'],
        [/^layers\.(\d+)\.blocks\.(\d+)\.mlp\./, 'swin.encoder.layers.$1.blocks.$2.mlp.'],
        [/^norm\./, 'swin.layernorm.'],
        [/^head\.fc\./, 'classifier.'],
      ],
      (k) => {
        const m = /^layers\.(\d+)\.blocks\.(\d+)\.attn\.qkv\.(weight|bias)$/.exec(k);
        const base = m && `swin.encoder.layers.${m[1]}.blocks.${m[2]}.attention`;
        return m ? [`${base}.q_proj.${m[3]}`, `${base}.k_proj.${m[3]}`, `${base}.v_proj.${m[3]}`] : null;
      },
    );
    const [w, c] = writeRepo('hf_swin', sd, {
      model_type: 'swin',
      image_size: 64,
      patch_size: 4,
      embed_dim: 32,
      depths: [2, 2],
      num_heads: [2, 4],
      window_size: 4,
      id2label: labels(10),
    });
    const { model, report } = loadHfModel(w, c);
    assert.equal(report.source, 'huggingface');
    assertClose(logitsOf(model, get(io, 'input')), get(io, 'output'), 1e-4, 'Swin logits');
  });

  test('ConvNextForImageClassification (transformers 4 names)', () => {
    const { weights, io } = peers('timm_convnext');
    const sd = rename(
      weights,
      [
        [/^stem\.0\./, 'convnext.embeddings.patch_embeddings.'],
        [/^stem\.1\./, 'convnext.embeddings.layernorm.'],
        [/^stages\.(\d+)\.downsample\.(\d)\./, 'convnext.encoder.stages.$1.downsampling_layer.$2.'],
        [/^stages\.(\d+)\.blocks\.(\d+)\.conv_dw\./, 'convnext.encoder.stages.$1.layers.$2.dwconv.'],
        [/^stages\.(\d+)\.blocks\.(\d+)\.norm\./, 'convnext.encoder.stages.$1.layers.$2.layernorm.'],
        [/^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\./, 'convnext.encoder.stages.$1.layers.$2.pwconv1.'],
        [/^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\./, 'convnext.encoder.stages.$1.layers.$2.pwconv2.'],
        [
          /^stages\.(\d+)\.blocks\.(\d+)\.gamma$/,
          'convnext.encoder.stages.$1.layers.$2.layer_scale_parameter',
        ],
        [/^head\.norm\./, 'convnext.layernorm.'],
        [/^head\.fc\./, 'classifier.'],
      ],
      () => null,
    );
    const [w, c] = writeRepo('hf_convnext', sd, {
      model_type: 'convnext',
      hidden_sizes: [16, 32, 48, 64],
      depths: [1, 1, 2, 1],
      layer_norm_eps: 1e-6,
      id2label: labels(10),
    });
    const { model } = loadHfModel(w, c);
    assertClose(logitsOf(model, get(io, 'input')), get(io, 'output'), 1e-4, 'ConvNeXt logits');
  });

  test('a bare ViTModel (no prefix, pooler) loads into a headless ViT and says what it dropped', () => {
    const { weights, io } = peers('hf_vit');
    const sd = new Map<string, Tensor>();
    for (const [k, v] of weights) if (!k.startsWith('classifier.')) sd.set(k.replace(/^vit\./, ''), v);
    // ViTModel's pooler (dense + tanh on the class token) has no place in a timm classifier.
    sd.set('pooler.dense.weight', get(weights, 'vit.layers.0.attention.q_proj.weight'));
    const [w, c] = writeRepo('hf_vit_bare', sd, {
      model_type: 'vit',
      architectures: ['ViTModel'],
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 128,
      image_size: 32,
      patch_size: 4,
    });
    const { model, report } = loadHfModel(w, c);
    assert.equal(model.numClasses, 0);
    assert.match(report.notes.join(' '), /pooler\.dense\.weight/);
    const feats = logitsOf(model, get(io, 'input'));
    assert.deepEqual(feats.shape, [2, 64]);
  });

  test('a config.json next to Hugging Face weights supplies the class names', () => {
    const model = createModelFromConstructor('transformers.ViTForImageClassification', {
      hidden_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 128,
      image_size: 32,
      patch_size: 4,
      num_labels: 10,
    });
    const report = loadCheckpointSync(model, fixturePath('peers/hf_vit.safetensors'), {
      config: fixturePath('peers/hf_vit.config.json'),
    });
    assert.equal(report.source, 'huggingface');
    assert.equal(model.pretrainedCfg.labels?.[9], 'LABEL_9');
  });
});
