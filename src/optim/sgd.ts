/** SGD with momentum, dampening, Nesterov and L2 weight decay (torch.optim.SGD). */
import type { Tensor } from '../tensor/tensor.js';
import {
  type GroupHyper,
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
  stateBuffer,
} from './optimizer.js';

export interface SgdHyper extends GroupHyper {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  maximize: boolean;
}

export class SGD extends Optimizer<SgdHyper> {
  constructor(
    params: readonly Tensor[] | ReadonlyArray<ParamGroupInput<SgdHyper>>,
    options: Partial<SgdHyper> = {},
  ) {
    super(params, {
      lr: 1e-3,
      momentum: 0,
      dampening: 0,
      weightDecay: 0,
      nesterov: false,
      maximize: false,
      ...options,
    });
  }

  protected override validate(group: ParamGroup<SgdHyper>, index: number): void {
    super.validate(group, index);
    if (!(group.momentum >= 0))
      throw new Error(`SGD: invalid momentum ${group.momentum} in group ${index}; use momentum >= 0`);
    if (group.nesterov && (group.momentum <= 0 || group.dampening !== 0)) {
      throw new Error(
        `SGD: nesterov needs momentum > 0 and dampening 0 (group ${index} has momentum ${group.momentum}, dampening ${group.dampening})`,
      );
    }
  }

  protected update(
    param: Float32Array,
    grad: Float32Array,
    state: ParamState,
    group: ParamGroup<SgdHyper>,
    shape: readonly number[],
  ): void {
    const { lr, momentum, dampening, weightDecay: wd, nesterov, maximize } = group;
    const first = state.momentum_buffer === undefined;
    const buf = momentum !== 0 ? stateBuffer(state, 'momentum_buffer', param.length, shape) : null;
    for (let i = 0; i < param.length; i++) {
      let d = maximize ? -grad[i] : grad[i];
      if (wd !== 0) d += wd * param[i];
      if (buf) {
        // torch initializes the buffer with the first gradient itself (no dampening on step 1).
        buf[i] = first ? d : momentum * buf[i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * buf[i] : buf[i];
      }
      param[i] -= lr * d;
    }
  }
}
