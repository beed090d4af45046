/**
 * Kernel dispatch. A backend is a named set of kernels; the `js` backend implements every kernel and
 * defines its semantics (its signatures are the kernel interface). Another backend may implement a
 * subset: `kernel(name)` takes the active backend's kernel when it has one and falls back to js.
 * All CPU backends share the same storage (TypedArrays), so mixing them per kernel costs nothing.
 */
import { jsKernels } from './js/index.js';

export type Kernels = typeof jsKernels;
export type KernelName = keyof Kernels;

export interface Backend {
  readonly name: string;
  readonly kernels: Partial<Kernels>;
}

const backends = new Map<string, Backend>();
const jsBackend: Backend = { name: 'js', kernels: jsKernels };
backends.set('js', jsBackend);
let active: Backend = jsBackend;
let resolved: Kernels = { ...jsKernels };

function resolve(): void {
  resolved = { ...jsKernels };
  for (const [name, fn] of Object.entries(active.kernels)) {
    if (fn) (resolved as Record<string, unknown>)[name] = fn;
  }
}

export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

export function listBackends(): string[] {
  return [...backends.keys()];
}

export function setBackend(name: string): void {
  const b = backends.get(name);
  if (!b) {
    throw new Error(`setBackend: unknown backend '${name}'; available: ${listBackends().join(', ')}`);
  }
  active = b;
  resolve();
}

export function getBackend(): string {
  return active.name;
}

/** The kernels in effect now (active backend, js for the rest). */
export function kernels(): Kernels {
  return resolved;
}

/** Whether the active backend implements `name` itself (rather than falling back to js). */
export function hasOwnKernel(name: KernelName): boolean {
  return active.kernels[name] !== undefined;
}

/** Runs `fn` with another backend active, restoring the previous one afterwards. */
export function withBackend<T>(name: string, fn: () => T): T {
  const prev = active.name;
  setBackend(name);
  try {
    return fn();
  } finally {
    setBackend(prev);
  }
}
