import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  attentionFlow,
  attentionRollout,
  LayeredFlowNetwork,
  manualSeed,
  rand,
  Tensor,
} from '../../src/index.js';
import { assertClose } from '../helpers/assert.js';

manualSeed(16);

/** capacity blocks listed top-down as [[l = L block rows], ..., [l = 1 block rows]] -> storage order. */
function network(blocksTopDown: number[][][]): LayeredFlowNetwork {
  const n = blocksTopDown[0].length;
  const layers = blocksTopDown.length;
  const cap = new Float64Array(layers * n * n);
  blocksTopDown.forEach((rows, t) => {
    const l = layers - t; // block for edges (l, i) -> (l - 1, k)
    rows.forEach((row, i) => {
      row.forEach((v, k) => {
        cap[(l - 1) * n * n + i * n + k] = v;
      });
    });
  });
  return new LayeredFlowNetwork(cap, n, layers);
}

/** One-head (1, 1, N, N) attention from rows. */
function attention(rows: number[][]): Tensor {
  const n = rows.length;
  return new Tensor(Float32Array.from(rows.flat()), [1, 1, n, n]);
}

describe('LayeredFlowNetwork: max-flow on hand-made layered graphs', () => {
  test('two layers: independent middle nodes, flow = sum_k min(top edge, bottom edge)', () => {
    // Source -> (2, 0); (2, 0) -> (1, k) with 0.5, 0.3, 0.2; (1, k) -> (0, 1) with 0.2, 0.6, 0.1.
    // Each middle node k is its own path, bottlenecked by its smaller edge: 0.2 + 0.3 + 0.1 = 0.6.
    // Into (0, 0) the bottom edges are 0.9, 0.05, 0.3: 0.5 + 0.05 + 0.2 = 0.75.
    const g = network([
      [
        [0.5, 0.3, 0.2],
        [0.9, 0.9, 0.9], // rows of other top tokens: no source edge feeds them
        [0.9, 0.9, 0.9],
      ],
      [
        [0.9, 0.2, 0.0],
        [0.05, 0.6, 0.0],
        [0.3, 0.1, 0.0],
      ],
    ]);
    const source = [1, 0, 0];
    assert.ok(Math.abs(g.maxFlow(source, 1) - 0.6) < 1e-12);
    assert.ok(Math.abs(g.maxFlow(source, 0) - 0.75) < 1e-12);
    assert.equal(g.maxFlow(source, 2), 0); // no edge into (0, 2)
    // The source edge binds when it is the narrowest: capacity 0.4 < 0.6.
    assert.ok(Math.abs(g.maxFlow([0.4, 0, 0], 1) - 0.4) < 1e-12);
  });

  test('three layers: the second unit of flow must reroute along a reverse edge', () => {
    // Nodes: top (3, 0) fed by the source (capacity 5); a0, a1 at layer 2; b0, b1 at layer 1; sink
    // t = (0, 0). Edges: (3,0)->a0 1, (3,0)->a1 1; a0->b0 1, a0->b1 1, a1->b0 1, a1->b1 0;
    // b0->t 1, b1->t 1. The first shortest path found, (3,0)-a0-b0-t, blocks a1 (its only edge
    // leads to the full b0). The max flow is 2 (a0-b1-t and a1-b0-t); it needs the path
    // (3,0)-a1-b0 then back along a0->b0 to a0, then a0-b1-t. Min cut: {b0->t, b1->t} = 2.
    // Into (0, 1) the bottom edges are b0: 0.5, b1: 0.25, both reachable: 0.75.
    const g = network([
      [
        [1, 1],
        [7, 7],
      ],
      [
        [1, 1],
        [1, 0],
      ],
      [
        [1, 0.5],
        [1, 0.25],
      ],
    ]);
    assert.ok(Math.abs(g.maxFlow([5, 0], 0) - 2) < 1e-12);
    assert.ok(Math.abs(g.maxFlow([5, 0], 1) - 0.75) < 1e-12);
    // A middle cut: with a0->b1 gone, everything passes b0, whose out-edge carries 1.
    const h = network([
      [
        [1, 1],
        [0, 0],
      ],
      [
        [1, 0],
        [1, 0],
      ],
      [
        [1, 0.5],
        [1, 0.25],
      ],
    ]);
    assert.ok(Math.abs(h.maxFlow([5, 0], 0) - 1) < 1e-12);
    assert.ok(Math.abs(h.maxFlow([5, 0], 1) - 0.5) < 1e-12);
  });

  test('random small graphs: max-flow equals the minimum over all s-t cuts (max-flow min-cut)', () => {
    for (const [layers, n] of [
      [2, 3],
      [3, 3],
      [4, 2],
    ]) {
      for (let trial = 0; trial < 4; trial++) {
        const cap = Float64Array.from(rand([layers * n * n]).data, (v) => (v < 0.3 ? 0 : v));
        const source = Float64Array.from(rand([n]).data);
        const g = new LayeredFlowNetwork(cap, n, layers);
        for (let sink = 0; sink < n; sink++) {
          const flow = g.maxFlow(source, sink);
          const cut = minCutByEnumeration(cap, n, layers, source, sink);
          assert.ok(
            Math.abs(flow - cut) < 1e-9,
            `L=${layers} n=${n} trial ${trial} sink ${sink}: flow ${flow} vs cut ${cut}`,
          );
        }
      }
    }
  });

  test('bad input', () => {
    assert.throws(() => new LayeredFlowNetwork(new Float64Array(7), 2, 2), /capacity has 7 entries/);
    assert.throws(() => new LayeredFlowNetwork(Float64Array.from([1, -1, 0, 0]), 2, 1), /capacity -1 at 1/);
    const g = new LayeredFlowNetwork(new Float64Array(4), 2, 1);
    assert.throws(() => g.maxFlow([1, 0], 2), /sink 2 is outside/);
  });
});

/** The smallest cut over every subset of the L * n inner nodes on the source side (2^(L n) subsets). */
function minCutByEnumeration(
  cap: Float64Array,
  n: number,
  layers: number,
  source: Float64Array,
  sink: number,
): number {
  const nodes = layers * n; // node (l, i), l = 1..L, has bit (l - 1) * n + i
  let best = Infinity;
  for (let mask = 0; mask < 1 << nodes; mask++) {
    const inS = (l: number, i: number) => ((mask >> ((l - 1) * n + i)) & 1) === 1;
    let cut = 0;
    for (let i = 0; i < n; i++) if (!inS(layers, i)) cut += source[i];
    for (let l = 2; l <= layers; l++) {
      for (let i = 0; i < n; i++) {
        if (!inS(l, i)) continue;
        for (let k = 0; k < n; k++) if (!inS(l - 1, k)) cut += cap[(l - 1) * n * n + i * n + k];
      }
    }
    for (let i = 0; i < n; i++) if (inS(1, i)) cut += cap[i * n + sink];
    best = Math.min(best, cut);
  }
  return best;
}

describe('attentionFlow known answers', () => {
  test('two layers of attention: capacities are the residual-augmented weights, computed by hand', () => {
    // Tokens: class + 2 patches (grid 1 x 2). Rows of W sum to 1, so A = (W + I) / 2.
    // A2 (class row) = ([0, 0.2, 0.8] + e0) / 2 = [0.5, 0.1, 0.4]
    // A1 = ([[0.6, 0.4, 0], [0.5, 0, 0.5], [0, 1, 0]] + I) / 2 = [[0.8, 0.2, 0], [0.25, 0.5, 0.25], [0, 0.5, 0.5]]
    // With two edge layers every middle node is its own path: flow_j = sum_k min(A2[0,k], A1[k,j]):
    //   j = 0: min(.5,.8) + min(.1,.25) + min(.4,0)  = 0.6
    //   j = 1: min(.5,.2) + min(.1,.5)  + min(.4,.5) = 0.7
    //   j = 2: min(.5,0)  + min(.1,.25) + min(.4,.5) = 0.5
    // while rollout's product gives A2[0] A1 = [0.425, 0.35, 0.225].
    const third = [1 / 3, 1 / 3, 1 / 3];
    const w2 = attention([[0, 0.2, 0.8], third, third]);
    const w1 = attention([
      [0.6, 0.4, 0],
      [0.5, 0, 0.5],
      [0, 1, 0],
    ]);
    const f = attentionFlow([w1, w2], { gridSize: [1, 2] });
    assertClose(f.flow, [0.6, 0.7, 0.5], 1e-6, 'flow');
    assertClose(f.map, [1, 0.5 / 0.7], 1e-6, 'map (patches, scaled to max 1)');
    const r = attentionRollout([w1, w2], { gridSize: [1, 2] });
    assertClose(Array.from(r.matrix.data.slice(0, 3)), [0.425, 0.35, 0.225], 1e-6, 'rollout row');
  });

  test('identity attention: all flow stays on the class token', () => {
    const n = 5;
    const eye = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, k) => (i === k ? 1 : 0)));
    const f = attentionFlow([attention(eye), attention(eye), attention(eye)], { gridSize: [2, 2] });
    assertClose(f.flow, [1, 0, 0, 0, 0], 1e-9, 'flow');
    // Without a class token the source feeds every output token 1/N; each input gets its own 1/N.
    const mean = attentionFlow([attention(eye), attention(eye)], { prefixTokens: 0, gridSize: [1, 5] });
    assertClose(mean.flow, new Array(n).fill(1 / n), 1e-6, 'mean source');
  });

  test('uniform attention: every patch gets the same flow', () => {
    const n = 10;
    const u = () => new Tensor(new Float32Array(2 * 3 * n * n).fill(1 / n), [2, 3, n, n]);
    const f = attentionFlow([u(), u(), u()], { gridSize: [3, 3] });
    assertClose(f.map, new Float32Array(18).fill(1), 1e-6, 'uniform map');
  });

  test('DeiT: flows to the class and to the distillation token', () => {
    const n = 6;
    const a = () => new Tensor(rand([1, 2, n, n]).data, [1, 2, n, n]).softmax(-1);
    const layers = [a(), a()];
    const both = attentionFlow(layers, { prefixTokens: 2, tokenIndex: [0, 1], gridSize: [2, 2] });
    const dist = attentionFlow(layers, { prefixTokens: 2, tokenIndex: 1, gridSize: [2, 2] });
    assert.deepEqual(both.maps.shape, [1, 2, 2, 2]);
    assertClose(Array.from(both.flow.data.slice(n)), dist.flow, 1e-9, 'distillation-token flows');
  });
});
