/** timm's eval transform: resize the shorter side to size/crop_pct, center crop, normalize. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { tensor } from '../../src/index.js';
import type { PretrainedConfig } from '../../src/models/classifier.js';
import {
  evalTransform,
  preprocessImage,
  preprocessImages,
  resizeShorterSide,
} from '../../src/models/preprocess.js';
import { fixturePath, get, loadFixture } from '../helpers/fixtures.js';

const cfg = (over: Partial<PretrainedConfig>): PretrainedConfig => ({
  inputSize: [3, 32, 32],
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  cropPct: 0.875,
  interpolation: 'bicubic',
  numClasses: 1000,
  ...over,
});

describe('eval transform', () => {
  test('shorter side resized as torchvision Resize(int) does (the longer side floored)', () => {
    assert.deepEqual(resizeShorterSide(480, 640, 256), [256, 341]);
    assert.deepEqual(resizeShorterSide(640, 480, 248), [330, 248]);
    assert.deepEqual(resizeShorterSide(100, 100, 36), [36, 36]);
  });

  test('matches timm.data.create_transform with PIL to within one 8-bit level', async () => {
    const io = loadFixture('models/eval_transform.io.safetensors');
    const png = fixturePath('models/eval_transform.png');
    const cases: Array<[string, PretrainedConfig]> = [
      ['bicubic_32_0.875', cfg({})],
      [
        'bilinear_24_0.9',
        cfg({
          inputSize: [3, 24, 24],
          cropPct: 0.9,
          interpolation: 'bilinear',
          mean: [0.5, 0.5, 0.5],
          std: [0.5, 0.5, 0.5],
        }),
      ],
    ];
    for (const [name, c] of cases) {
      const ours = await preprocessImage(png, c);
      const ref = get(io, name);
      assert.deepEqual(ours.shape, ref.shape);
      // PIL filters in fixed point; torch's antialiased filter in float: a level apart at most.
      const plane = ours.size / 3;
      let worst = 0;
      for (let i = 0; i < ours.size; i++) {
        const levels = Math.abs(ours.data[i] - ref.data[i]) * c.std[Math.floor(i / plane)] * 255;
        worst = Math.max(worst, levels);
      }
      assert.ok(worst <= 1.01, `${name}: differs from PIL by ${worst.toFixed(2)} levels`);
    }
  });

  test('a constant image normalizes to (value - mean) / std everywhere', () => {
    // An 8-bit level, as decoded images hold: the 8-bit rounding after the resize keeps it exactly.
    const img = tensor(new Float32Array(3 * 40 * 60).fill(100 / 255), [3, 40, 60]);
    const out = evalTransform(img, cfg({}));
    assert.deepEqual(out.shape, [3, 32, 32]);
    for (let c = 0; c < 3; c++) {
      const want = (100 / 255 - [0.485, 0.456, 0.406][c]) / [0.229, 0.224, 0.225][c];
      for (let i = 0; i < 32 * 32; i++) assert.ok(Math.abs(out.data[c * 1024 + i] - want) < 1e-5);
    }
  });

  test('crops the center: a left-right symmetric image stays symmetric', () => {
    // 50x100 resizes to 32x64: the crop leaves 16 columns on each side.
    const [h, w] = [50, 100];
    const data = new Float32Array(3 * h * w);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) data[(c * h + y) * w + x] = Math.abs(x - (w - 1) / 2) / w;
    const out = evalTransform(tensor(data, [3, h, w]), cfg({ cropPct: 1, interpolation: 'bilinear' }));
    for (let y = 0; y < 32; y++) {
      for (let x = 0; x < 16; x++) {
        assert.ok(Math.abs(out.data[y * 32 + x] - out.data[y * 32 + 31 - x]) < 1e-5, `row ${y} col ${x}`);
      }
    }
  });

  test('several images become one (B, 3, H, W) batch', async () => {
    const png = fixturePath('models/eval_transform.png');
    const batch = await preprocessImages([png, png], cfg({}));
    assert.deepEqual(batch.shape, [2, 3, 32, 32]);
  });
});
