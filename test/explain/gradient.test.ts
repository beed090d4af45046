import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  attentionGradients,
  gradRollout,
  manualSeed,
  noGrad,
  randn,
  Tensor,
  tokenGradCam,
} from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';

manualSeed(66);

/**
 * A one-block, one-head toy transformer over N tokens of width D: attention from q/k projections,
 * output = attn @ v, logits = mean over tokens @ head. `attnOverride` replaces the probabilities so
 * the logits can be evaluated as a function of the attention for finite differences.
 */
function toyModel(tokens: number, width: number, classes: number) {
  const x = randn([2, tokens, width]);
  const wq = randn([width, width]).mul(0.5).setRequiresGrad();
  const wk = randn([width, width]).mul(0.5).setRequiresGrad();
  const wv = randn([width, width]).setRequiresGrad();
  const head = randn([width, classes]).setRequiresGrad();
  const forward = (attnOverride?: Tensor) => {
    const q = x.matmul(wq);
    const k = x.matmul(wk);
    const attn = (attnOverride ?? q.matmul(k.transpose(1, 2)).softmax(-1)).reshape([2, 1, tokens, tokens]);
    const out = attn.reshape([2, tokens, tokens]).matmul(x.matmul(wv)); // (B, N, D)
    const logits = out.mean(1).matmul(head); // (B, classes)
    return { logits, attentions: [attn] };
  };
  return forward;
}

describe('attentionGradients', () => {
  test('gradients equal the analytic ∂logit/∂attention of a linear read-out', () => {
    // logits[b, c] = sum_{h,i,j} attn[b,h,i,j] * W[c,h,i,j]: the gradient for target c is W[c].
    const [b, h, n, c] = [2, 2, 3, 4];
    const scores = randn([b, h, n, n]).setRequiresGrad();
    const w = randn([c, h * n * n]);
    const r = attentionGradients(() => {
      const attn = scores.softmax(-1);
      return { logits: attn.reshape([b, h * n * n]).matmul(w.transpose(0, 1)), attentions: [attn] };
    }, [3, 1]);
    assert.deepEqual(r.targets, [3, 1]);
    const g = r.gradients[0].data;
    for (let img = 0; img < b; img++) {
      const target = r.targets[img];
      assertClose(
        Array.from(g.slice(img * h * n * n, (img + 1) * h * n * n)),
        Array.from(w.data.slice(target * h * n * n, (target + 1) * h * n * n)),
        1e-6,
        `image ${img}`,
      );
    }
  });

  test('through a toy transformer the gradient matches finite differences of logits(attention)', () => {
    const n = 4;
    const forward = toyModel(n, 6, 3);
    const r = attentionGradients(() => forward());
    const attn = r.attentions[0];
    const eps = 1e-2;
    for (const idx of [0, 5, 17, 31]) {
      const score = (delta: number) =>
        noGrad(() => {
          const a = attn.cloneData();
          (a.data as Float32Array)[idx] += delta;
          const { logits } = forward(a.reshape([2, n, n]));
          let s = 0;
          r.targets.forEach((t, b) => {
            s += logits.data[b * 3 + t];
          });
          return s;
        });
      const numeric = (score(eps) - score(-eps)) / (2 * eps);
      const analytic = r.gradients[0].data[idx];
      assert.ok(
        Math.abs(numeric - analytic) < 2e-3 + 2e-2 * Math.abs(numeric),
        `entry ${idx}: ${analytic} vs ${numeric}`,
      );
    }
    // The default target is the predicted class.
    const logits = r.logits.data;
    r.targets.forEach((t, b) => {
      for (let c = 0; c < 3; c++) assert.ok(logits[b * 3 + t] >= logits[b * 3 + c]);
    });
  });

  test('attention outside the graph is a clear error', () => {
    const a = randn([1, 1, 2, 2]).softmax(-1);
    assert.throws(
      () => attentionGradients(() => ({ logits: randn([1, 3]).setRequiresGrad(), attentions: [a] })),
      /attention 0 is not part of the autograd graph/,
    );
  });
});

describe('gradRollout and tokenGradCam known answers', () => {
  test('with all-ones gradients gradRollout is the product of (I + mean_h A)', () => {
    const n = 5;
    const attentions = [0, 1].map(() => randn([1, 2, n, n]).softmax(-1));
    const ones = attentions.map((a) => new Tensor(new Float32Array(a.size).fill(1), a.shape));
    const r = gradRollout(attentions, ones, { gridSize: [2, 2] });
    const step = (a: Tensor) => {
      const d = a.data;
      const m: number[][] = [];
      for (let i = 0; i < n; i++) {
        m.push([]);
        for (let k = 0; k < n; k++) m[i].push((d[i * n + k] + d[n * n + i * n + k]) / 2 + (i === k ? 1 : 0));
      }
      return m;
    };
    const [s1, s2] = attentions.map(step);
    const expected: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let v = 0;
        for (let k = 0; k < n; k++) v += s2[i][k] * s1[k][j];
        expected.push(v);
      }
    }
    assertClose(r.matrix, expected, 1e-5, 'R = (I + Ā2)(I + Ā1)');
  });

  test('negative gradients are clipped: relevance stays the identity and the map is zero', () => {
    const attentions = [randn([1, 2, 5, 5]).softmax(-1)];
    const negative = [new Tensor(new Float32Array(50).fill(-1), [1, 2, 5, 5])];
    const r = gradRollout(attentions, negative, { gridSize: [2, 2] });
    assertClose(
      r.matrix,
      Array.from({ length: 25 }, (_, i) => (i % 6 === 0 ? 1 : 0)),
      0,
      'identity',
    );
    assert.ok(Array.from(r.map.data).every((v) => v === 0));
  });

  test('tokenGradCam on a hand example: heads weighted by their mean gradient on the class row', () => {
    // Two heads, class + 2 patches. Class rows over the patches: head 0 [0.6, 0.2], head 1 [0.1, 0.7].
    // Gradients on those entries: head 0 [1, 3] (alpha 2), head 1 [-1, -3] (alpha -2).
    // cam = relu(mean_h alpha_h A_h) = relu(([1.2, 0.4] + [-0.2, -1.4]) / 2) = relu([0.5, -0.5]) = [0.5, 0]
    // -> scaled to max 1: [1, 0].
    const a = new Float32Array(2 * 9);
    const g = new Float32Array(2 * 9);
    a.set([0.2, 0.6, 0.2], 0);
    a.set([0.2, 0.1, 0.7], 9);
    g.set([5, 1, 3], 0); // the class-token column's gradient does not enter the weights
    g.set([5, -1, -3], 9);
    const cam = tokenGradCam([new Tensor(a, [1, 2, 3, 3])], [new Tensor(g, [1, 2, 3, 3])], {
      gridSize: [1, 2],
    });
    assertClose(cam.map, [1, 0], 1e-7, 'cam');
    assert.throws(
      () =>
        tokenGradCam([new Tensor(a, [1, 2, 3, 3])], [new Tensor(g, [1, 2, 3, 3])], {
          layer: 1,
          gridSize: [1, 2],
        }),
      /layer 1 is outside the 1 attention layers/,
    );
  });

  test('the explainers run on gradients from the toy transformer', () => {
    const forward = toyModel(5, 4, 3);
    const r = attentionGradients(() => forward(), 2);
    const roll = gradRollout(r.attentions, r.gradients, { gridSize: [2, 2] });
    const cam = tokenGradCam(r.attentions, r.gradients, { gridSize: [2, 2] });
    assert.deepEqual(roll.map.shape, [2, 2, 2]);
    assert.deepEqual(cam.map.shape, [2, 2, 2]);
    for (const v of [...roll.map.data, ...cam.map.data]) assert.ok(v >= 0 && v <= 1);
    assert.throws(
      () => gradRollout(r.attentions, [], { gridSize: [2, 2] }),
      /0 gradients for 1 attention layers/,
    );
  });
});
