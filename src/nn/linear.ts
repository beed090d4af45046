/** Linear and LayerNorm: the two layers every transformer is made of. */
import { zeros } from '../ops/creation.js';
import { linear } from '../ops/matmul.js';
import { layerNorm } from '../ops/normalization.js';
import type { Tensor } from '../tensor/tensor.js';
import { ones_, torchDefaultInit_ } from './init.js';
import { Module, Parameter, type TensorModule } from './module.js';

export class Linear extends Module implements TensorModule {
  weight: Parameter;
  bias: Parameter | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = new Parameter(zeros([outFeatures, inFeatures]));
    this.bias = options.bias === false ? null : new Parameter(zeros([outFeatures]));
    torchDefaultInit_(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class LayerNorm extends Module implements TensorModule {
  weight: Parameter | null;
  bias: Parameter | null;
  readonly normalizedShape: number[];

  constructor(
    normalizedShape: number | readonly number[],
    readonly options: { eps?: number; elementwiseAffine?: boolean; bias?: boolean } = {},
  ) {
    super();
    this.normalizedShape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
    const affine = options.elementwiseAffine ?? true;
    this.weight = affine ? new Parameter(ones_(zeros(this.normalizedShape))) : null;
    this.bias = affine && options.bias !== false ? new Parameter(zeros(this.normalizedShape)) : null;
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.options.eps ?? 1e-5);
  }
}
