/**
 * Define-by-run autograd (PyTorch semantics). Each op that sees a parent requiring grad records a
 * GradNode on its output: the parents and a backward rule that maps the output's gradient to one
 * gradient per parent (null where a parent needs none). `backward()` walks the graph in reverse
 * topological order and accumulates gradients into `.grad` of leaves.
 */
import { reshapeStorage, type Tensor } from './tensor.js';

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
  grads.set(root, seed);
  noGrad(() => {
    for (const t of order) {
      const g = grads.get(t);
      if (!g) continue;
      const node = t.gradNode;
      if (!node) {
        accumulate(t, g);
        continue;
      }
      if (t.retainsGrad) accumulate(t, g);
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
        grads.set(p, prev ? addInto(prev, pg) : pg);
      });
      if (!retainGraph) t.gradNode = null;
    }
  });
}

function addInto(a: Tensor, b: Tensor): Tensor {
  const out = a.cloneData();
  const od = out.data as Float32Array;
  const bd = b.data as Float32Array;
  for (let i = 0; i < od.length; i++) od[i] += bd[i];
  return out;
}

function accumulate(t: Tensor, g: Tensor): void {
  const gg = g.shape.length === t.shape.length ? g : reshapeStorage(g, t.shape);
  t.grad = t.grad ? addInto(t.grad, gg) : gg.cloneData();
}
