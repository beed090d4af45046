/**
 * Exponential moving average of a model's weights (timm's ModelEmaV2): after each optimizer step
 * ema = decay * ema + (1 - decay) * weights, over parameters and float buffers (BatchNorm running
 * stats); integer buffers are copied. Evaluating with the average often beats the raw weights late
 * in training.
 */
import type { Module, StateDict } from '../nn/module.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';

export interface EmaOptions {
  /** Weight of the running average per step (timm's default 0.9998). */
  decay?: number;
  /** Ramp the decay up as min(decay, (1 + step) / (10 + step)) so early averages are not dominated by the random init. */
  warmup?: boolean;
}

export class ModelEma {
  readonly decay: number;
  readonly warmup: boolean;
  /** The averaged tensors under the model's state-dict names. */
  readonly shadow: StateDict = new Map();

  constructor(model: Module, options: EmaOptions = {}) {
    this.decay = options.decay ?? 0.9998;
    this.warmup = options.warmup ?? false;
    if (!(this.decay >= 0 && this.decay < 1))
      throw new Error(`ModelEma: decay must be in [0, 1), got ${this.decay}`);
    for (const [name, t] of model.stateDict()) this.shadow.set(name, t.cloneData());
  }

  decayAt(step: number): number {
    return this.warmup ? Math.min(this.decay, (1 + step) / (10 + step)) : this.decay;
  }

  /** Folds the model's current weights into the average (call after optimizer.step()). */
  update(model: Module, step: number): void {
    const d = this.decayAt(step);
    for (const [name, t] of model.stateDict()) {
      const e = this.shadow.get(name);
      if (!e)
        throw new Error(
          `ModelEma.update: the model has '${name}' that the average does not; build the EMA from this model`,
        );
      const ed = e.data;
      const td = t.data;
      if (t.dtype === 'float32') for (let i = 0; i < ed.length; i++) ed[i] = d * ed[i] + (1 - d) * td[i];
      else ed.set(td);
    }
  }

  stateDict(): StateDict {
    return this.shadow;
  }

  /** Problems loading `sd` would hit (names or shapes that differ), empty when it fits. */
  incompatibilities(sd: StateDict): string[] {
    const problems: string[] = [];
    for (const [name, t] of this.shadow) {
      const s = sd.get(name);
      if (!s) problems.push(`missing ${name}`);
      else if (!shapesEqual(s.shape, t.shape))
        problems.push(`${name} is ${fmt(s.shape)}, expected ${fmt(t.shape)}`);
    }
    for (const name of sd.keys()) if (!this.shadow.has(name)) problems.push(`unexpected ${name}`);
    return problems;
  }

  loadStateDict(sd: StateDict): void {
    const problems = this.incompatibilities(sd);
    if (problems.length) throw new Error(`ModelEma.loadStateDict: ${problems.join(', ')}`);
    for (const [name, t] of this.shadow) t.data.set((sd.get(name) as Tensor).data);
  }

  /** Runs `fn` with the averaged weights loaded into `model`, then puts the model's own weights back. */
  async withWeights<T>(model: Module, fn: () => T | Promise<T>): Promise<T> {
    const saved = new Map([...model.stateDict()].map(([k, t]) => [k, t.cloneData()]));
    model.loadStateDict(this.shadow);
    try {
      return await fn();
    } finally {
      model.loadStateDict(saved);
    }
  }
}
