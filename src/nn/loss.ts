/**
 * Loss modules: thin wrappers over the functional losses in ops/loss.ts with torch's constructor
 * options. Class weights are buffers named as torch names them (weight, pos_weight).
 */
import {
  binaryCrossEntropy,
  binaryCrossEntropyWithLogits,
  crossEntropy,
  huberLoss,
  klDiv,
  l1Loss,
  mseLoss,
  nllLoss,
  type Reduction,
  smoothL1Loss,
} from '../ops/loss.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

abstract class Loss extends Module {
  abstract forward(input: Tensor, target: Tensor): Tensor;

  protected optionalBuffer(name: string): Tensor | null {
    return this.namedBuffers().some(([n]) => n === name) ? this.buffer(name) : null;
  }
}

export class CrossEntropyLoss extends Loss {
  readonly ignoreIndex: number;
  readonly reduction: Reduction;
  readonly labelSmoothing: number;

  constructor(
    options: {
      weight?: Tensor | null;
      ignoreIndex?: number;
      reduction?: Reduction;
      labelSmoothing?: number;
    } = {},
  ) {
    super();
    if (options.weight) this.registerBuffer('weight', options.weight);
    this.ignoreIndex = options.ignoreIndex ?? -100;
    this.reduction = options.reduction ?? 'mean';
    this.labelSmoothing = options.labelSmoothing ?? 0;
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return crossEntropy(input, target, {
      weight: this.optionalBuffer('weight'),
      ignoreIndex: this.ignoreIndex,
      reduction: this.reduction,
      labelSmoothing: this.labelSmoothing,
    });
  }
}

export class NLLLoss extends Loss {
  readonly ignoreIndex: number;
  readonly reduction: Reduction;

  constructor(options: { weight?: Tensor | null; ignoreIndex?: number; reduction?: Reduction } = {}) {
    super();
    if (options.weight) this.registerBuffer('weight', options.weight);
    this.ignoreIndex = options.ignoreIndex ?? -100;
    this.reduction = options.reduction ?? 'mean';
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return nllLoss(input, target, {
      weight: this.optionalBuffer('weight'),
      ignoreIndex: this.ignoreIndex,
      reduction: this.reduction,
    });
  }
}

export class BCEWithLogitsLoss extends Loss {
  readonly reduction: Reduction;

  constructor(options: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {}) {
    super();
    if (options.weight) this.registerBuffer('weight', options.weight);
    if (options.posWeight) this.registerBuffer('pos_weight', options.posWeight);
    this.reduction = options.reduction ?? 'mean';
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return binaryCrossEntropyWithLogits(input, target, {
      weight: this.optionalBuffer('weight'),
      posWeight: this.optionalBuffer('pos_weight'),
      reduction: this.reduction,
    });
  }
}

export class BCELoss extends Loss {
  readonly reduction: Reduction;

  constructor(options: { weight?: Tensor | null; reduction?: Reduction } = {}) {
    super();
    if (options.weight) this.registerBuffer('weight', options.weight);
    this.reduction = options.reduction ?? 'mean';
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return binaryCrossEntropy(input, target, {
      weight: this.optionalBuffer('weight'),
      reduction: this.reduction,
    });
  }
}

export class L1Loss extends Loss {
  constructor(readonly options: { reduction?: Reduction } = {}) {
    super();
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return l1Loss(input, target, this.options);
  }
}

export class MSELoss extends Loss {
  constructor(readonly options: { reduction?: Reduction } = {}) {
    super();
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return mseLoss(input, target, this.options);
  }
}

export class SmoothL1Loss extends Loss {
  constructor(readonly options: { beta?: number; reduction?: Reduction } = {}) {
    super();
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return smoothL1Loss(input, target, this.options);
  }
}

export class HuberLoss extends Loss {
  constructor(readonly options: { delta?: number; reduction?: Reduction } = {}) {
    super();
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return huberLoss(input, target, this.options);
  }
}

export class KLDivLoss extends Loss {
  constructor(readonly options: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {}) {
    super();
  }

  forward(input: Tensor, target: Tensor): Tensor {
    return klDiv(input, target, this.options);
  }
}
