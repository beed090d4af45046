/**
 * Attention flow (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020).
 *
 * The network is a layered graph: L + 1 layers of N token nodes; node (l, i) has an edge to every
 * node (l - 1, k) whose capacity is the transition weight A_l[i, k], where A_l = rownorm((fuse(attn_l)
 * + I) / 2) is the same residual-augmented matrix as in rollout. The flow of input token j to output
 * token c is the maximum flow from node (L, c) to node (0, j). Unlike rollout (a product that sums
 * over all paths), max-flow lets no edge carry more than its capacity, so a token cannot be credited
 * twice through one narrow link.
 *
 * The solver is Dinic's algorithm on float capacities over the dense layered structure (no edge
 * lists): N max-flows per output token, each on L * N nodes and L * N^2 edges.
 */
import { Tensor } from '../tensor/tensor.js';
import {
  firstMap,
  prepareTransitions,
  rowMaps,
  type TokenMaps,
  type TransitionOptions,
} from './attention.js';

/** Residual capacities at or below this count as saturated (capacities are weights in [0, 1]). */
const EPS = 1e-12;

/**
 * A layered flow network: a source feeding the top layer's nodes, dense edges from each layer to the
 * one below, and a sink that is one node of the bottom layer.
 *
 * `capacity` holds `layers` dense (n, n) blocks: block l - 1 (l = 1..L) is the edge layer from layer
 * l down to layer l - 1, with capacity[(l - 1) * n * n + i * n + k] on the edge (l, i) -> (l - 1, k).
 */
export class LayeredFlowNetwork {
  readonly n: number;
  readonly layers: number;
  private readonly capacity: Float64Array;
  private readonly flow: Float64Array;
  private readonly sourceFlow: Float64Array;
  private sourceCapacity: Float64Array;
  private sink = 0;
  // Nodes (l, i) for l = 1..L have id (l - 1) * n + i; the source and the sink are implicit.
  private readonly level: Int32Array;
  private readonly arc: Int32Array;
  private readonly queue: Int32Array;
  private sinkLevel = -1;

  constructor(capacity: Float64Array, n: number, layers: number) {
    if (!(Number.isInteger(n) && n > 0 && Number.isInteger(layers) && layers > 0)) {
      throw new Error(`LayeredFlowNetwork: n ${n} and layers ${layers} must be positive integers`);
    }
    if (capacity.length !== layers * n * n) {
      throw new Error(
        `LayeredFlowNetwork: capacity has ${capacity.length} entries, ${layers} layers of (${n}, ${n}) need ${layers * n * n}`,
      );
    }
    for (let i = 0; i < capacity.length; i++) {
      if (!(capacity[i] >= 0) || !Number.isFinite(capacity[i])) {
        throw new Error(
          `LayeredFlowNetwork: capacity ${capacity[i]} at ${i} is not a finite non-negative number`,
        );
      }
    }
    this.n = n;
    this.layers = layers;
    this.capacity = capacity;
    this.flow = new Float64Array(capacity.length);
    this.sourceFlow = new Float64Array(n);
    this.sourceCapacity = new Float64Array(n);
    this.level = new Int32Array(layers * n + 1);
    this.arc = new Int32Array(layers * n + 1);
    this.queue = new Int32Array(layers * n + 1);
  }

  /**
   * The maximum flow from a source with edges of capacity `sourceCapacity[i]` into the top-layer
   * nodes (L, i) to the bottom-layer node (0, sink). A single output token c is sourceCapacity = e_c
   * (its out-capacity is 1, so the source edge never binds).
   */
  maxFlow(sourceCapacity: ArrayLike<number>, sink: number): number {
    const { n } = this;
    if (sourceCapacity.length !== n) {
      throw new Error(
        `LayeredFlowNetwork.maxFlow: sourceCapacity has ${sourceCapacity.length} entries, expected ${n}`,
      );
    }
    if (!Number.isInteger(sink) || sink < 0 || sink >= n) {
      throw new Error(`LayeredFlowNetwork.maxFlow: sink ${sink} is outside [0, ${n - 1}]`);
    }
    this.sourceCapacity = Float64Array.from(sourceCapacity);
    this.sink = sink;
    this.flow.fill(0);
    this.sourceFlow.fill(0);
    let total = 0;
    while (this.buildLevels()) {
      this.arc.fill(0);
      total += this.augmentFromSource();
    }
    return total;
  }

  /** BFS over the residual graph from the source; false when the sink is unreachable. */
  private buildLevels(): boolean {
    const { n, layers, capacity, flow, level, queue } = this;
    const nn = n * n;
    level.fill(-1);
    this.sinkLevel = -1;
    let head = 0;
    let tail = 0;
    const top = (layers - 1) * n;
    for (let i = 0; i < n; i++) {
      if (this.sourceCapacity[i] - this.sourceFlow[i] > EPS) {
        level[top + i] = 1;
        queue[tail++] = top + i;
      }
    }
    while (head < tail) {
      const u = queue[head++];
      const du = level[u];
      // Nodes at or beyond the sink's distance cannot lie on a shortest augmenting path.
      if (this.sinkLevel >= 0 && du >= this.sinkLevel) break;
      const l = Math.floor(u / n) + 1;
      const i = u - (l - 1) * n;
      if (l === 1) {
        if (capacity[i * n + this.sink] - flow[i * n + this.sink] > EPS && this.sinkLevel < 0) {
          this.sinkLevel = du + 1;
        }
      } else {
        const e = (l - 1) * nn + i * n;
        const below = (l - 2) * n;
        for (let k = 0; k < n; k++) {
          if (level[below + k] < 0 && capacity[e + k] - flow[e + k] > EPS) {
            level[below + k] = du + 1;
            queue[tail++] = below + k;
          }
        }
      }
      if (l < layers) {
        // Reverse edges: flow on (l + 1, m) -> (l, i) can be pushed back.
        const e = l * nn + i;
        const above = l * n;
        for (let m = 0; m < n; m++) {
          if (level[above + m] < 0 && flow[e + m * n] > EPS) {
            level[above + m] = du + 1;
            queue[tail++] = above + m;
          }
        }
      }
    }
    return this.sinkLevel >= 0;
  }

  private augmentFromSource(): number {
    const { n, layers } = this;
    const top = (layers - 1) * n;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const residual = this.sourceCapacity[i] - this.sourceFlow[i];
      if (residual <= EPS || this.level[top + i] !== 1) continue;
      const pushed = this.augment(top + i, residual);
      this.sourceFlow[i] += pushed;
      total += pushed;
    }
    return total;
  }

  /**
   * Pushes up to `limit` from node u towards the sink along level-increasing residual edges; returns
   * what was pushed. Arcs 0..n-1 go down a layer, arcs n..2n-1 go back up along reverse edges.
   */
  private augment(u: number, limit: number): number {
    const { n, layers, capacity, flow, level, arc } = this;
    const nn = n * n;
    const l = Math.floor(u / n) + 1;
    const i = u - (l - 1) * n;
    const next = level[u] + 1;
    let pushed = 0;
    if (l === 1) {
      // The only useful down arc of the bottom layer goes to the sink.
      if (arc[u] === 0) {
        const e = i * n + this.sink;
        const residual = capacity[e] - flow[e];
        if (next === this.sinkLevel && residual > EPS) {
          const d = Math.min(limit, residual);
          flow[e] += d;
          pushed = d;
          if (limit - pushed <= EPS) return pushed;
        }
        arc[u] = n;
      }
    }
    if (next >= this.sinkLevel) {
      level[u] = -1;
      return pushed;
    }
    for (; arc[u] < 2 * n; arc[u]++) {
      const a = arc[u];
      let v: number;
      let residual: number;
      let e: number;
      if (a < n) {
        if (l === 1) continue;
        e = (l - 1) * nn + i * n + a;
        v = (l - 2) * n + a;
        residual = capacity[e] - flow[e];
      } else {
        if (l === layers) break;
        const m = a - n;
        e = l * nn + m * n + i;
        v = l * n + m;
        residual = flow[e];
      }
      if (residual <= EPS || level[v] !== next) continue;
      const d = this.augment(v, Math.min(limit - pushed, residual));
      if (d > 0) {
        flow[e] += a < n ? d : -d;
        pushed += d;
        if (limit - pushed <= EPS) return pushed;
      }
    }
    level[u] = -1;
    return pushed;
  }
}

/**
 * As rollout's options; tokenIndex names the output token(s) the flow goes to. Without a class token
 * (prefixTokens 0) a source feeds every output token with capacity 1/N, the flow counterpart of
 * averaging rows.
 */
export type FlowOptions = TransitionOptions;

export interface FlowResult extends TokenMaps {
  /** (B, T, N): max-flow value from each input token to each output token (or the averaged source) */
  flow: Tensor;
}

export function attentionFlow(attentions: readonly Tensor[], options: FlowOptions = {}): FlowResult {
  const { batch, tokens, layers, prefixTokens, grid, sources, transitions } = prepareTransitions(
    'attentionFlow',
    attentions,
    options,
  );
  const sourceVectors =
    sources === 'mean'
      ? [new Float64Array(tokens).fill(1 / tokens)]
      : sources.map((c) => {
          const v = new Float64Array(tokens);
          v[c] = 1;
          return v;
        });
  const nn = tokens * tokens;
  const t = sourceVectors.length;
  const values = new Float32Array(batch * t * tokens);
  for (let b = 0; b < batch; b++) {
    const capacity = new Float64Array(layers * nn);
    transitions.forEach((a, l) => {
      capacity.set(a.subarray(b * nn, (b + 1) * nn), l * nn);
    });
    const network = new LayeredFlowNetwork(capacity, tokens, layers);
    sourceVectors.forEach((source, s) => {
      for (let j = 0; j < tokens; j++) values[(b * t + s) * tokens + j] = network.maxFlow(source, j);
    });
  }
  const flow = new Tensor(values, [batch, t, tokens]);
  const maps = rowMaps(
    (b, s, k) => values[(b * t + s) * tokens + k],
    { batch, tokens, prefixTokens, grid },
    sourceVectors.map((_, s) => s),
  );
  return { flow, map: firstMap(maps), maps };
}
