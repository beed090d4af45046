/**
 * BatchNorm1d/2d/3d, GroupNorm and FrozenBatchNorm2d with torch's parameter and buffer names
 * (weight, bias, running_mean, running_var, num_batches_tracked), so torchvision/timm checkpoints load.
 */
import { batchNorm, groupNorm } from '../ops/batch_norm.js';
import { ones, scalar, zeros } from '../ops/creation.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, Parameter, type TensorModule } from './module.js';

export interface BatchNormModuleOptions {
  eps?: number;
  /** Weight of the new batch statistic in the running average; null for a cumulative average. */
  momentum?: number | null;
  affine?: boolean;
  trackRunningStats?: boolean;
}

abstract class BatchNormBase extends Module implements TensorModule {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly eps: number;
  readonly momentum: number | null;
  readonly trackRunningStats: boolean;

  constructor(
    readonly numFeatures: number,
    options: BatchNormModuleOptions = {},
  ) {
    super();
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum === undefined ? 0.1 : options.momentum;
    this.trackRunningStats = options.trackRunningStats ?? true;
    const affine = options.affine ?? true;
    this.weight = affine ? new Parameter(ones([numFeatures])) : null;
    this.bias = affine ? new Parameter(zeros([numFeatures])) : null;
    if (this.trackRunningStats) {
      this.registerBuffer('running_mean', zeros([numFeatures]));
      this.registerBuffer('running_var', ones([numFeatures]));
      this.registerBuffer('num_batches_tracked', scalar(0, 'int64'));
    }
  }

  /** The running mean buffer (null without trackRunningStats). */
  get runningMean(): Tensor | null {
    return this.trackRunningStats ? this.buffer('running_mean') : null;
  }

  get runningVar(): Tensor | null {
    return this.trackRunningStats ? this.buffer('running_var') : null;
  }

  get numBatchesTracked(): number {
    return this.trackRunningStats ? this.buffer('num_batches_tracked').item() : 0;
  }

  resetRunningStats(): void {
    if (!this.trackRunningStats) return;
    this.buffer('running_mean').data.fill(0);
    this.buffer('running_var').data.fill(1);
    this.buffer('num_batches_tracked').data.fill(0);
  }

  protected abstract checkInput(x: Tensor): void;

  forward(x: Tensor): Tensor {
    this.checkInput(x);
    let factor = this.momentum ?? 0;
    if (this.training && this.trackRunningStats) {
      const tracked = this.buffer('num_batches_tracked');
      tracked.data[0] += 1;
      if (this.momentum === null) factor = 1 / tracked.data[0];
    }
    // Without running stats the batch statistics are used in eval too (torch's bn_training).
    const useBatchStats = this.training || !this.trackRunningStats;
    return batchNorm(x, this.runningMean, this.runningVar, this.weight, this.bias, {
      training: useBatchStats,
      momentum: factor,
      eps: this.eps,
    });
  }
}

/** nn.BatchNorm1d over (N, C) or (N, C, L). */
export class BatchNorm1d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 2 && x.ndim !== 3) {
      throw new Error(`BatchNorm1d: expected (N, C) or (N, C, L) input, got ${fmt(x.shape)}`);
    }
  }
}

/** nn.BatchNorm2d over (N, C, H, W). */
export class BatchNorm2d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 4) throw new Error(`BatchNorm2d: expected (N, C, H, W) input, got ${fmt(x.shape)}`);
  }
}

/** nn.BatchNorm3d over (N, C, D, H, W). */
export class BatchNorm3d extends BatchNormBase {
  protected checkInput(x: Tensor): void {
    if (x.ndim !== 5) throw new Error(`BatchNorm3d: expected (N, C, D, H, W) input, got ${fmt(x.shape)}`);
  }
}

/** nn.GroupNorm(numGroups, numChannels, { eps = 1e-5, affine = true }). */
export class GroupNorm extends Module implements TensorModule {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly eps: number;

  constructor(
    readonly numGroups: number,
    readonly numChannels: number,
    options: { eps?: number; affine?: boolean } = {},
  ) {
    super();
    if (!Number.isInteger(numGroups) || numGroups <= 0 || numChannels % numGroups !== 0) {
      throw new Error(`GroupNorm: ${numChannels} channels cannot be split into ${numGroups} groups`);
    }
    this.eps = options.eps ?? 1e-5;
    const affine = options.affine ?? true;
    this.weight = affine ? new Parameter(ones([numChannels])) : null;
    this.bias = affine ? new Parameter(zeros([numChannels])) : null;
  }

  forward(x: Tensor): Tensor {
    if (x.ndim < 2 || x.shape[1] !== this.numChannels) {
      throw new Error(`GroupNorm: expected (N, ${this.numChannels}, ...) input, got ${fmt(x.shape)}`);
    }
    return groupNorm(x, this.numGroups, this.weight, this.bias, this.eps);
  }
}

/**
 * torchvision's FrozenBatchNorm2d (DETR's backbone): batch norm with fixed statistics and affine,
 * all four stored as buffers, so neither training mode nor an optimizer changes them.
 * Checkpoints of a trainable BatchNorm carry num_batches_tracked, which this module does not have;
 * torchvision drops that key on load and a checkpoint adapter must do the same.
 */
export class FrozenBatchNorm2d extends Module implements TensorModule {
  readonly eps: number;

  constructor(
    readonly numFeatures: number,
    options: { eps?: number } = {},
  ) {
    super();
    this.eps = options.eps ?? 1e-5;
    this.registerBuffer('weight', ones([numFeatures]));
    this.registerBuffer('bias', zeros([numFeatures]));
    this.registerBuffer('running_mean', zeros([numFeatures]));
    this.registerBuffer('running_var', ones([numFeatures]));
  }

  forward(x: Tensor): Tensor {
    if (x.ndim !== 4) throw new Error(`FrozenBatchNorm2d: expected (N, C, H, W) input, got ${fmt(x.shape)}`);
    return batchNorm(
      x,
      this.buffer('running_mean'),
      this.buffer('running_var'),
      this.buffer('weight'),
      this.buffer('bias'),
      { training: false, eps: this.eps },
    );
  }
}
