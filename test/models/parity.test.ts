/**
 * Every classification fixture (timm, Hugging Face, torchvision and glimpse's own timm variants) through
 * verifyFixture: the output and every attention map, or the loss, every gradient and every parameter
 * after one AdamW step, within the fixture's |a-b| <= tol + tol*|b|.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import '../../src/index.js';
import { resampleAbsPosEmbed } from '../../src/models/vit.js';
import { type VerifyResult, verifyFixture } from '../../src/models/verify.js';
import { assertClose } from '../helpers/assert.js';
import { fixturePath, get, loadFixture } from '../helpers/fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..');

function assertVerified(r: VerifyResult, expectedMaps: number): void {
  const failed = r.comparisons.filter((c) => !c.ok);
  assert.deepEqual(
    failed.map((c) => `${c.what}: max abs err ${c.maxAbs}`),
    [],
    `${r.name} differs from ${r.constructor} beyond ${r.tolerance}`,
  );
  const maps = r.comparisons.filter((c) => /^attn\.\d+$/.test(c.what));
  assert.equal(maps.length, expectedMaps, `${r.name}: attention maps compared`);
  assert.ok(
    r.comparisons.some((c) => c.what === 'output' || c.what === 'loss'),
    `${r.name}: nothing compared`,
  );
}

function expectedMaps(group: string, name: string): number {
  const meta = JSON.parse(readFileSync(fixturePath(`${group}/fixtures.json`), 'utf8'));
  return meta.fixtures[name].attention_maps ?? 0;
}

describe('peer fixtures (timm 1.0.29, transformers 5.17)', () => {
  const names = [
    'timm_vit',
    'timm_deit_distilled',
    'timm_swin',
    'timm_convnext',
    'timm_mixer',
    'timm_convmixer',
    'timm_resnet_bottleneck',
    'hf_vit',
  ];
  for (const name of names) {
    test(`${name}: output and every attention map`, () => {
      assertVerified(verifyFixture(fixturePath('peers'), name), expectedMaps('peers', name));
    });
  }

  test('timm_resnet_bottleneck is read from BF16', () => {
    const r = verifyFixture(fixturePath('peers'), 'timm_resnet_bottleneck');
    assert.ok(
      (r.load.dtypes.BF16 ?? 0) > 0 && r.load.dtypes.F32 === undefined,
      JSON.stringify(r.load.dtypes),
    );
  });

  test('hf_vit: Hugging Face names mapped, model built from its config.json', () => {
    const r = verifyFixture(fixturePath('peers'), 'hf_vit');
    assert.equal(r.load.source, 'huggingface');
  });

  test('timm_vit_train: loss, every gradient and every parameter after one AdamW step', () => {
    const r = verifyFixture(fixturePath('peers'), 'timm_vit_train');
    assertVerified(r, 0);
    const io = loadFixture('peers/timm_vit_train.io.safetensors');
    const params = [...io.keys()].filter((k) => k.startsWith('grad.')).length;
    assert.equal(params, 44);
    assert.equal(r.comparisons.filter((c) => c.what.startsWith('grad.')).length, params);
    assert.equal(r.comparisons.filter((c) => c.what.startsWith('after.')).length, params);
  });
});

describe('torchvision fixture', () => {
  test('torchvision_vit: torchvision names mapped, output matches', () => {
    const r = verifyFixture(fixturePath('torch'), 'torchvision_vit');
    assert.equal(r.load.source, 'torchvision');
    assertVerified(r, 0);
  });
});

describe('timm variants (test/fixtures/models, tools/gen_model_fixtures.py)', () => {
  const cases: Array<[string, string]> = [
    ['vit_avgpool', 'no class token, avg pooling with fc_norm, no qkv bias'],
    ['vit_reg', 'register tokens, position embeddings without the prefix tokens'],
    ['vit_layerscale', 'LayerScale, pre-norm, fc_norm'],
    ['vit_resampled', 'a 32x32 checkpoint loaded into a 48x40 model (pos_embed resampled as timm does)'],
    ['swin_w7', 'window 7 with a stage as large as its window (no shift there)'],
    ['swin_train', 'Swin training step: relative position bias table gradients, AdamW'],
    ['resnet_basic_f16', 'BasicBlock ResNet stored in F16'],
  ];
  for (const [name, what] of cases) {
    test(`${name}: ${what}`, () => {
      assertVerified(verifyFixture(fixturePath('models'), name), expectedMaps('models', name));
    });
  }

  test('resampleAbsPosEmbed matches timm.layers.resample_abs_pos_embed (bicubic, antialiased)', () => {
    const io = loadFixture('models/resample_abs_pos_embed.io.safetensors');
    const out = resampleAbsPosEmbed(get(io, 'posemb'), [10, 12], 1);
    assertClose(out, get(io, 'resampled'), 1e-4, 'resampled');
  });
});

describe('glimpse verify (CLI)', () => {
  test('passes timm_vit and prints the errors', () => {
    const r = spawnSync(process.execPath, ['bin/glimpse.js', 'verify', 'test/fixtures/peers', 'timm_vit'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /max abs err/);
    assert.match(r.stdout, /attn\.2 /);
    assert.match(r.stdout, /timm_vit: all 4 checks within tolerance/);
  });

  test('an unknown fixture is a one-line error and a non-zero exit', () => {
    const r = spawnSync(process.execPath, ['bin/glimpse.js', 'verify', 'test/fixtures/peers', 'no_such'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /^glimpse: verify: no fixture 'no_such'/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
