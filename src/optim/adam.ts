/**
 * Adam and AdamW (torch.optim.Adam / AdamW). Adam adds weight decay to the gradient (L2); AdamW
 * decays the weights directly, `p *= 1 - lr * wd`, before the Adam update. Both use torch's bias
 * correction and eps placement: p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
 */
import { kernels } from '../backend/backend.js';
import type { Tensor } from '../tensor/tensor.js';
import {
  type GroupHyper,
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
  stateBuffer,
} from './optimizer.js';

export interface AdamHyper extends GroupHyper {
  betas: [number, number];
  eps: number;
  amsgrad: boolean;
  maximize: boolean;
}

type AdamParams = readonly Tensor[] | ReadonlyArray<ParamGroupInput<AdamHyper>>;

abstract class AdamBase extends Optimizer<AdamHyper> {
  protected abstract readonly decoupled: boolean;

  protected override validate(group: ParamGroup<AdamHyper>, index: number): void {
    super.validate(group, index);
    const name = this.constructor.name;
    const [b1, b2] = group.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) {
      throw new Error(`${name}: invalid betas [${b1}, ${b2}] in group ${index}; each must be in [0, 1)`);
    }
    if (!(group.eps >= 0))
      throw new Error(`${name}: invalid eps ${group.eps} in group ${index}; use eps >= 0`);
  }

  protected update(
    param: Float32Array,
    grad: Float32Array,
    state: ParamState,
    group: ParamGroup<AdamHyper>,
    shape: readonly number[],
  ): void {
    const { lr, eps, amsgrad, maximize, weightDecay: wd } = group;
    const [b1, b2] = group.betas;
    const n = param.length;
    const step = ((state.step as number | undefined) ?? 0) + 1;
    state.step = step;
    kernels().adamUpdate({
      param,
      grad,
      expAvg: stateBuffer(state, 'exp_avg', n, shape),
      expAvgSq: stateBuffer(state, 'exp_avg_sq', n, shape),
      maxExpAvgSq: amsgrad ? stateBuffer(state, 'max_exp_avg_sq', n, shape) : null,
      beta1: b1,
      beta2: b2,
      eps,
      l2: this.decoupled ? 0 : wd,
      decay: this.decoupled ? 1 - lr * wd : 1,
      stepSize: lr / (1 - b1 ** step),
      bias2Sqrt: Math.sqrt(1 - b2 ** step),
      maximize,
    });
  }
}

const DEFAULTS: AdamHyper = {
  lr: 1e-3,
  betas: [0.9, 0.999],
  eps: 1e-8,
  weightDecay: 0,
  amsgrad: false,
  maximize: false,
};

export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: AdamParams, options: Partial<AdamHyper> = {}) {
    super(params, { ...DEFAULTS, betas: [...DEFAULTS.betas], ...options });
  }
}

/** AdamW; torch's default weight decay is 0.01. */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: AdamParams, options: Partial<AdamHyper> = {}) {
    super(params, { ...DEFAULTS, betas: [...DEFAULTS.betas], weightDecay: 1e-2, ...options });
  }
}
