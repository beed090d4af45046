/**
 * Define-by-run autograd (PyTorch semantics). Each op that sees a parent requiring grad records a
 * GradNode on its output: the parents and a backward rule that maps the output's gradient to one
 * gradient per parent (null where a parent needs none). `backward()` walks the graph in reverse
 * topological order and accumulates gradients into `.grad` of leaves.
 */
import { kernels } from '../backend/backend.js';
import { emptyFloat32 } from './dtype.js';
import { reshapeStorage, Tensor } from './tensor.js';

export type BackwardRule = (grad: Tensor) => ReadonlyArray<Tensor | null | undefined>;

export interface GradNode {
  readonly op: string;
  readonly parents: readonly Tensor[];
  readonly backward: BackwardRule;
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording the graph (inference, optimizer steps, backward rules). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs `fn` with graph recording on, even inside `noGrad`. */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Records `out` as produced by `op` from `parents` if any parent requires grad. Returns `out`. */
export function record(out: Tensor, op: string, parents: readonly Tensor[], backward: BackwardRule): Tensor {
  if (!gradEnabled) return out;
  let needed = false;
  for (const p of parents) if (p.requiresGrad) needed = true;
  if (!needed) return out;
  out.requiresGrad = true;
  out.gradNode = { op, parents, backward };
  return out;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  // Iterative DFS: deep networks would overflow the call stack with recursion.
  const stack: Array<[Tensor, number]> = [[root, 0]];
  visited.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const parents = t.gradNode?.parents ?? [];
    if (i < parents.length) {
      top[1] = i + 1;
      const p = parents[i];
      if (p.requiresGrad && !visited.has(p)) {
        visited.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order.reverse();
}

export function runBackward(root: Tensor, seed: Tensor, retainGraph: boolean): void {
  if (!root.requiresGrad) {
    throw new Error('backward: the tensor does not require grad (no input of its graph has requiresGrad)');
  }
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>();
  // Sums this pass allocated and nobody else has seen yet: later contributions are added into them in
  // place. A gradient a backward rule returned may alias its input or another parent's gradient, so
  // only these are safe to overwrite; one is handed out (and leaves this set) when its tensor's turn comes.
  const owned = new Set<Tensor>();
  grads.set(root, seed);
  noGrad(() => {
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      const fresh = owned.delete(g);
      const node = t.gradNode;
      if (!node) {
        accumulate(t, g, fresh);
        continue;
      }
      if (t.retainsGrad) accumulate(t, g, false);
      grads.delete(t);
      const parentGrads = node.backward(g);
      node.parents.forEach((p, i) => {
        const pg = parentGrads[i];
        if (!pg || !p.requiresGrad) return;
        if (pg.size !== p.size) {
          throw new Error(
            `backward of ${node.op}: gradient for input ${i} has shape [${pg.shape}] but the input is [${p.shape}]`,
          );
        }
        const prev = grads.get(p);
        if (!prev) {
          grads.set(p, pg);
        } else if (owned.has(prev)) {
          addTo(prev, pg, prev);
        } else {
          const sum = new Tensor(emptyFloat32(prev.size), prev.shape);
          addTo(prev, pg, sum);
          owned.add(sum);
          grads.set(p, sum);
        }
      });
      if (!retainGraph) t.gradNode = null;
    }
  });
}

/** out = a + b elementwise over float32 storage (out may be a). */
function addTo(a: Tensor, b: Tensor, out: Tensor): void {
  const n = [a.size];
  kernels().binary('add', a.data, [1], b.data, [1], out.data, n);
}

/** Adds `g` to the leaf's `.grad`; `fresh` says g's storage is this pass's own and may be kept as is. */
function accumulate(t: Tensor, g: Tensor, fresh: boolean): void {
  const gg = g.shape.length === t.shape.length ? g : reshapeStorage(g, t.shape);
  if (!t.grad) {
    t.grad = fresh ? gg : gg.cloneData();
    return;
  }
  const sum = new Tensor(emptyFloat32(t.size), t.shape);
  addTo(t.grad, gg, sum);
  t.grad = sum;
}
