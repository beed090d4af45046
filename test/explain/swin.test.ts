/**
 * Swin rollout: window attention expanded to global token-to-token matrices (undoing the cyclic
 * shift) and carried through patch merging.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { swinRollout, Tensor, type Tensor as TensorType } from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';
import { get, loadFixture, tolerance } from '../helpers/fixtures.js';

/** (nW, 1, 4, 4) window attention for a 4 x 4 grid in 2 x 2 windows, every row from `row(q)`. */
function windows(row: (q: number) => number[]): TensorType {
  const data = new Float32Array(4 * 16);
  for (let w = 0; w < 4; w++) for (let q = 0; q < 4; q++) data.set(row(q), w * 16 + q * 4);
  return new Tensor(data, [4, 1, 4, 4]);
}

describe('swinRollout', () => {
  test('the shifted block wraps around: token (0, 0) reaches token (3, 3) through the cyclic shift', () => {
    // 4 x 4 tokens, window 2, one stage of two blocks: block 0 (no shift) attends to itself only, so
    // A_1 = I; block 1 is shifted by 1 and every query attends to its window's first position.
    // timm rolls by -1 first: token (0, 0) lands at shifted (3, 3), in the window covering shifted
    // rows/cols 2..3, whose first position is shifted (2, 2) = original (3, 3). With the residual,
    // token (0, 0)'s row is 1/2 on itself and 1/2 on token 15. Token (1, 1) sits at shifted (0, 0),
    // the first position of its own window, so it keeps everything: its row is e_5.
    const self = windows((q) => [0, 1, 2, 3].map((k) => (k === q ? 1 : 0)));
    const first = windows(() => [1, 0, 0, 0]);
    const r = swinRollout([self, first], { gridSize: [4, 4], windowSize: 2, depths: [2] });
    const row = (q: number) => Array.from(r.matrix.data.slice(q * 16, (q + 1) * 16));
    const expected0 = new Array(16).fill(0);
    expected0[0] = 0.5;
    expected0[15] = 0.5;
    assertClose(row(0), expected0, 1e-7, 'token (0, 0)');
    assertClose(
      row(5),
      Array.from({ length: 16 }, (_, k) => (k === 5 ? 1 : 0)),
      1e-7,
      'token (1, 1)',
    );
  });

  test('patch merging averages 2 x 2 children; identity attention ends uniform', () => {
    const self = windows((q) => [0, 1, 2, 3].map((k) => (k === q ? 1 : 0)));
    // Stage 2 is 2 x 2 tokens, no larger than the window: one unshifted window of 4 tokens.
    const stage2 = new Tensor(
      Float32Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0)),
      [1, 1, 4, 4],
    );
    const r = swinRollout([self, self, stage2], { gridSize: [4, 4], windowSize: 2, depths: [2, 1] });
    assert.deepEqual(r.matrix.shape, [1, 4, 16]);
    // Merged token 0 covers tokens (0,0), (0,1), (1,0), (1,1) = 0, 1, 4, 5.
    assertClose(
      Array.from(r.matrix.data.slice(0, 16)),
      Array.from({ length: 16 }, (_, k) => ([0, 1, 4, 5].includes(k) ? 0.25 : 0)),
      1e-7,
      'merged row',
    );
    assertClose(r.map, new Float32Array(16).fill(1), 1e-6, 'uniform map');
  });

  test('timm Swin attention (img 64, patch 4, window 4, depths [2, 2]) vs the numpy reference', () => {
    const io = loadFixture('peers/timm_swin.io.safetensors');
    const ref = loadFixture('explain/reference.safetensors');
    const attentions = [0, 1, 2, 3].map((i) => get(io, `attn.${i}`));
    const r = swinRollout(attentions, { gridSize: [16, 16], windowSize: 4, depths: [2, 2] });
    const tol = tolerance('peers', 'timm_swin');
    assertClose(r.map, get(ref, 'swin.rollout.map'), tol, 'map');
    const rows = new Float32Array(2 * 8 * 256);
    for (let b = 0; b < 2; b++) {
      for (let i = 0; i < 8; i++)
        rows.set(
          r.matrix.data.slice((b * 64 + i * 8) * 256, (b * 64 + i * 8 + 1) * 256) as Float32Array,
          (b * 8 + i) * 256,
        );
    }
    assertClose(rows, get(ref, 'swin.rollout.rows'), tol, 'rows');
    assert.throws(
      () => swinRollout(attentions, { gridSize: [16, 16], windowSize: 8, depths: [2, 2] }),
      /attention 0 \(stage 0, 16x16 tokens, window 8\) should be \[32, 2, 64, 64\], got \[32, 2, 16, 16\]/,
    );
    assert.throws(
      () => swinRollout(attentions, { gridSize: [16, 16], windowSize: 4, depths: [2, 1] }),
      /need 3 attention maps, got 4/,
    );
  });
});
