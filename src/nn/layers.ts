/** Small building blocks every model uses: dropout, stochastic depth, LayerScale, Mlp, Embedding, activations. */
import { full, zeros } from '../ops/creation.js';
import { dropout, dropPath, embedding } from '../ops/dropout.js';
import { add, gelu, mul, relu, sigmoid, silu, tanh } from '../ops/elementwise.js';
import { linear } from '../ops/matmul.js';
import type { Tensor } from '../tensor/tensor.js';
import { normal_ } from './init.js';
import { Linear } from './linear.js';
import { Identity, Module, Parameter, type TensorModule } from './module.js';

/** nn.Dropout(p = 0.5): active only in training mode. */
export class Dropout extends Module implements TensorModule {
  constructor(readonly p = 0.5) {
    super();
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }
}

/** timm's DropPath (stochastic depth per sample), active only in training mode. */
export class DropPath extends Module implements TensorModule {
  constructor(
    readonly dropProb = 0,
    readonly scaleByKeep = true,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return dropPath(x, this.dropProb, this.training, this.scaleByKeep);
  }
}

/** timm's LayerScale: x * gamma with gamma (dim,) initialized to `initValues`. */
export class LayerScale extends Module implements TensorModule {
  gamma: Parameter;

  constructor(dim: number, initValues = 1e-5) {
    super();
    this.gamma = new Parameter(full([dim], initValues));
  }

  forward(x: Tensor): Tensor {
    return mul(x, this.gamma);
  }
}

/** nn.GELU; approximate 'tanh' is torch's tanh approximation. */
export class GELU extends Module implements TensorModule {
  constructor(readonly options: { approximate?: 'none' | 'tanh' } = {}) {
    super();
  }

  forward(x: Tensor): Tensor {
    return gelu(x, this.options);
  }
}

export class ReLU extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class SiLU extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return silu(x);
  }
}

export class Tanh extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

export class Sigmoid extends Module implements TensorModule {
  forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export interface MlpOptions {
  /** Defaults to inFeatures. */
  hiddenFeatures?: number;
  /** Defaults to inFeatures. */
  outFeatures?: number;
  /** Builds the activation; GELU by default (timm). */
  actLayer?: () => TensorModule;
  /** Builds a norm over the hidden features; Identity when absent (timm). */
  normLayer?: (dim: number) => TensorModule;
  /** For fc1 and fc2, or one flag for both. */
  bias?: boolean | readonly [boolean, boolean];
  /** Dropout after the activation and after fc2, or one probability for both. */
  drop?: number | readonly [number, number];
}

/** timm's Mlp: fc1 → act → drop1 → norm → fc2 → drop2, with timm's attribute names. */
export class Mlp extends Module implements TensorModule {
  fc1: Linear;
  act: TensorModule;
  drop1: Dropout;
  norm: TensorModule;
  fc2: Linear;
  drop2: Dropout;

  constructor(inFeatures: number, options: MlpOptions = {}) {
    super();
    const hidden = options.hiddenFeatures ?? inFeatures;
    const out = options.outFeatures ?? inFeatures;
    const bias =
      typeof options.bias === 'boolean' || options.bias === undefined
        ? [options.bias ?? true, options.bias ?? true]
        : options.bias;
    const drop =
      typeof options.drop === 'number' || options.drop === undefined
        ? [options.drop ?? 0, options.drop ?? 0]
        : options.drop;
    this.fc1 = new Linear(inFeatures, hidden, { bias: bias[0] });
    this.act = options.actLayer ? options.actLayer() : new GELU();
    this.drop1 = new Dropout(drop[0]);
    this.norm = options.normLayer ? options.normLayer(hidden) : new Identity();
    this.fc2 = new Linear(hidden, out, { bias: bias[1] });
    this.drop2 = new Dropout(drop[1]);
  }

  /**
   * With `residual`: residual + mlp(x). Where fc2 is a plain Linear and drop2 is inactive the add runs
   * in fc2's GEMM when no gradient is recorded (see linear's `residual`, `overwriteResidual`).
   */
  forward(x: Tensor, residual?: Tensor, overwriteResidual = false): Tensor {
    const h = this.norm.forward(this.drop1.forward(this.act.forward(this.fc1.forward(x))));
    if (residual && isPlainLinear(this.fc2) && !isDropping(this.drop2)) {
      return linear(h, this.fc2.weight, this.fc2.bias, { residual, overwriteResidual });
    }
    const y = this.drop2.forward(this.fc2.forward(h));
    return residual ? add(residual, y) : y;
  }
}

/** A Linear whose forward is Linear's own (not a subclass that changes it), so F.linear may stand in. */
export function isPlainLinear(m: Module): m is Linear {
  return m instanceof Linear && m.forward === Linear.prototype.forward;
}

/** Whether a Dropout or DropPath changes its input now. */
export function isDropping(m: Dropout | DropPath): boolean {
  return m.training && (m instanceof Dropout ? m.p : m.dropProb) > 0;
}

/** nn.Embedding: a (numEmbeddings, embeddingDim) table drawn from N(0, 1), the padding row zeroed. */
export class Embedding extends Module {
  weight: Parameter;
  readonly paddingIdx: number | null;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    options: { paddingIdx?: number | null } = {},
  ) {
    super();
    this.weight = new Parameter(normal_(zeros([numEmbeddings, embeddingDim])));
    const pad = options.paddingIdx ?? null;
    this.paddingIdx = pad !== null && pad < 0 ? pad + numEmbeddings : pad;
    if (this.paddingIdx !== null) {
      if (this.paddingIdx < 0 || this.paddingIdx >= numEmbeddings) {
        throw new Error(`Embedding: paddingIdx ${pad} out of range for ${numEmbeddings} embeddings`);
      }
      this.weight.data.fill(0, this.paddingIdx * embeddingDim, (this.paddingIdx + 1) * embeddingDim);
    }
  }

  forward(indices: Tensor): Tensor {
    return embedding(indices, this.weight, { paddingIdx: this.paddingIdx });
  }
}
