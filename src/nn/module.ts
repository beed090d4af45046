/**
 * Module: a tree of parameters, buffers and submodules whose names become state-dict keys
 * (`blocks.0.attn.qkv.weight`), like torch.nn.Module. Own properties are discovered in insertion
 * order: a Parameter is a parameter, a Module a child; tensors that are state but not trained are
 * registered with `registerBuffer`. Property names are the checkpoint names (timm/torch), which is why
 * many are snake_case.
 */
import { noGrad } from '../tensor/autograd.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** A trainable tensor: requiresGrad by default, updated in place by optimizers. */
export class Parameter extends Tensor {
  constructor(t: Tensor, requiresGrad = true) {
    super(t.dtype === 'float32' ? t.data : Float32Array.from(t.data), t.shape);
    this.requiresGrad = requiresGrad;
  }
}

export interface LoadReport {
  missing: string[];
  unexpected: string[];
  mismatched: Array<{ key: string; expected: readonly number[]; got: readonly number[] }>;
}

export type StateDict = Map<string, Tensor>;

interface BufferEntry {
  tensor: Tensor;
  persistent: boolean;
}

export abstract class Module {
  training = true;
  private readonly buffers = new Map<string, BufferEntry>();

  /** Registers state that is saved/loaded but not trained (BatchNorm's running stats...). */
  registerBuffer(name: string, tensor: Tensor, persistent = true): Tensor {
    this.buffers.set(name, { tensor, persistent });
    return tensor;
  }

  buffer(name: string): Tensor {
    const b = this.buffers.get(name);
    if (!b) throw new Error(`${this.constructor.name}: no buffer named '${name}'`);
    return b.tensor;
  }

  /** Replaces a buffer's tensor (e.g. after loading); the shape must match. */
  setBuffer(name: string, tensor: Tensor): void {
    const b = this.buffers.get(name);
    if (!b) throw new Error(`${this.constructor.name}: no buffer named '${name}'`);
    b.tensor = tensor;
  }

  /** Direct children in declaration order. */
  namedChildren(): Array<[string, Module]> {
    const out: Array<[string, Module]> = [];
    for (const [k, v] of Object.entries(this)) if (v instanceof Module) out.push([k, v]);
    return out;
  }

  /** Direct parameters in declaration order (null parameters, e.g. a disabled bias, are skipped). */
  namedDirectParameters(): Array<[string, Parameter]> {
    const out: Array<[string, Parameter]> = [];
    for (const [k, v] of Object.entries(this)) if (v instanceof Parameter) out.push([k, v]);
    return out;
  }

  namedModules(prefix = ''): Array<[string, Module]> {
    const out: Array<[string, Module]> = [[prefix, this]];
    for (const [name, child] of this.namedChildren()) {
      out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    }
    return out;
  }

  namedParameters(prefix = ''): Array<[string, Parameter]> {
    const out: Array<[string, Parameter]> = [];
    const seen = new Set<Parameter>();
    for (const [modName, mod] of this.namedModules(prefix)) {
      for (const [name, p] of mod.namedDirectParameters()) {
        if (seen.has(p)) continue; // tied weights appear once
        seen.add(p);
        out.push([modName ? `${modName}.${name}` : name, p]);
      }
    }
    return out;
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  namedBuffers(prefix = '', persistentOnly = false): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [modName, mod] of this.namedModules(prefix)) {
      for (const [name, b] of mod.buffers) {
        if (persistentOnly && !b.persistent) continue;
        out.push([modName ? `${modName}.${name}` : name, b.tensor]);
      }
    }
    return out;
  }

  numParameters(): number {
    return this.parameters().reduce((acc, p) => acc + p.size, 0);
  }

  /** Parameters and persistent buffers under their checkpoint names. */
  stateDict(): StateDict {
    const sd: StateDict = new Map();
    for (const [k, p] of this.namedParameters()) sd.set(k, p);
    for (const [k, b] of this.namedBuffers('', true)) sd.set(k, b);
    return sd;
  }

  /**
   * Copies tensors into parameters and buffers by name. With `strict` (default) any missing,
   * unexpected or shape-mismatched key throws one error that lists every one of them.
   */
  loadStateDict(sd: StateDict | Record<string, Tensor>, options: { strict?: boolean } = {}): LoadReport {
    const strict = options.strict ?? true;
    const entries = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const report: LoadReport = { missing: [], unexpected: [], mismatched: [] };
    const targets = new Map<string, { set: (t: Tensor) => void; shape: readonly number[] }>();
    for (const [modName, mod] of this.namedModules()) {
      for (const [name, p] of mod.namedDirectParameters()) {
        targets.set(modName ? `${modName}.${name}` : name, {
          shape: p.shape,
          set: (t) => (p.data as Float32Array).set(t.data),
        });
      }
      for (const [name, b] of mod.buffers) {
        if (!b.persistent) continue;
        targets.set(modName ? `${modName}.${name}` : name, {
          shape: b.tensor.shape,
          set: (t) => {
            if (t.dtype === b.tensor.dtype) b.tensor.data.set(t.data);
            else for (let i = 0; i < t.size; i++) b.tensor.data[i] = Number(t.data[i]);
          },
        });
      }
    }
    for (const [key, t] of entries) {
      const target = targets.get(key);
      if (!target) report.unexpected.push(key);
      else if (!shapesEqual(target.shape, t.shape))
        report.mismatched.push({ key, expected: target.shape, got: t.shape });
    }
    for (const key of targets.keys()) if (!entries.has(key)) report.missing.push(key);
    const problems = report.missing.length + report.unexpected.length + report.mismatched.length;
    if (strict && problems > 0) throw new Error(`loadStateDict: ${describeLoadReport(report)}`);
    noGrad(() => {
      for (const [key, t] of entries) {
        const target = targets.get(key);
        if (target && shapesEqual(target.shape, t.shape)) target.set(t);
      }
    });
    return report;
  }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Freezes or unfreezes every parameter. */
  requiresGrad(flag = true): this {
    for (const p of this.parameters()) p.requiresGrad = flag;
    return this;
  }
}

export function describeLoadReport(r: LoadReport): string {
  const parts: string[] = [];
  if (r.missing.length) parts.push(`missing keys (${r.missing.length}): ${r.missing.join(', ')}`);
  if (r.unexpected.length) parts.push(`unexpected keys (${r.unexpected.length}): ${r.unexpected.join(', ')}`);
  if (r.mismatched.length) {
    parts.push(
      `shape mismatches (${r.mismatched.length}): ${r.mismatched
        .map((m) => `${m.key} expects ${fmt(m.expected)} got ${fmt(m.got)}`)
        .join(', ')}`,
    );
  }
  return parts.length ? parts.join('; ') : 'all keys matched';
}

/** A module mapping one tensor to one tensor (what Sequential chains). */
export interface TensorModule extends Module {
  forward(x: Tensor): Tensor;
}

/** Children named 0, 1, 2, ... like torch.nn.ModuleList. */
export class ModuleList<M extends Module = Module> extends Module {
  readonly length: number;
  constructor(modules: readonly M[]) {
    super();
    modules.forEach((m, i) => {
      (this as unknown as Record<string, M>)[String(i)] = m;
    });
    this.length = modules.length;
  }

  at(i: number): M {
    return (this as unknown as Record<string, M>)[String(i < 0 ? i + this.length : i)];
  }

  *[Symbol.iterator](): Iterator<M> {
    for (let i = 0; i < this.length; i++) yield this.at(i);
  }

  toArray(): M[] {
    return [...this];
  }
}

export class Sequential extends ModuleList<TensorModule> implements TensorModule {
  forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this) y = m.forward(y);
    return y;
  }
}

/** nn.Identity. */
export class Identity extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return x;
  }
}
