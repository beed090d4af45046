import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Image } from '../../src/data/dataset.js';
import {
  applyRandAugmentOp,
  compose,
  mixupBatch,
  normalize,
  RAND_AUGMENT_OPS,
  randAugment,
  randomCrop,
  randomErasing,
  randomHorizontalFlip,
  randomVerticalFlip,
  sampleBeta,
  smoothOneHot,
} from '../../src/data/transforms.js';
import { Generator } from '../../src/ops/creation.js';
import { assertClose } from '../helpers/assert.js';

/** A (C, H, W) image whose pixel values encode their position, in (0, 1]. */
function ramp(channels: number, h: number, w: number): Image {
  const data = new Float32Array(channels * h * w);
  for (let i = 0; i < data.length; i++) data[i] = (i + 1) / data.length;
  return { data, channels, height: h, width: w };
}

const at = (img: Image, c: number, y: number, x: number) => img.data[(c * img.height + y) * img.width + x];

describe('geometric transforms', () => {
  test('randomCrop with padding is a shift of the input with zero fill, within the padding', () => {
    const img = ramp(2, 6, 5);
    const rng = new Generator(3);
    const shifts = new Set<string>();
    for (let trial = 0; trial < 40; trial++) {
      const out = randomCrop([6, 5], { padding: 2 })(img, rng);
      assert.deepEqual([out.channels, out.height, out.width], [2, 6, 5]);
      // Recover the shift from where input pixel (0, 3, 2) landed, or from the fill pattern.
      let found: string | null = null;
      for (let dy = -2; dy <= 2 && !found; dy++) {
        for (let dx = -2; dx <= 2 && !found; dx++) {
          let ok = true;
          for (let c = 0; c < 2 && ok; c++)
            for (let y = 0; y < 6 && ok; y++)
              for (let x = 0; x < 5 && ok; x++) {
                const sy = y + dy;
                const sx = x + dx;
                const want = sy >= 0 && sy < 6 && sx >= 0 && sx < 5 ? at(img, c, sy, sx) : 0;
                ok = at(out, c, y, x) === want;
              }
          if (ok) found = `${dy},${dx}`;
        }
      }
      assert.ok(found, `crop ${trial} is not a shift of the input`);
      shifts.add(found);
    }
    assert.ok(shifts.size > 5, `only ${shifts.size} distinct shifts in 40 crops`);
    assert.throws(() => randomCrop(9)(img, rng), /randomCrop: crop 9x9 is larger than the padded image 6x5/);
  });

  test('flips mirror exactly and leave the input untouched; p=0 is the identity', () => {
    const img = ramp(3, 4, 5);
    const before = img.data.slice();
    const rng = new Generator(1);
    const h = randomHorizontalFlip(1)(img, rng);
    const v = randomVerticalFlip(1)(img, rng);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 4; y++)
        for (let x = 0; x < 5; x++) {
          assert.equal(at(h, c, y, x), at(img, c, y, 4 - x));
          assert.equal(at(v, c, y, x), at(img, c, 3 - y, x));
        }
    assert.deepEqual(img.data, before);
    assert.equal(randomHorizontalFlip(0)(img, rng), img);
    assert.deepEqual(randomHorizontalFlip(1)(h, rng).data, img.data);
  });

  test('normalize per channel; mismatched channel counts are an error', () => {
    const img: Image = { data: new Float32Array([0, 0.5, 1, 0.25]), channels: 2, height: 1, width: 2 };
    const out = normalize([0.5, 0.25], [0.5, 0.25])(img, new Generator(1));
    assertClose(out.data, [-1, 0, 3, 0], 1e-7);
    assert.throws(
      () => normalize([0.5], [0.5])(img, new Generator(1)),
      /mean\/std have 1\/1 values but the image has 2 channels/,
    );
  });
});

describe('RandAugment ops', () => {
  const img = ramp(1, 8, 8);
  test('Translate moves by round(150/331 * size * level) pixels', () => {
    const out = applyRandAugmentOp(img, 'TranslateX', 1, 1, 0); // round(3.625) = 4 pixels right
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) assert.equal(at(out, 0, y, x), x >= 4 ? at(img, 0, y, x - 4) : 0);
    const up = applyRandAugmentOp(img, 'TranslateY', 0.5, -1, 0); // 2 pixels up
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) assert.equal(at(up, 0, y, x), y < 6 ? at(img, 0, y + 2, x) : 0);
  });

  test('Rotate by 90 degrees turns the image counter-clockwise', () => {
    // level 3 * 30 = 90 degrees; only for the test: RandAugment itself stays within 30.
    const out = applyRandAugmentOp(img, 'Rotate', 3, 1, 0);
    for (let y = 0; y < 8; y++)
      for (let x = 0; x < 8; x++) assert.equal(at(out, 0, y, x), at(img, 0, x, 7 - y));
  });

  test('pixel ops: Solarize, Posterize, AutoContrast, Equalize, Brightness, Contrast', () => {
    const sol = applyRandAugmentOp(img, 'Solarize', 0.25, 1);
    assert.deepEqual(
      sol.data,
      img.data.map((v) => (v >= 0.75 ? 1 - v : v)),
    );
    const post = applyRandAugmentOp(img, 'Posterize', 1, 1); // 4 bits
    for (const v of post.data) assert.equal(Math.round(v * 255) % 16, 0);
    const low: Image = { ...img, data: img.data.map((v) => 0.2 + 0.5 * v) };
    const ac = applyRandAugmentOp(low, 'AutoContrast', 0, 1);
    assertClose([Math.min(...ac.data), Math.max(...ac.data)], [0, 1], 1e-6);
    const big = ramp(1, 32, 32);
    const eq = applyRandAugmentOp({ ...big, data: big.data.map((v) => 0.2 + 0.5 * v) }, 'Equalize', 0, 1);
    // Equalizing a squeezed uniform ramp spreads it over the full range.
    assert.ok(Math.max(...eq.data) > 0.95 && Math.min(...eq.data) < 0.05);
    const dark = applyRandAugmentOp(img, 'Brightness', 1, -1); // factor 0.1
    assertClose(
      dark.data,
      img.data.map((v) => 0.1 * v),
      1e-6,
    );
    const flat = applyRandAugmentOp(img, 'Contrast', 1, -1); // factor 0.1 toward the mean
    const mean = img.data.reduce((a, b) => a + b, 0) / img.data.length;
    assertClose(
      flat.data,
      img.data.map((v) => mean + 0.1 * (v - mean)),
      1e-6,
    );
    assert.equal(applyRandAugmentOp(img, 'Color', 1, 1), img, 'Color leaves grayscale images alone');
  });

  test('randAugment is deterministic in the seed, stays in [0, 1] and keeps the shape', () => {
    const rgb = ramp(3, 10, 12);
    const t = randAugment({ numOps: 3, magnitude: 15 });
    const outs = [1, 1, 2].map((seed) => t(rgb, new Generator(seed)));
    assert.deepEqual(outs[0].data, outs[1].data);
    let differs = false;
    for (let s = 2; s < 12 && !differs; s++)
      differs = t(rgb, new Generator(s)).data.some((v, i) => v !== outs[0].data[i]);
    assert.ok(differs, 'different seeds give different augmentations');
    for (const o of outs) {
      assert.deepEqual([o.channels, o.height, o.width], [3, 10, 12]);
      for (const v of o.data) assert.ok(v >= 0 && v <= 1, `value ${v}`);
    }
    for (const op of RAND_AUGMENT_OPS) {
      const o = applyRandAugmentOp(rgb, op, 0.3, -1);
      assert.equal(o.data.length, rgb.data.length, op);
    }
    assert.throws(() => randAugment({ magnitude: 31 }), /magnitude 31 must be in 0..30/);
  });
});

describe('random erasing', () => {
  test('erases one box whose area is within the scale range; p=0 never erases', () => {
    const img: Image = { data: new Float32Array(3 * 20 * 20).fill(0.5), channels: 3, height: 20, width: 20 };
    const rng = new Generator(7);
    for (let trial = 0; trial < 20; trial++) {
      const out = randomErasing({ p: 1, mode: 'const', value: -1 })(img, rng);
      const erased = [...out.data.subarray(0, 400)].filter((v) => v === -1).length;
      assert.ok(erased >= 0.02 * 400 * 0.5 && erased <= 400 / 3 + 40, `erased ${erased}`);
      assert.equal([...out.data].filter((v) => v === -1).length, 3 * erased, 'same box in every channel');
    }
    assert.equal(randomErasing({ p: 0 })(img, rng), img);
    assert.ok(
      img.data.every((v) => v === 0.5),
      'input untouched',
    );
  });
});

describe('Mixup / CutMix', () => {
  const shape: [number, number, number] = [1, 4, 4];
  const batch = () => {
    const x = new Float32Array(3 * 16);
    for (let b = 0; b < 3; b++) x.fill(b + 1, b * 16, (b + 1) * 16);
    return x;
  };
  test('smoothOneHot', () => {
    assertClose(smoothOneHot([2, 0], 4, 0.2), [0.05, 0.05, 0.85, 0.05, 0.85, 0.05, 0.05, 0.05], 1e-7);
  });
  test('mixup blends each sample with its mirror in the batch; targets mix the same way', () => {
    const x = batch();
    const { lam, mode, targets } = mixupBatch(
      x,
      [0, 1, 2],
      shape,
      { mixupAlpha: 0.8, cutmixAlpha: 0, numClasses: 3, labelSmoothing: 0 },
      new Generator(5),
    );
    assert.equal(mode, 'mixup');
    assert.ok(lam > 0 && lam < 1);
    assertClose(x.subarray(0, 16), new Float32Array(16).fill(lam * 1 + (1 - lam) * 3), 1e-6);
    assertClose(x.subarray(16, 32), new Float32Array(16).fill(2), 1e-6);
    assertClose(targets.subarray(0, 3), [lam, 0, 1 - lam], 1e-6);
  });
  test('cutmix pastes one box; lambda is the kept area; targets sum to one', () => {
    for (let seed = 1; seed < 30; seed++) {
      const x = batch();
      const { lam, mode, targets } = mixupBatch(
        x,
        [0, 1, 2],
        shape,
        { mixupAlpha: 0, cutmixAlpha: 1, numClasses: 3, labelSmoothing: 0.1 },
        new Generator(seed),
      );
      assert.equal(mode, 'cutmix');
      const pasted = [...x.subarray(0, 16)].filter((v) => v === 3).length;
      assert.ok(Math.abs(lam - (1 - pasted / 16)) < 1e-9, `seed ${seed}: lam ${lam} vs pasted ${pasted}`);
      for (let b = 0; b < 3; b++)
        assertClose([targets.subarray(3 * b, 3 * b + 3).reduce((a, c) => a + c, 0)], [1], 1e-6);
    }
  });
  test('prob 0 leaves images alone and returns the smoothed one-hots', () => {
    const x = batch();
    const r = mixupBatch(
      x,
      [1, 1, 0],
      shape,
      { mixupAlpha: 1, cutmixAlpha: 1, prob: 0, numClasses: 2, labelSmoothing: 0 },
      new Generator(1),
    );
    assert.equal(r.mode, 'none');
    assert.deepEqual(x, batch());
    assert.deepEqual([...r.targets], [0, 1, 0, 1, 1, 0]);
  });
  test('Beta samples have the right mean', () => {
    const rng = new Generator(11);
    for (const [a, b] of [
      [0.8, 0.8],
      [2, 5],
      [0.3, 0.3],
    ]) {
      let s = 0;
      for (let i = 0; i < 4000; i++) s += sampleBeta(a, b, rng);
      assert.ok(Math.abs(s / 4000 - a / (a + b)) < 0.02, `Beta(${a}, ${b}) mean ${s / 4000}`);
    }
  });
});

test('compose applies left to right', () => {
  const img: Image = { data: new Float32Array([0.25, 0.5, 0.75, 1]), channels: 1, height: 2, width: 2 };
  const out = compose([randomHorizontalFlip(1), normalize([0.5], [0.5])])(img, new Generator(1));
  // flipped: [0.5, 0.25, 1, 0.75], then (v - 0.5) / 0.5
  assertClose(out.data, [0, -0.5, 1, 0.5], 1e-6);
});
