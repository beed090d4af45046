/**
 * Convolution, pooling and upsampling modules with torch's parameter names (`weight`, `bias`) and
 * torch's default initialization; thin shells over ops/conv, ops/pool and ops/resample.
 */
import {
  type ConvOptions,
  conv1d,
  conv2d,
  conv3d,
  convTranspose1d,
  convTranspose2d,
  convTranspose3d,
  type IntOrTuple,
  pixelShuffle,
  tupleOf,
} from '../ops/conv.js';
import { zeros } from '../ops/creation.js';
import {
  type AdaptiveSize,
  adaptiveAvgPool2d,
  adaptiveMaxPool2d,
  type AvgPoolOptions,
  avgPool2d,
  type MaxPoolOptions,
  maxPool2d,
} from '../ops/pool.js';
import { type InterpolateMode, interpolate } from '../ops/resample.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { torchDefaultInit_ } from './init.js';
import { Module, Parameter, type TensorModule } from './module.js';

export interface ConvModuleOptions extends ConvOptions {
  bias?: boolean;
}

type ConvFn = (x: Tensor, w: Tensor, b: Tensor | null, o: ConvOptions) => Tensor;

abstract class ConvNd extends Module implements TensorModule {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: number[];

  constructor(
    nd: number,
    private readonly fn: ConvFn,
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: IntOrTuple,
    readonly options: ConvModuleOptions,
  ) {
    super();
    const name = this.constructor.name;
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(
        `${name}: inChannels ${inChannels} and outChannels ${outChannels} must be divisible by groups=${groups}`,
      );
    }
    this.kernelSize = tupleOf(kernelSize, nd, 'kernelSize', name, 1);
    this.weight = new Parameter(zeros([outChannels, inChannels / groups, ...this.kernelSize]));
    this.bias = options.bias === false ? null : new Parameter(zeros([outChannels]));
    torchDefaultInit_(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    return this.fn(x, this.weight, this.bias, this.options);
  }
}

/** torch.nn.Conv1d: weight (out, in / groups, k). */
export class Conv1d extends ConvNd {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: IntOrTuple,
    options: ConvModuleOptions = {},
  ) {
    super(1, conv1d, inChannels, outChannels, kernelSize, options);
  }
}

/** torch.nn.Conv2d: weight (out, in / groups, kH, kW). */
export class Conv2d extends ConvNd {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: IntOrTuple,
    options: ConvModuleOptions = {},
  ) {
    super(2, conv2d, inChannels, outChannels, kernelSize, options);
  }
}

/** torch.nn.Conv3d: weight (out, in / groups, kD, kH, kW). */
export class Conv3d extends ConvNd {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: IntOrTuple,
    options: ConvModuleOptions = {},
  ) {
    super(3, conv3d, inChannels, outChannels, kernelSize, options);
  }
}

export interface ConvTransposeModuleOptions {
  stride?: IntOrTuple;
  padding?: IntOrTuple;
  outputPadding?: IntOrTuple;
  dilation?: IntOrTuple;
  groups?: number;
  bias?: boolean;
}

type ConvTransposeFn = typeof convTranspose2d;

abstract class ConvTransposeNd extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: number[];

  constructor(
    private readonly nd: number,
    private readonly fn: ConvTransposeFn,
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: IntOrTuple,
    readonly options: ConvTransposeModuleOptions,
  ) {
    super();
    const name = this.constructor.name;
    const groups = options.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new Error(
        `${name}: inChannels ${inChannels} and outChannels ${outChannels} must be divisible by groups=${groups}`,
      );
    }
    this.kernelSize = tupleOf(kernelSize, nd, 'kernelSize', name, 1);
    this.weight = new Parameter(zeros([inChannels, outChannels / groups, ...this.kernelSize]));
    this.bias = options.bias === false ? null : new Parameter(zeros([outChannels]));
    torchDefaultInit_(this.weight, this.bias);
  }

  /** `outputSize` (the spatial size wanted) picks the outputPadding, as torch's output_size does. */
  forward(x: Tensor, outputSize?: readonly number[]): Tensor {
    const name = this.constructor.name;
    let outputPadding = this.options.outputPadding ?? 0;
    if (outputSize) {
      const nd = this.nd;
      const stride = tupleOf(this.options.stride ?? 1, nd, 'stride', name, 1);
      const padding = tupleOf(this.options.padding ?? 0, nd, 'padding', name);
      const dilation = tupleOf(this.options.dilation ?? 1, nd, 'dilation', name, 1);
      const wanted = outputSize.slice(-nd);
      const inSize = x.shape.slice(-nd);
      outputPadding = wanted.map((s, i) => {
        const min = (inSize[i] - 1) * stride[i] - 2 * padding[i] + dilation[i] * (this.kernelSize[i] - 1) + 1;
        const p = s - min;
        if (p < 0 || p >= Math.max(stride[i], dilation[i])) {
          throw new Error(
            `${name}: outputSize ${fmt(outputSize)} is not reachable from input ${fmt(x.shape)}`,
          );
        }
        return p;
      });
    }
    return this.fn(x, this.weight, this.bias, { ...this.options, outputPadding });
  }
}

/** torch.nn.ConvTranspose1d: weight (in, out / groups, k). */
export class ConvTranspose1d extends ConvTransposeNd implements TensorModule {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: IntOrTuple,
    options: ConvTransposeModuleOptions = {},
  ) {
    super(1, convTranspose1d, inChannels, outChannels, kernelSize, options);
  }
}

/** torch.nn.ConvTranspose2d: weight (in, out / groups, kH, kW). */
export class ConvTranspose2d extends ConvTransposeNd implements TensorModule {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: IntOrTuple,
    options: ConvTransposeModuleOptions = {},
  ) {
    super(2, convTranspose2d, inChannels, outChannels, kernelSize, options);
  }
}

/** torch.nn.ConvTranspose3d: weight (in, out / groups, kD, kH, kW). */
export class ConvTranspose3d extends ConvTransposeNd implements TensorModule {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: IntOrTuple,
    options: ConvTransposeModuleOptions = {},
  ) {
    super(3, convTranspose3d, inChannels, outChannels, kernelSize, options);
  }
}

export class MaxPool2d extends Module implements TensorModule {
  constructor(
    readonly kernelSize: IntOrTuple,
    readonly options: MaxPoolOptions = {},
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.options);
  }
}

export class AvgPool2d extends Module implements TensorModule {
  constructor(
    readonly kernelSize: IntOrTuple,
    readonly options: AvgPoolOptions = {},
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.options);
  }
}

export class AdaptiveAvgPool2d extends Module implements TensorModule {
  constructor(readonly outputSize: AdaptiveSize) {
    super();
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }
}

export class AdaptiveMaxPool2d extends Module implements TensorModule {
  constructor(readonly outputSize: AdaptiveSize) {
    super();
  }

  forward(x: Tensor): Tensor {
    return adaptiveMaxPool2d(x, this.outputSize);
  }
}

export interface UpsampleOptions {
  size?: number | readonly number[];
  scaleFactor?: number | readonly number[];
  /** torch's default is 'nearest'. */
  mode?: InterpolateMode;
  alignCorners?: boolean;
}

/** torch.nn.Upsample: F.interpolate with fixed options. */
export class Upsample extends Module implements TensorModule {
  constructor(readonly options: UpsampleOptions) {
    super();
  }

  forward(x: Tensor): Tensor {
    return interpolate(x, this.options);
  }
}

export class PixelShuffle extends Module implements TensorModule {
  constructor(readonly upscaleFactor: number) {
    super();
  }

  forward(x: Tensor): Tensor {
    return pixelShuffle(x, this.upscaleFactor);
  }
}
