/**
 * `glimpse explain` and `glimpse attention-distance` end to end on the timm parity models (random
 * weights of real scale: the point is the plumbing, the files and the errors, not the pictures).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { readImage, Tensor, writeImage } from '../../src/index.js';
import { fixturePath } from '../helpers/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'glimpse-explain-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const vit = [
  '--model',
  'vit_tiny_patch16_224',
  '--kwargs',
  '{"img_size": 32, "patch_size": 4, "num_classes": 10, "embed_dim": 64, "depth": 3, "num_heads": 4}',
  '--weights',
  fixturePath('peers/timm_vit.safetensors'),
];
const swin = [
  '--model',
  'swin_tiny_patch4_window7_224',
  '--kwargs',
  '{"img_size": 64, "patch_size": 4, "window_size": 4, "embed_dim": 32, "depths": [2, 2], "num_heads": [2, 4], "num_classes": 10}',
  '--weights',
  fixturePath('peers/timm_swin.safetensors'),
];
const image = join(dir, 'images', 'stripes.png');

before(async () => {
  mkdirSync(join(dir, 'images'));
  const data = new Float32Array(3 * 40 * 48);
  for (let i = 0; i < data.length; i++) data[i] = (Math.floor(i / 5) % 2) * 0.8 + 0.1;
  await writeImage(image, new Tensor(data, [3, 40, 48]));
});

/**
 * Runs the CLI in-process, capturing stderr (its one-line errors). stdout is left alone: node:test
 * reports through the test process's stdout.
 */
async function glimpse(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string) => {
    err += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(args), err };
  } finally {
    process.stderr.write = write;
  }
}

describe('glimpse explain', () => {
  for (const method of ['rollout', 'flow', 'grad-rollout', 'gradcam']) {
    test(`--method ${method}: overlay at the enlarged crop size, head grid, JSON summary`, async () => {
      const out = join(dir, method);
      const r = await glimpse(['explain', image, ...vit, '--method', method, '--out', out]);
      assert.equal(r.code, 0, r.err);
      const overlay = await readImage(join(out, `stripes.${method}.cls.png`));
      assert.deepEqual(overlay.shape, [3, 224, 224]); // the 32 px crop enlarged 7x
      assert.ok(existsSync(join(out, 'stripes.heads.png')));
      const summary = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8'));
      const result = summary.results[0];
      assert.equal(result.method, method);
      assert.equal(result.maps[0].map.length, 8); // 8 x 8 patch grid
      assert.equal(result.top5.length, 5);
      if (method === 'gradcam' || method === 'grad-rollout')
        assert.equal(result.explainedClass, result.top5[0].class);
    });
  }

  test('--class picks the explained class; DeiT gives class and distillation maps', async () => {
    const out = join(dir, 'deit');
    const deit = [
      '--model',
      'deit_tiny_distilled_patch16_224',
      '--kwargs',
      '{"img_size": 32, "patch_size": 4, "num_classes": 10, "embed_dim": 48, "depth": 2, "num_heads": 3}',
      '--weights',
      fixturePath('peers/timm_deit_distilled.safetensors'),
    ];
    const r = await glimpse(['explain', image, ...deit, '--method', 'gradcam', '--class', '7', '--out', out]);
    assert.equal(r.code, 0, r.err);
    const result = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8')).results[0];
    assert.equal(result.explainedClass, 7);
    assert.deepEqual(
      result.maps.map((m: { token: string }) => m.token),
      ['cls', 'dist'],
    );
  });

  test('Swin: rollout through windows and merging, one map from the mean of the last tokens', async () => {
    const out = join(dir, 'swin');
    const r = await glimpse(['explain', image, ...swin, '--out', out]);
    assert.equal(r.code, 0, r.err);
    const result = JSON.parse(readFileSync(join(out, 'explain.json'), 'utf8')).results[0];
    assert.equal(result.maps[0].token, 'mean');
    assert.equal(result.maps[0].map.length, 16); // the first stage's 16 x 16 patch grid
    assert.equal(result.headGrid, undefined);
  });

  test('bad input: one line, exit 1, nothing written', async () => {
    const out = join(dir, 'bad');
    const cases: Array<[string[], RegExp]> = [
      [
        ['explain', image, ...vit, '--method', 'lime', '--out', out],
        /--method lime is not one of rollout, flow, grad-rollout, gradcam/,
      ],
      [['explain', image, ...vit, '--discard', '1.5', '--out', out], /--discard 1.5 is invalid/],
      [
        ['explain', image, ...vit, '--class', '3', '--out', out],
        /--class applies to grad-rollout and gradcam/,
      ],
      [['explain', image, '--model', 'vit_tiny_patch16_224', '--out', out], /--weights FILE is required/],
      [['explain', join(dir, 'missing.png'), ...vit, '--out', out], /missing\.png/],
      [
        [
          'explain',
          image,
          '--model',
          'resnet50',
          '--kwargs',
          '{"layers": [1, 1, 1, 1], "base_width": 16, "num_classes": 10}',
          '--weights',
          fixturePath('peers/timm_resnet_bottleneck.safetensors'),
          '--out',
          out,
        ],
        /model family 'resnet' has no attention maps to explain; use a ViT, DeiT or Swin model/,
      ],
      [['explain', image, ...swin, '--method', 'flow', '--out', out], /Swin models support --method rollout/],
    ];
    for (const [args, message] of cases) {
      const r = await glimpse(args);
      assert.equal(r.code, 1, `${args.join(' ')} should fail`);
      assert.match(r.err, message);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
    }
    assert.ok(!existsSync(out), 'no output folder for a failed run');
  });
});

describe('glimpse attention-distance', () => {
  test('JSON per layer and head plus the SVG plot', async () => {
    const out = join(dir, 'mad');
    const r = await glimpse(['attention-distance', ...vit, '--images', join(dir, 'images'), '--out', out]);
    assert.equal(r.code, 0, r.err);
    const json = JSON.parse(readFileSync(join(out, 'attention_distance.json'), 'utf8'));
    assert.equal(json.images, 1);
    assert.equal(json.distances.length, 3);
    assert.equal(json.distances[0].length, 4);
    // Distances lie between 0 and the 8 x 8 grid's diagonal of 4 px patches.
    for (const v of json.distances.flat()) assert.ok(v > 0 && v < Math.hypot(28, 28));
    assert.match(
      readFileSync(join(out, 'attention_distance.svg'), 'utf8'),
      /Mean attention distance \(pixels\)/,
    );
  });

  test('an empty folder is an error', async () => {
    mkdirSync(join(dir, 'empty'));
    const r = await glimpse([
      'attention-distance',
      ...vit,
      '--images',
      join(dir, 'empty'),
      '--out',
      join(dir, 'x'),
    ]);
    assert.equal(r.code, 1);
    assert.match(r.err, /holds no JPEG\/PNG\/WebP images/);
  });
});
