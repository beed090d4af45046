/**
 * The pieces of the Itti-Koch-Niebur model (pyramid, Gabor, N(.), blur) and the contract of
 * ittiSaliency / scanpath: shapes, coordinates, odd inputs, options and their errors.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ittiSaliency, scanpath, Tensor } from '../../src/index.js';
import {
  binomial9,
  blurNormalized,
  convolveSeparable,
  gaborEnergy,
  gaussianPyramid,
  gaussianTaps,
  iterativeNormalize,
  laplacianLevel,
  maxNormalize,
  type Plane,
  parseBias,
  rangeOf,
  reduce,
  resolveBias,
} from '../../src/saliency/itti.js';
import { renderPanel, renderScanpath, upsampleMap } from '../../src/saliency/render.js';
import { searchArray } from '../../src/saliency/search_arrays.js';

const plane = (h: number, w: number, f: (y: number, x: number) => number): Plane => {
  const data = new Float32Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[y * w + x] = f(y, x);
  return { data, h, w };
};
const maxOf = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, v), -Infinity);
const argmax = (a: ArrayLike<number>) => Array.from(a).reduce((b, v, i, arr) => (v > arr[b] ? i : b), 0);

/** A (3, h, w) black image with a white disk of radius r at (cx, cy). */
function dotImage(h: number, w: number, cx: number, cy: number, r: number): Tensor {
  const data = new Float32Array(3 * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if ((x - cx) ** 2 + (y - cy) ** 2 <= r * r) for (let c = 0; c < 3; c++) data[c * h * w + y * w + x] = 1;
    }
  }
  return new Tensor(data, [3, h, w]);
}

describe('pyramid and filters', () => {
  test('reduce: ceil halving, constants stay constant, interior mass is kept', () => {
    const odd = reduce(plane(7, 12, () => 0.3));
    assert.deepEqual([odd.h, odd.w], [4, 6]);
    for (const v of odd.data) assert.ok(Math.abs(v - 0.3) < 1e-6);
    // An impulse in the interior spreads with weights summing to 1 over a 4x-smaller grid.
    const impulse = reduce(plane(32, 32, (y, x) => (y === 16 && x === 16 ? 1 : 0)));
    const mass = Array.from(impulse.data).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(mass * 4 - 1) < 1e-6, `mass ${mass}`);
    const pyr = gaussianPyramid(
      plane(1, 1, () => 1),
      9,
    );
    assert.equal(pyr.length, 10);
    assert.deepEqual([pyr[9].h, pyr[9].w, pyr[9].data[0]], [1, 1, 1]);
  });

  test('gaborEnergy: each bar excites most the channel tuned to its orientation', () => {
    for (const orientation of [0, 45, 90, 135]) {
      const look = { color: [1, 1, 1] as const, orientation };
      const arr = searchArray({ size: 256, count: 2, seed: 3, distractors: [look], targets: [look] });
      const pyr = gaussianPyramid(
        { data: arr.image.data.slice(0, 256 * 256) as Float32Array, h: 256, w: 256 },
        3,
      );
      const lap = laplacianLevel(pyr, 2);
      const { x, y } = arr.items[0];
      const energy = [0, 45, 90, 135].map((theta) => {
        const e = gaborEnergy(lap, theta);
        let m = 0;
        for (let i = Math.round(y / 4) - 3; i <= Math.round(y / 4) + 3; i++) {
          for (let j = Math.round(x / 4) - 3; j <= Math.round(x / 4) + 3; j++)
            m = Math.max(m, e.data[i * e.w + j]);
        }
        return m;
      });
      const best = argmax(energy);
      assert.equal([0, 45, 90, 135][best], orientation, `bar at ${orientation}°: energies ${energy}`);
      // Tuned, not merely biased: the orthogonal channel responds at most half as much.
      assert.ok(energy[(best + 2) % 4] < energy[best] / 2, `bar at ${orientation}°: energies ${energy}`);
    }
  });

  test('binomial9 (the Gabor envelope, folded taps) equals the generic separable convolution', () => {
    const taps = new Float32Array([1, 8, 28, 56, 70, 56, 28, 8, 1].map((v) => v / 256));
    for (const [h, w] of [
      [23, 31],
      [9, 9],
      [5, 12],
      [1, 1],
    ]) {
      const src = plane(h, w, (y, x) => Math.sin(3 * x + 5 * y) + (x === 2 ? 1 : 0));
      const fast = binomial9(src.data, h, w);
      const exact = convolveSeparable(src, taps, 'zero').data;
      for (let i = 0; i < fast.length; i++)
        assert.ok(Math.abs(fast[i] - exact[i]) < 1e-6, `${h}x${w} at ${i}`);
    }
  });

  test('blurNormalized: constants stay constant at the borders; wide kernels match the sampled Gaussian', () => {
    const flat = blurNormalized(
      plane(20, 33, () => 2),
      5,
    );
    for (const v of flat.data) assert.ok(Math.abs(v - 2) < 1e-5);
    const noise = plane(40, 50, (y, x) => Math.sin(x * 1.7 + y * y * 0.3) + (x === 10 && y === 9 ? 5 : 0));
    for (const sigma of [0.6, 3, 5, 12]) {
      const fast = blurNormalized(noise, sigma).data;
      const exact = convolveSeparable(noise, gaussianTaps(sigma, 100), 'renormalize').data;
      let err = 0;
      for (let i = 0; i < fast.length; i++) err = Math.max(err, Math.abs(fast[i] - exact[i]));
      // Within 1% of the input's range: the box cascade is an approximation, good for inhibition.
      assert.ok(err < 0.01 * 7, `sigma ${sigma}: max error ${err}`);
    }
  });
});

describe('N(.)', () => {
  const peaks = (points: [number, number, number][]) =>
    plane(32, 32, (y, x) =>
      points.reduce((s, [py, px, a]) => s + a * Math.exp(-((y - py) ** 2 + (x - px) ** 2) / 2), 0),
    );
  const lone = peaks([[16, 16, 1]]);
  const field = peaks(Array.from({ length: 16 }, (_, k) => [4 + 8 * Math.floor(k / 4), 4 + 8 * (k % 4), 1]));
  const strongest = peaks([
    [16, 16, 1],
    [4, 4, 0.5],
    [4, 28, 0.5],
    [28, 4, 0.5],
  ]);

  test('maxnorm: a lone peak keeps M = 1, equal peaks vanish, one strong peak among halves is scaled by (1 - 0.5)²', () => {
    assert.ok(Math.abs(maxOf(maxNormalize(lone, rangeOf([lone])).data) - 1) < 1e-6);
    assert.ok(maxOf(maxNormalize(field, rangeOf([field])).data) < 1e-3);
    const m = maxOf(maxNormalize(strongest, rangeOf([strongest])).data);
    assert.ok(Math.abs(m - 0.25) < 0.02, `got ${m}`);
  });

  test('maxnorm on a shared range keeps a weak map weak', () => {
    const weak = { ...lone, data: lone.data.map((v) => v * 0.1) };
    const shared = rangeOf([lone, weak]);
    const ratio = maxOf(maxNormalize(weak, shared).data) / maxOf(maxNormalize(lone, shared).data);
    assert.ok(Math.abs(ratio - 0.1) < 1e-3, `ratio ${ratio}`);
  });

  test('iterative DoG: a lone peak survives and grows, a dense field of equal peaks is inhibited', () => {
    const alone = iterativeNormalize(lone, rangeOf([lone]), 5);
    const dense = peaks(
      Array.from({ length: 64 }, (_, k) => [2 + 4 * Math.floor(k / 8), 2 + 4 * (k % 8), 1]),
    );
    const crowd = iterativeNormalize(dense, rangeOf([dense]), 5);
    assert.ok(maxOf(alone.data) > 1, `lone peak ${maxOf(alone.data)}`);
    assert.ok(maxOf(crowd.data) < 0.5 * maxOf(alone.data), `field ${maxOf(crowd.data)}`);
  });
});

describe('ittiSaliency', () => {
  test('maps at scale 4 for any size; odd layouts, 1x1, gray, RGBA, (H, W) and a batch of one', () => {
    const r = ittiSaliency(dotImage(512, 512, 100, 200, 10));
    assert.deepEqual(r.saliency.shape, [32, 32]);
    assert.equal(r.scale, 16);
    assert.deepEqual([r.width, r.height], [512, 512]);
    for (const c of ['intensity', 'color', 'orientation'] as const)
      assert.deepEqual(r.conspicuity[c].shape, [32, 32]);
    assert.deepEqual(Object.keys(r.features).sort(), [
      'color.BY',
      'color.RG',
      'intensity',
      'orientation.0',
      'orientation.135',
      'orientation.45',
      'orientation.90',
    ]);
    assert.deepEqual(ittiSaliency(dotImage(37, 101, 10, 10, 3)).saliency.shape, [3, 7]);
    for (const shape of [
      [3, 1, 1],
      [1, 5, 9],
      [4, 20, 30],
      [20, 30],
      [1, 3, 20, 30],
    ]) {
      const n = shape.reduce((a, b) => a * b, 1);
      const img = new Tensor(
        Float32Array.from({ length: n }, (_, i) => (i * 0.37) % 1),
        shape,
      );
      const out = ittiSaliency(img);
      for (const v of out.saliency.data) assert.ok(Number.isFinite(v), `shape ${shape}`);
    }
  });

  test('a gray image has no color contrast', () => {
    const gray = new Tensor(
      new Float32Array(64 * 64).map((_, i) => (i % 64 > 30 ? 0.8 : 0.2)),
      [1, 64, 64],
    );
    assert.equal(maxOf(ittiSaliency(gray).conspicuity.color.data), 0);
  });

  test('bad shapes, options and biases fail with one line naming the fix', () => {
    assert.throws(
      () => ittiSaliency(new Tensor(new Float32Array(2 * 4 * 4), [2, 4, 4])),
      /ittiSaliency: expected an image tensor .* got \[2, 4, 4\]/,
    );
    const img = dotImage(32, 32, 16, 16, 4);
    assert.throws(
      () => ittiSaliency(img, { normalization: 'l2' as 'maxnorm' }),
      /normalization must be 'maxnorm' or 'iterative'/,
    );
    assert.throws(() => ittiSaliency(img, { iterations: 0 }), /iterations must be a positive integer/);
    assert.throws(
      () => ittiSaliency(img, { bias: 'colour=2' }),
      /unknown key 'colour'; use one of intensity, /,
    );
    assert.throws(
      () => ittiSaliency(img, { bias: { color: -1 } }),
      /gain for 'color' must be a finite number >= 0/,
    );
    assert.throws(() => parseBias('color'), /'color' is not KEY=GAIN/);
    assert.throws(() => resolveBias('orientation.90=x'), /must be a finite number/);
    assert.deepEqual(parseBias('color=2, orientation.90=0.5'), { color: 2, 'orientation.90': 0.5 });
  });

  test('unit gains are the bottom-up model; a channel gain scales that conspicuity map', () => {
    const { image } = searchArray({ kind: 'color', seed: 4 });
    const plain = ittiSaliency(image);
    const ones = ittiSaliency(image, {
      bias: Object.fromEntries(Object.keys(plain.bias).map((k) => [k, 1])),
    });
    assert.deepEqual(Array.from(ones.saliency.data), Array.from(plain.saliency.data));
    const doubled = ittiSaliency(image, { bias: { color: 2 } });
    const a = plain.conspicuity.color.data;
    const b = doubled.conspicuity.color.data;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(b[i] - 2 * a[i]) < 1e-6);
  });
});

describe('scanpath', () => {
  test('a white dot on black: the first fixation is on it, in input pixels, found by intensity', () => {
    const r = ittiSaliency(dotImage(192, 256, 150, 70, 6));
    const [first] = scanpath(r, { fixations: 1 });
    assert.ok(Math.hypot(first.x - 150, first.y - 70) < 8, `fixation at ${first.x}, ${first.y}`);
    assert.equal(first.feature, 'intensity');
    assert.equal(first.map, 'intensity');
  });

  test('ordered, timed, inhibited: argmax first, times increase, fixations keep the IOR distance', () => {
    const arr = searchArray({ kind: 'conjunction', seed: 2 });
    const r = ittiSaliency(arr.image);
    const path = scanpath(r, { fixations: 8 });
    assert.equal(path.length, 8);
    assert.equal(path[0].saliency, maxOf(r.saliency.data));
    const radius = 256 / 6;
    for (let k = 0; k < path.length; k++) {
      const f = path[k];
      assert.ok(f.x >= 0 && f.x <= 255 && f.y >= 0 && f.y <= 255);
      assert.ok(f.t > (k > 0 ? path[k - 1].t : 0), `times ${path.map((p) => p.t)}`);
      assert.ok(k === 0 || f.saliency <= path[k - 1].saliency + 1e-7);
      for (let j = 0; j < k; j++) {
        assert.ok(Math.hypot(f.x - path[j].x, f.y - path[j].y) > radius - r.scale, `fixations ${j} and ${k}`);
      }
      const terms = Object.values(f.contributions);
      assert.ok(Math.abs(terms.reduce((a, b) => a + b, 0) / 3 - f.saliency) < 1e-6);
      assert.ok(f.map.startsWith(f.feature));
    }
  });

  test('a blank image has nothing to look at; bad options fail clearly', () => {
    const r = ittiSaliency(new Tensor(new Float32Array(3 * 40 * 40).fill(0.5), [3, 40, 40]));
    assert.deepEqual(scanpath(r), []);
    assert.throws(() => scanpath(r, { fixations: -1 }), /scanpath: fixations must be a non-negative integer/);
    assert.throws(() => scanpath(r, { threshold: 1 }), /0 < threshold < 1/);
  });
});

describe('render', () => {
  test('maps upsample onto input pixels as the model aligns them; scanpath and panel images have the right size', async () => {
    const map = new Tensor(new Float32Array([0, 1, 2, 3]), [2, 2]);
    const up = upsampleMap(map, 20, 20, 16);
    assert.equal(up.data[0], 0);
    assert.equal(up.data[16], 1); // input pixel x = 16 is saliency pixel 1
    assert.equal(up.data[8], 0.5);
    const image = dotImage(48, 64, 20, 20, 4);
    const r = ittiSaliency(image);
    const path = scanpath(r, { fixations: 2 });
    const drawn = await renderScanpath(image, path, 5);
    assert.deepEqual([drawn.width, drawn.height, drawn.data.length], [64, 48, 64 * 48 * 3]);
    const panel = await renderPanel(image, r, path, 5, 60);
    assert.deepEqual([panel.width, panel.height], [5 * 80 + 4 * 4, 60]);
  });
});
