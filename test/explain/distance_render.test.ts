import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  attentionDistancePlot,
  headMaps,
  mapGrid,
  maskMassShare,
  objectMassShare,
  meanAttentionDistance,
  randn,
  readImage,
  Tensor,
  writeAttentionDistancePlot,
  writeOverlay,
} from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';

const dir = mkdtempSync(join(tmpdir(), 'glimpse-explain-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** (1, 1, 1 + 4, 1 + 4) attention on a 2 x 2 grid: each query puts `cls` on the class token. */
function gridAttention(patchRow: (q: number) => number[], cls: number): Tensor {
  const n = 5;
  const a = new Float32Array(n * n);
  for (let q = 0; q < n; q++) {
    a[q * n] = cls;
    const row = patchRow(q);
    for (let k = 0; k < 4; k++) a[q * n + 1 + k] = (1 - cls) * row[k];
  }
  return new Tensor(a, [1, 1, n, n]);
}

describe('meanAttentionDistance known answers', () => {
  test('self-attention only: distance 0', () => {
    const self = gridAttention((q) => [0, 1, 2, 3].map((k) => (k === q - 1 ? 1 : 0)), 0);
    assert.deepEqual(meanAttentionDistance([self], { gridSize: [2, 2], patchSize: 16, prefixTokens: 1 }), [
      [0],
    ]);
  });

  test('uniform over a 2 x 2 grid of 16 px patches; class-token weight is not renormalized away', () => {
    // From any patch the four centers lie at 0, 16, 16 and 16 sqrt(2) px: mean (32 + 16 sqrt 2) / 4.
    const uniform = (cls: number) => gridAttention(() => [0.25, 0.25, 0.25, 0.25], cls);
    const d = (32 + 16 * Math.SQRT2) / 4;
    const [[full]] = meanAttentionDistance([uniform(0)], {
      gridSize: [2, 2],
      patchSize: 16,
      prefixTokens: 1,
    });
    assert.ok(Math.abs(full - d) < 1e-5, `${full} vs ${d}`);
    // 20% on the class token leaves 80% of the weight on patches: 0.8 d.
    const [[partial]] = meanAttentionDistance([uniform(0.2)], { gridSize: [2, 2], patchSize: 16 });
    assert.ok(Math.abs(partial - 0.8 * d) < 1e-5, `${partial} vs ${0.8 * d}`);
    // Rectangular patches: 8 px tall, 16 px wide: neighbours at 8 (vertical) and 16 (horizontal).
    const [[rect]] = meanAttentionDistance([uniform(0)], { gridSize: [2, 2], patchSize: [8, 16] });
    assert.ok(Math.abs(rect - (8 + 16 + Math.hypot(8, 16)) / 4) < 1e-5);
  });

  test('one value per layer and head, averaged over images', () => {
    const a = randn([3, 4, 10, 10]).softmax(-1);
    const d = meanAttentionDistance([a, a], { gridSize: [3, 3], patchSize: 4 });
    assert.equal(d.length, 2);
    assert.equal(d[0].length, 4);
    assert.deepEqual(d[0], d[1]);
    assert.throws(
      () => meanAttentionDistance([a], { gridSize: [3, 3], patchSize: 0 }),
      /patchSize 0 must be a positive/,
    );
    assert.throws(
      () => meanAttentionDistance([a], { gridSize: [2, 4], patchSize: 4 }),
      /gridSize \[2,4\] does not hold the 9 patch tokens/,
    );
  });
});

describe('distance plot (SVG)', () => {
  test('one dot per head and layer, axis labels and a title, written atomically', () => {
    const distances = [
      [2, 5, 9],
      [6, 8, 12],
    ];
    const svg = attentionDistancePlot(distances, { title: 'toy ViT <3 layers>' });
    assert.equal(svg.match(/<circle [^>]*><title>layer/g)?.length, 6);
    assert.match(svg, /Network depth \(layer\)/);
    assert.match(svg, /Mean attention distance \(pixels\)/);
    assert.match(svg, /toy ViT &#60;3 layers&#62;/);
    assert.match(svg, /layer 2, head 3: 12\.00 px/);
    const path = join(dir, 'plots', 'mad.svg');
    writeAttentionDistancePlot(path, distances);
    assert.match(readFileSync(path, 'utf8'), /^<svg /);
    assert.throws(() => attentionDistancePlot([[Number.NaN]]), /finite values/);
  });
});

describe('rendering', () => {
  test('headMaps: the class row of every layer and head over the patches, scaled to max 1', () => {
    const a = randn([2, 3, 5, 5]).softmax(-1);
    const maps = headMaps([a, a], { image: 1, gridSize: [2, 2] });
    assert.deepEqual(maps.shape, [2, 3, 2, 2]);
    const row = Array.from(a.data.slice((1 * 3 + 2) * 25 + 1, (1 * 3 + 2) * 25 + 5));
    const max = Math.max(...row);
    assertClose(
      Array.from(maps.data.slice(5 * 4, 6 * 4)),
      row.map((v) => v / max),
      1e-6,
      'layer 1 head 2',
    );
  });

  test('overlay PNG at the image size and a grid of maps with gaps', async () => {
    const image = new Tensor(new Float32Array(3 * 20 * 30).fill(0.5), [3, 20, 30]);
    const map = new Tensor(Float32Array.from([0, 1, 0.5, 0.25]), [2, 2]);
    const path = join(dir, 'overlay.png');
    await writeOverlay(path, image, map);
    const back = await readImage(path);
    assert.deepEqual(back.shape, [3, 20, 30]);
    const maps = new Tensor(new Float32Array(2 * 3 * 4).fill(1), [2, 3, 2, 2]);
    const bare = await mapGrid(maps, { cellSize: 10, gap: 2 });
    assert.equal(bare.width, 3 * 10 + 4 * 2);
    assert.equal(bare.height, 2 * 10 + 3 * 2);
    assert.deepEqual(Array.from(bare.data.slice(0, 3)), [255, 255, 255]); // the gap is white
    const over = await mapGrid(maps, { cellSize: 30, image });
    assert.equal(over.height, 2 * 20 + 3 * 2); // cells keep the image's 2:3 aspect
  });
});

describe('maskMassShare', () => {
  const mask = new Tensor(new Float32Array(64), [8, 8]);
  // The object: the top-left 4 x 4 quarter of an 8 x 8 image.
  for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) mask.data[y * 8 + x] = 1;

  test('a uniform map scores the object area; a map on the object scores 1', () => {
    const uniform = maskMassShare(new Tensor(new Float32Array(4).fill(1), [2, 2]), mask);
    assert.ok(Math.abs(uniform.massInside - 0.25) < 1e-12);
    assert.equal(uniform.areaInside, 0.25);
    assert.ok(Math.abs(uniform.concentration - 1) < 1e-12);
    const focused = maskMassShare(new Tensor(Float32Array.from([1, 0, 0, 0]), [2, 2]), mask);
    assert.equal(focused.massInside, 1);
    assert.equal(focused.concentration, 4);
  });

  test('cells partly inside count by their covered pixels', () => {
    // 4 x 4 grid of 2 x 2 cells; only cell (1, 2) (pixels y 2..3, x 4..5) has mass; the mask covers
    // x < 5, so half of that cell: 0.5 of the mass inside.
    const m = new Float32Array(16);
    m[1 * 4 + 2] = 3;
    const shifted = new Tensor(new Float32Array(64), [8, 8]);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 5; x++) shifted.data[y * 8 + x] = 1;
    const r = maskMassShare(new Tensor(m, [4, 4]), shifted);
    assert.ok(Math.abs(r.massInside - 0.5) < 1e-12);
    assert.equal(r.areaInside, 40 / 64);
    assert.throws(
      () => maskMassShare(new Tensor(Float32Array.from([-1, 1, 1, 1]), [2, 2]), mask),
      /negative or NaN/,
    );
  });

  test('objectMassShare: the object is what is brighter than the threshold', () => {
    // A 1-channel 8 x 8 image, garment = a bright 4 x 8 lower half on black; a 2 x 2 map with all
    // its mass in the bottom row of cells sits entirely on the garment: concentration 1 / 0.5 = 2.
    const image = new Tensor(new Float32Array(64), [1, 8, 8]);
    for (let i = 32; i < 64; i++) image.data[i] = 0.8;
    image.data[3] = 0.05; // faint background noise stays background
    const r = objectMassShare(image, new Tensor(Float32Array.from([0, 0, 1, 1]), [2, 2]));
    assert.equal(r.areaInside, 0.5);
    assert.equal(r.massInside, 1);
    assert.equal(r.concentration, 2);
  });
});
