import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { attentionRollout, manualSeed, randn, Tensor } from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';

manualSeed(6);

/** (B, heads, N, N) attention: softmax of random logits, so every row is a distribution. */
function randomAttention(batch: number, heads: number, n: number, scale = 2): Tensor {
  return randn([batch, heads, n, n]).mul(scale).softmax(-1);
}

function identityAttention(batch: number, heads: number, n: number): Tensor {
  const data = new Float32Array(batch * heads * n * n);
  for (let m = 0; m < batch * heads; m++) for (let i = 0; i < n; i++) data[m * n * n + i * n + i] = 1;
  return new Tensor(data, [batch, heads, n, n]);
}

function rowSums(t: Tensor): number[] {
  const n = t.shape[t.ndim - 1];
  const out: number[] = [];
  for (let r = 0; r < t.size / n; r++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += Number(t.data[r * n + k]);
    out.push(s);
  }
  return out;
}

describe('attentionRollout known answers', () => {
  test('identity attention gives the identity rollout and a map that is zero on every patch', () => {
    // Each layer's A = rownorm((I + I) / 2) = I, so the product is I: the class token only sees itself.
    const n = 10;
    const r = attentionRollout(
      [0, 1, 2].map(() => identityAttention(2, 3, n)),
      { prefixTokens: 1, gridSize: [3, 3] },
    );
    const eye = new Float32Array(2 * n * n);
    for (let b = 0; b < 2; b++) for (let i = 0; i < n; i++) eye[b * n * n + i * n + i] = 1;
    assertClose(r.matrix, eye, 1e-7, 'identity rollout');
    assert.deepEqual(r.map.shape, [2, 3, 3]);
    assert.ok(Array.from(r.map.data).every((v) => v === 0));
  });

  test('uniform attention gives a uniform map (every patch 1 after scaling)', () => {
    // W = 1/N everywhere: A = (J/N + I)/2, whose class row over the patches is constant at every depth.
    const n = 17;
    const uniform = () => new Tensor(new Float32Array(2 * 4 * n * n).fill(1 / n), [2, 4, n, n]);
    for (const headFusion of ['mean', 'max', 'min'] as const) {
      const r = attentionRollout([uniform(), uniform(), uniform()], { headFusion });
      assert.deepEqual(r.map.shape, [2, 4, 4]);
      assertClose(r.map, new Float32Array(32).fill(1), 1e-6, `uniform map (${headFusion})`);
    }
  });

  test('rows of the joint attention always sum to 1 (every fusion, with and without discard)', () => {
    const attentions = [0, 1, 2, 3].map(() => randomAttention(2, 3, 26, 3));
    for (const headFusion of ['mean', 'max', 'min'] as const) {
      for (const discardRatio of [0, 0.5, 0.9, 0.99]) {
        const r = attentionRollout(attentions, {
          headFusion,
          discardRatio,
          prefixTokens: 1,
          gridSize: [5, 5],
        });
        assertClose(
          rowSums(r.matrix),
          new Array(2 * 26).fill(1),
          1e-5,
          `${headFusion} discard ${discardRatio}`,
        );
      }
    }
  });

  test('discard never removes attention paid to the class token', () => {
    // One layer, one head: the class column holds the smallest weights of all, so a 0.9 discard would
    // zero them first if it could. Each row puts 1e-4 on the class token and the rest on the patches.
    const n = 5;
    const w = new Float32Array(n * n);
    for (let i = 0; i < n; i++) {
      w[i * n] = 1e-4;
      for (let k = 1; k < n; k++) w[i * n + k] = (1 - 1e-4) / (n - 1);
    }
    const r = attentionRollout([new Tensor(w, [1, 1, n, n])], { discardRatio: 0.9, gridSize: [2, 2] });
    // floor(0.9 * 25) = 22 of 25 weights are ranked lowest; the 5 class-column entries are spared, so
    // 17 patch weights are zeroed (ties broken by position: all of rows 0..3 and row 4's first patch).
    // Row i of A then keeps 1e-4 on the class token plus the residual, renormalized.
    const a = r.matrix.data;
    for (let i = 0; i < n; i++) assert.ok(a[i * n] > 0, `row ${i} lost its class-token weight`);
    // Row 0: only (cls, cls) survives among W's entries: A[0] = e_0.
    assertClose(Array.from(a.slice(0, n)), [1, 0, 0, 0, 0], 1e-7, 'class row');
    // Row 1 keeps W[1,0] = 1e-4 and the residual on (1, 1): A[1] = (1e-4, 1, 0, 0, 0) / (1 + 1e-4).
    assertClose(Array.from(a.slice(n, 2 * n)), [1e-4 / 1.0001, 1 / 1.0001, 0, 0, 0], 1e-6, 'row 1');
  });

  test('discard follows vit-explain: the lowest fraction over the whole matrix, ties by position', () => {
    const n = 4;
    // Distinct values: rank them by hand. Class column values are large here, so only patches drop.
    const w = Float32Array.from([
      0.7, 0.1, 0.15, 0.05, 0.6, 0.2, 0.12, 0.08, 0.5, 0.3, 0.11, 0.09, 0.4, 0.35, 0.14, 0.11,
    ]);
    // floor(0.25 * 16) = 4 lowest: 0.05 (0,3), 0.08 (1,3), 0.09 (2,3), 0.1 (0,1) -> zeroed.
    const r = attentionRollout([new Tensor(w, [1, 1, n, n])], {
      discardRatio: 0.25,
      prefixTokens: 1,
      gridSize: [1, 3],
    });
    const kept = Float64Array.from(w);
    for (const idx of [3, 7, 11, 1]) kept[idx] = 0;
    const expected: number[] = [];
    for (let i = 0; i < n; i++) {
      const row = Array.from(kept.slice(i * n, (i + 1) * n)).map((v, k) => (v + (k === i ? 1 : 0)) / 2);
      const s = row.reduce((x, y) => x + y, 0);
      expected.push(...row.map((v) => v / s));
    }
    assertClose(r.matrix, expected, 1e-6, 'one layer after discard');
  });

  test('maps are the source rows over the patches scaled to max 1; DeiT gives class and distillation maps', () => {
    const n = 2 + 9;
    const attentions = [0, 1].map(() => randomAttention(2, 3, n));
    const r = attentionRollout(attentions, { prefixTokens: 2, tokenIndex: [0, 1] });
    assert.deepEqual(r.maps.shape, [2, 2, 3, 3]);
    assert.deepEqual(r.map.shape, [2, 3, 3]);
    const m = r.matrix.data;
    for (let b = 0; b < 2; b++) {
      for (const t of [0, 1]) {
        const row = Array.from(m.slice((b * n + t) * n + 2, (b * n + t + 1) * n));
        const max = Math.max(...row);
        assertClose(
          Array.from(r.maps.data.slice((b * 2 + t) * 9, (b * 2 + t + 1) * 9)),
          row.map((v) => v / max),
          1e-6,
        );
      }
      assertClose(
        Array.from(r.map.data.slice(b * 9, (b + 1) * 9)),
        Array.from(r.maps.data.slice(b * 18, b * 18 + 9)),
        0,
      );
    }
  });

  test('without a class token the map is the mean of all rows', () => {
    const n = 16;
    const attentions = [0, 1].map(() => randomAttention(1, 2, n));
    const r = attentionRollout(attentions, { prefixTokens: 0 });
    const m = r.matrix.data;
    const mean = Array.from({ length: n }, (_, k) => {
      let s = 0;
      for (let q = 0; q < n; q++) s += m[q * n + k];
      return s / n;
    });
    const max = Math.max(...mean);
    assertClose(
      r.map,
      mean.map((v) => v / max),
      1e-6,
      'mean-row map',
    );
  });

  test('the joint attention is the product A_L ... A_1 (order matters)', () => {
    const n = 5;
    const a1 = randomAttention(1, 1, n);
    const a2 = randomAttention(1, 1, n);
    const one = (x: Tensor) => attentionRollout([x], { gridSize: [2, 2] }).matrix;
    const both = attentionRollout([a1, a2], { gridSize: [2, 2] }).matrix;
    assertClose(both, one(a2).matmul(one(a1)), 1e-6, 'A2 A1');
  });

  test('bad input: one clear error each', () => {
    const a = randomAttention(1, 2, 10);
    assert.throws(() => attentionRollout([]), /attentionRollout: expected a non-empty list/);
    assert.throws(
      () => attentionRollout([a, randomAttention(1, 2, 11)]),
      /attention 1 has shape \[1, 2, 11, 11\]/,
    );
    assert.throws(() => attentionRollout([a], { discardRatio: 1 }), /discardRatio 1 must be in \[0, 1\)/);
    assert.throws(() => attentionRollout([a], { headFusion: 'median' as 'mean' }), /headFusion 'median'/);
    assert.throws(
      () => attentionRollout([a], { prefixTokens: 2 }),
      /8 patch tokens do not form a square grid/,
    );
    assert.throws(() => attentionRollout([a], { tokenIndex: 10 }), /tokenIndex 10 is outside/);
  });
});
