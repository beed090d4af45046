/**
 * Bad input: a checkpoint for another architecture or size, a truncated or non-safetensors file, an
 * image that is not an image, a wrong input size for a fixed-size model. Each is one line that says
 * what to do; the CLI exits non-zero and writes nothing.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { randn, writeImage } from '../../src/index.js';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import type { ImageClassifier } from '../../src/models/classifier.js';
import { preprocessImage } from '../../src/models/preprocess.js';
import { createModel, createModelFromConstructor } from '../../src/models/registry.js';
import { rand } from '../../src/ops/creation.js';
import { fixturePath } from '../helpers/fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'glimpse-errors-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const truncated = join(dir, 'truncated.safetensors');
const bytes = readFileSync(fixturePath('peers/timm_vit.safetensors'));
writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
const pickle = join(dir, 'pytorch_model.bin');
writeFileSync(pickle, Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00]));
const notImage = join(dir, 'photo.jpg');
writeFileSync(notImage, 'this is a text file, not a JPEG\n');
const image = join(dir, 'image.png');

function smallVit(overrides: Record<string, unknown> = {}): ImageClassifier {
  return createModelFromConstructor('timm.models.vision_transformer.VisionTransformer', {
    img_size: 32,
    patch_size: 4,
    num_classes: 10,
    embed_dim: 64,
    depth: 3,
    num_heads: 4,
    ...overrides,
  });
}

async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected an error');
}

function oneLine(message: string): void {
  assert.ok(!message.includes('\n'), `not one line: ${message}`);
}

describe('loadCheckpoint errors', () => {
  test('a checkpoint of another architecture names what it looks like and what to do', async () => {
    const msg = await rejection(loadCheckpoint(smallVit(), fixturePath('peers/timm_swin.safetensors')));
    oneLine(msg);
    assert.match(msg, /does not fit VisionTransformer \(vit\)/);
    assert.match(msg, /looks like a swin/);
    assert.match(msg, /create that model instead/);
  });

  test('another size of the same architecture says which tensor differs', async () => {
    const msg = await rejection(
      loadCheckpoint(smallVit({ embed_dim: 32 }), fixturePath('peers/timm_vit.safetensors')),
    );
    oneLine(msg);
    assert.match(msg, /have other shapes/);
  });

  test('another number of classes asks for num_classes', async () => {
    const msg = await rejection(
      loadCheckpoint(smallVit({ num_classes: 5 }), fixturePath('peers/timm_vit.safetensors')),
    );
    oneLine(msg);
    assert.match(msg, /classifies 10 classes, the model 5; create the model with \{ num_classes: 10 \}/);
  });

  test('a truncated file says to download it again, and the model keeps its weights', async () => {
    const model = smallVit();
    const before = Float32Array.from(model.parameters()[0].data as Float32Array);
    const msg = await rejection(loadCheckpoint(model, truncated));
    oneLine(msg);
    assert.match(msg, /truncated\.safetensors/);
    assert.match(msg, /download it again/);
    assert.deepEqual(model.parameters()[0].data, before);
  });

  test('a PyTorch pickle is recognized and the conversion named', async () => {
    const msg = await rejection(loadCheckpoint(smallVit(), pickle));
    oneLine(msg);
    assert.match(msg, /is a Python pickle, not safetensors/);
  });

  test('a missing file', async () => {
    const msg = await rejection(loadCheckpoint(smallVit(), join(dir, 'nope.safetensors')));
    assert.match(msg, /does not exist/);
  });
});

describe('input errors', () => {
  test('a fixed-size ViT given another size says how to fix it', () => {
    const model = smallVit();
    assert.throws(
      () => model.forward(randn([1, 3, 64, 64])),
      /input is 64x64 but the model takes 32x32 \(fixed position embeddings\); resize the image to 32x32, or create the model with img_size \[64, 64\]/,
    );
  });

  test('MLP-Mixer (fixed number of tokens) and Swin (window grid) reject sizes they cannot take', () => {
    const mixer = createModel('mixer_b16_224', { img_size: 32, num_blocks: 1, embed_dim: 8 });
    assert.throws(() => mixer.forward(randn([1, 3, 48, 48])), /input is 48x48 but the model takes 32x32/);
    const swin = createModel('swin_tiny_patch4_window7_224', {
      embed_dim: 8,
      depths: [1, 1, 1, 1],
      num_heads: [1, 1, 1, 1],
    });
    assert.throws(() => swin.forward(randn([1, 3, 96, 96])), /does not divide into 7x7 windows/);
  });

  test('a batch without the batch dim', () => {
    assert.throws(
      () => smallVit().forward(randn([3, 32, 32])),
      /expected a float32 image batch \(B, 3, H, W\).*unsqueeze/,
    );
  });

  test('an image that is not an image', async () => {
    const msg = await rejection(preprocessImage(notImage, createModel('resnet18').pretrainedCfg));
    oneLine(msg);
    assert.match(msg, /photo\.jpg is not a readable image/);
  });
});

describe('glimpse classify', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, ['bin/glimpse.js', 'classify', ...args], { cwd: ROOT, encoding: 'utf8' });

  test('classifies a PNG with a Hugging Face checkpoint and its config.json', async () => {
    await writeImage(image, rand([3, 40, 50]));
    const r = run([
      image,
      '--config',
      fixturePath('peers/hf_vit.config.json'),
      '--weights',
      fixturePath('peers/hf_vit.safetensors'),
      '--top',
      '3',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.length, 1);
    assert.equal(out[0].top.length, 3);
    assert.match(out[0].top[0].label, /^LABEL_\d$/);
    const p = out[0].top.map((t: { probability: number }) => t.probability);
    assert.ok(p[0] >= p[1] && p[1] >= p[2]);
  });

  const bad: Array<[string, () => string[], RegExp]> = [
    [
      'weights of another architecture',
      () => [
        image,
        '--model',
        'vit_tiny_patch16_224',
        '--weights',
        fixturePath('peers/timm_swin.safetensors'),
      ],
      /looks like a swin/,
    ],
    [
      'a truncated checkpoint',
      () => [image, '--config', fixturePath('peers/hf_vit.config.json'), '--weights', truncated],
      /download it again/,
    ],
    [
      'an image that is not an image',
      () => [
        notImage,
        '--config',
        fixturePath('peers/hf_vit.config.json'),
        '--weights',
        fixturePath('peers/hf_vit.safetensors'),
      ],
      /not a readable image/,
    ],
    [
      'an unknown model id',
      () => [image, '--model', 'vit_huge_thing', '--weights', truncated],
      /unknown model 'vit_huge_thing'/,
    ],
  ];
  for (const [what, args, message] of bad) {
    test(`${what}: one line on stderr, exit 1, nothing written`, () => {
      const before = readdirSync(dir).sort();
      const r = run(args());
      assert.equal(r.status, 1, r.stdout);
      assert.equal(r.stdout, '');
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^glimpse: /);
      assert.match(lines[0], message);
      assert.deepEqual(readdirSync(dir).sort(), before);
    });
  }
});
