/**
 * Optimizer: parameter groups with per-group hyperparameters and per-parameter state, like
 * torch.optim.Optimizer. Steps update Parameter storage in place on raw Float32Arrays (no graph, no
 * allocation per step). `lr` of each group is mutable so schedules can set it between steps.
 */
import { kernels } from '../backend/backend.js';
import { fmt, shapesEqual } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';

/** Per-parameter optimizer state: buffers (exp_avg, momentum_buffer...) and counters (step). */
export type ParamState = Record<string, Tensor | number>;

/** The hyperparameters every group has; each optimizer adds its own. */
export interface GroupHyper {
  lr: number;
  weightDecay: number;
  /** Multiplies the scheduled lr for this group (timm's lr_scale, e.g. layer-wise decay). */
  lrScale?: number;
}

export type ParamGroup<H extends GroupHyper> = H & { params: Tensor[] };

/** What a caller passes for one group: params plus any hyperparameter overriding the defaults. */
export type ParamGroupInput<H extends GroupHyper> = Partial<H> & { params: Tensor[] };

/** torch's optimizer state_dict: state keyed by the parameter's index across all groups. */
export interface OptimizerStateDict<H extends GroupHyper = GroupHyper> {
  state: Map<number, ParamState>;
  paramGroups: Array<H & { params: number[] }>;
}

export abstract class Optimizer<H extends GroupHyper = GroupHyper> {
  readonly paramGroups: Array<ParamGroup<H>>;
  readonly state = new Map<Tensor, ParamState>();

  constructor(
    params: readonly Tensor[] | ReadonlyArray<ParamGroupInput<H>>,
    readonly defaults: H,
  ) {
    const name = this.constructor.name;
    const inputs: Array<ParamGroupInput<H>> =
      params.length > 0 && params[0] instanceof Tensor
        ? [{ params: [...(params as Tensor[])] } as ParamGroupInput<H>]
        : [...(params as Array<ParamGroupInput<H>>)];
    if (inputs.length === 0 || inputs.every((g) => g.params.length === 0)) {
      throw new Error(`${name}: got an empty parameter list; pass model.parameters() or parameter groups`);
    }
    const seen = new Set<Tensor>();
    this.paramGroups = inputs.map((g, gi) => {
      for (const p of g.params) {
        if (p.dtype !== 'float32')
          throw new Error(
            `${name}: group ${gi} holds a ${p.dtype} tensor; only float32 parameters can be optimized`,
          );
        if (seen.has(p))
          throw new Error(
            `${name}: a parameter appears in more than one group (group ${gi}); each must appear once`,
          );
        seen.add(p);
      }
      const group = { ...defaults, ...g, params: [...g.params] } as ParamGroup<H>;
      this.validate(group, gi);
      return group;
    });
  }

  /** Checks one group's hyperparameters; throws a one-line error naming the bad value. */
  protected validate(group: ParamGroup<H>, index: number): void {
    const name = this.constructor.name;
    if (!(group.lr >= 0))
      throw new Error(`${name}: invalid learning rate ${group.lr} in group ${index}; use lr >= 0`);
    if (!(group.weightDecay >= 0))
      throw new Error(
        `${name}: invalid weightDecay ${group.weightDecay} in group ${index}; use weightDecay >= 0`,
      );
  }

  /** Applies one update to every parameter that has a gradient. */
  step(): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        if (!p.grad) continue;
        if (p.grad.size !== p.size) {
          throw new Error(
            `${this.constructor.name}.step: gradient ${fmt(p.grad.shape)} does not match parameter ${fmt(p.shape)}`,
          );
        }
        let st = this.state.get(p);
        if (!st) {
          st = {};
          this.state.set(p, st);
        }
        this.update(p.data as Float32Array, p.grad.data as Float32Array, st, group, p.shape);
      }
    }
  }

  /** One parameter's update: `param` is modified in place; `state` starts empty. */
  protected abstract update(
    param: Float32Array,
    grad: Float32Array,
    state: ParamState,
    group: ParamGroup<H>,
    shape: readonly number[],
  ): void;

  /** Clears gradients (torch's set_to_none=True default). */
  zeroGrad(): void {
    for (const group of this.paramGroups) for (const p of group.params) p.grad = null;
  }

  /** Every parameter in group order: the index space of the state dict. */
  private flatParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  stateDict(): OptimizerStateDict<H> {
    const index = new Map<Tensor, number>();
    for (const p of this.flatParams()) index.set(p, index.size);
    const state = new Map<number, ParamState>();
    for (const [p, st] of this.state) {
      const copy: ParamState = {};
      for (const [k, v] of Object.entries(st)) copy[k] = v instanceof Tensor ? v.cloneData() : v;
      state.set(index.get(p)!, copy);
    }
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...hyper } = g;
      return { ...(hyper as unknown as H), params: params.map((p) => index.get(p)!) };
    });
    return { state, paramGroups };
  }

  /**
   * Restores hyperparameters and state saved by `stateDict` of an optimizer over the same parameters
   * (same group sizes and shapes); anything else throws before changing this optimizer.
   */
  loadStateDict(sd: OptimizerStateDict<H>): void {
    const name = `${this.constructor.name}.loadStateDict`;
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new Error(
        `${name}: the saved state has ${sd.paramGroups.length} parameter groups, this optimizer ${this.paramGroups.length}`,
      );
    }
    sd.paramGroups.forEach((g, i) => {
      if (g.params.length !== this.paramGroups[i].params.length) {
        throw new Error(
          `${name}: saved group ${i} has ${g.params.length} parameters, this optimizer's has ${this.paramGroups[i].params.length}`,
        );
      }
    });
    const params = this.flatParams();
    for (const [i, st] of sd.state) {
      const p = params[i];
      if (!p) throw new Error(`${name}: state for parameter ${i} but the optimizer has ${params.length}`);
      for (const [k, v] of Object.entries(st)) {
        if (v instanceof Tensor && !shapesEqual(v.shape, p.shape)) {
          throw new Error(
            `${name}: state '${k}' of parameter ${i} is ${fmt(v.shape)} but the parameter is ${fmt(p.shape)}`,
          );
        }
      }
    }
    this.paramGroups.forEach((g, i) => {
      const { params: _saved, ...hyper } = sd.paramGroups[i];
      Object.assign(g, hyper);
    });
    this.state.clear();
    for (const [i, st] of sd.state) {
      const copy: ParamState = {};
      for (const [k, v] of Object.entries(st)) copy[k] = v instanceof Tensor ? v.cloneData() : v;
      this.state.set(params[i], copy);
    }
  }
}

/** A float32 state buffer, created zero-filled on first use. */
export function stateBuffer(
  state: ParamState,
  key: string,
  size: number,
  shape: readonly number[],
): Float32Array {
  const t = state[key];
  if (t instanceof Tensor) return t.data as Float32Array;
  const created = new Tensor(new Float32Array(size), shape);
  state[key] = created;
  return created.data as Float32Array;
}

/**
 * Scales gradients in place so their total norm is at most `maxNorm` (torch.nn.utils.clip_grad_norm_):
 * the norm is taken over all gradients together; returns that norm before clipping.
 */
export function clipGradNorm_(params: Iterable<Tensor>, maxNorm: number, normType = 2): number {
  const grads: Float32Array[] = [];
  for (const p of params) if (p.grad) grads.push(p.grad.data as Float32Array);
  if (grads.length === 0) return 0;
  let total = 0;
  if (normType === Number.POSITIVE_INFINITY) {
    for (const g of grads) for (let i = 0; i < g.length; i++) total = Math.max(total, Math.abs(g[i]));
  } else if (normType === 2) {
    const k = kernels();
    const part = new Float64Array(1);
    let acc = 0;
    for (const g of grads) {
      k.sumOfSquares(g, part);
      acc += part[0];
    }
    total = Math.sqrt(acc);
  } else {
    let acc = 0;
    for (const g of grads) for (let i = 0; i < g.length; i++) acc += Math.abs(g[i]) ** normType;
    total = acc ** (1 / normType);
  }
  const coef = maxNorm / (total + 1e-6);
  if (coef < 1) {
    const factor = new Float32Array([coef]);
    for (const g of grads) kernels().binary('mul', g, [1], factor, [0], g, [g.length]);
  }
  return total;
}
