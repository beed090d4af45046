/**
 * The Vaswani et al. transformer as torch.nn.Transformer: encoder and decoder layers (post-norm by
 * default, pre-norm with normFirst), their stacks with a final LayerNorm, and torch's names
 * (encoder.layers.0.self_attn.in_proj_weight, decoder.norm.weight, ...) so torch checkpoints load as is.
 *
 * Attention maps: pass `captureAttention: true` to any forward to also get the per-head weights
 * (B, H, L, S) of every attention block; without it the layers never compute them.
 */
import { causalMask } from '../ops/attention.js';
import { add, gelu, relu } from '../ops/elementwise.js';
import { fmt } from '../tensor/shape.js';
import type { Tensor } from '../tensor/tensor.js';
import { MultiheadAttention } from './attention.js';
import { xavierUniform_ } from './init.js';
import { Dropout } from './layers.js';
import { LayerNorm, Linear } from './linear.js';
import { Module, ModuleList } from './module.js';

export type TransformerActivation = 'relu' | 'gelu' | ((x: Tensor) => Tensor);

export interface TransformerLayerOptions {
  dModel: number;
  nhead: number;
  dimFeedforward?: number;
  dropout?: number;
  activation?: TransformerActivation;
  layerNormEps?: number;
  /** (B, L, E) inputs instead of torch's default (L, B, E). */
  batchFirst?: boolean;
  /** Pre-norm (LayerNorm before attention and feed-forward) instead of the original post-norm. */
  normFirst?: boolean;
  bias?: boolean;
}

export interface EncoderOptions {
  /** (L, L) or (B*nhead, L, L); bool true = not allowed, float additive (torch's MHA convention). */
  srcMask?: Tensor | null;
  /** (B, L): bool true = padding, ignored as a key. */
  srcKeyPaddingMask?: Tensor | null;
  /** Causal self-attention; with srcMask given it is a hint and srcMask is used. */
  srcIsCausal?: boolean;
}

export interface DecoderOptions {
  tgtMask?: Tensor | null;
  memoryMask?: Tensor | null;
  tgtKeyPaddingMask?: Tensor | null;
  memoryKeyPaddingMask?: Tensor | null;
  tgtIsCausal?: boolean;
  memoryIsCausal?: boolean;
}

type Capture = { captureAttention: true };

function activationFn(a: TransformerActivation | undefined): (x: Tensor) => Tensor {
  if (a === undefined || a === 'relu') return relu;
  if (a === 'gelu') return (x) => gelu(x);
  if (typeof a === 'function') return a;
  throw new Error(`Transformer: activation must be 'relu', 'gelu' or a function, got '${a}'`);
}

type AttendResult = { output: Tensor; weights: Tensor | null };

/** Runs one MHA block; weights (per head) are computed only when captured. */
function attend(
  attn: MultiheadAttention,
  x: Tensor,
  kv: Tensor,
  attnMask: Tensor | null | undefined,
  keyPaddingMask: Tensor | null | undefined,
  isCausal: boolean | undefined,
  capture: boolean,
): AttendResult {
  return attn.forward(x, kv, kv, {
    attnMask,
    keyPaddingMask,
    isCausal,
    needWeights: capture,
    averageAttnWeights: false,
  });
}

export class TransformerEncoderLayer extends Module {
  self_attn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  private readonly activation: (x: Tensor) => Tensor;

  constructor(readonly options: TransformerLayerOptions) {
    super();
    const { dModel, nhead } = options;
    const p = options.dropout ?? 0.1;
    const bias = options.bias ?? true;
    const eps = options.layerNormEps ?? 1e-5;
    this.self_attn = new MultiheadAttention(dModel, nhead, {
      dropout: p,
      bias,
      batchFirst: options.batchFirst,
    });
    this.linear1 = new Linear(dModel, options.dimFeedforward ?? 2048, { bias });
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(options.dimFeedforward ?? 2048, dModel, { bias });
    this.norm1 = new LayerNorm(dModel, { eps, bias });
    this.norm2 = new LayerNorm(dModel, { eps, bias });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
    this.activation = activationFn(options.activation);
  }

  forward(src: Tensor, options: EncoderOptions & Capture): { output: Tensor; attention: Tensor };
  forward(src: Tensor, options?: EncoderOptions & { captureAttention?: boolean }): Tensor;
  forward(
    src: Tensor,
    options: EncoderOptions & { captureAttention?: boolean } = {},
  ): Tensor | { output: Tensor; attention: Tensor } {
    const capture = options.captureAttention ?? false;
    const selfAttention = (x: Tensor) =>
      attend(this.self_attn, x, x, options.srcMask, options.srcKeyPaddingMask, options.srcIsCausal, capture);
    let x = src;
    let sa: AttendResult;
    if (this.options.normFirst) {
      sa = selfAttention(this.norm1.forward(x));
      x = add(x, this.dropout1.forward(sa.output));
      x = add(x, this.feedForward(this.norm2.forward(x)));
    } else {
      sa = selfAttention(x);
      x = this.norm1.forward(add(x, this.dropout1.forward(sa.output)));
      x = this.norm2.forward(add(x, this.feedForward(x)));
    }
    return capture ? { output: x, attention: sa.weights as Tensor } : x;
  }

  private feedForward(x: Tensor): Tensor {
    const h = this.dropout.forward(this.activation(this.linear1.forward(x)));
    return this.dropout2.forward(this.linear2.forward(h));
  }
}

export class TransformerDecoderLayer extends Module {
  self_attn: MultiheadAttention;
  multihead_attn: MultiheadAttention;
  linear1: Linear;
  dropout: Dropout;
  linear2: Linear;
  norm1: LayerNorm;
  norm2: LayerNorm;
  norm3: LayerNorm;
  dropout1: Dropout;
  dropout2: Dropout;
  dropout3: Dropout;
  private readonly activation: (x: Tensor) => Tensor;

  constructor(readonly options: TransformerLayerOptions) {
    super();
    const { dModel, nhead } = options;
    const p = options.dropout ?? 0.1;
    const bias = options.bias ?? true;
    const eps = options.layerNormEps ?? 1e-5;
    const mhaOptions = { dropout: p, bias, batchFirst: options.batchFirst };
    this.self_attn = new MultiheadAttention(dModel, nhead, mhaOptions);
    this.multihead_attn = new MultiheadAttention(dModel, nhead, mhaOptions);
    this.linear1 = new Linear(dModel, options.dimFeedforward ?? 2048, { bias });
    this.dropout = new Dropout(p);
    this.linear2 = new Linear(options.dimFeedforward ?? 2048, dModel, { bias });
    this.norm1 = new LayerNorm(dModel, { eps, bias });
    this.norm2 = new LayerNorm(dModel, { eps, bias });
    this.norm3 = new LayerNorm(dModel, { eps, bias });
    this.dropout1 = new Dropout(p);
    this.dropout2 = new Dropout(p);
    this.dropout3 = new Dropout(p);
    this.activation = activationFn(options.activation);
  }

  forward(
    tgt: Tensor,
    memory: Tensor,
    options: DecoderOptions & Capture,
  ): { output: Tensor; selfAttention: Tensor; crossAttention: Tensor };
  forward(tgt: Tensor, memory: Tensor, options?: DecoderOptions & { captureAttention?: boolean }): Tensor;
  forward(
    tgt: Tensor,
    memory: Tensor,
    options: DecoderOptions & { captureAttention?: boolean } = {},
  ): Tensor | { output: Tensor; selfAttention: Tensor; crossAttention: Tensor } {
    const capture = options.captureAttention ?? false;
    const selfAttention = (x: Tensor) =>
      attend(this.self_attn, x, x, options.tgtMask, options.tgtKeyPaddingMask, options.tgtIsCausal, capture);
    const crossAttention = (x: Tensor) =>
      attend(
        this.multihead_attn,
        x,
        memory,
        options.memoryMask,
        options.memoryKeyPaddingMask,
        options.memoryIsCausal,
        capture,
      );
    let x = tgt;
    let sa: AttendResult;
    let ca: AttendResult;
    if (this.options.normFirst) {
      sa = selfAttention(this.norm1.forward(x));
      x = add(x, this.dropout1.forward(sa.output));
      ca = crossAttention(this.norm2.forward(x));
      x = add(x, this.dropout2.forward(ca.output));
      x = add(x, this.feedForward(this.norm3.forward(x)));
    } else {
      sa = selfAttention(x);
      x = this.norm1.forward(add(x, this.dropout1.forward(sa.output)));
      ca = crossAttention(x);
      x = this.norm2.forward(add(x, this.dropout2.forward(ca.output)));
      x = this.norm3.forward(add(x, this.feedForward(x)));
    }
    if (!capture) return x;
    return { output: x, selfAttention: sa.weights as Tensor, crossAttention: ca.weights as Tensor };
  }

  private feedForward(x: Tensor): Tensor {
    const h = this.dropout.forward(this.activation(this.linear1.forward(x)));
    return this.dropout3.forward(this.linear2.forward(h));
  }
}

/** torch deep-copies the layer it is given; a factory builds fresh (independently initialized) ones. */
function replicate<L extends TransformerEncoderLayer | TransformerDecoderLayer>(
  layer: L | (() => L),
  n: number,
): L[] {
  if (!(layer instanceof Module)) return Array.from({ length: n }, layer as () => L);
  const state = layer.stateDict();
  const Layer = layer.constructor as new (options: TransformerLayerOptions) => L;
  return Array.from({ length: n }, () => {
    const copy = new Layer(layer.options);
    copy.loadStateDict(state);
    copy.train(layer.training);
    return copy;
  });
}

export class TransformerEncoder extends Module {
  layers: ModuleList<TransformerEncoderLayer>;
  norm: LayerNorm | null;

  constructor(
    layer: TransformerEncoderLayer | (() => TransformerEncoderLayer),
    readonly numLayers: number,
    options: { norm?: LayerNorm | null } = {},
  ) {
    super();
    this.layers = new ModuleList(replicate(layer, numLayers));
    this.norm = options.norm ?? null;
  }

  forward(src: Tensor, options: EncoderOptions & Capture): { output: Tensor; attentions: Tensor[] };
  forward(src: Tensor, options?: EncoderOptions & { captureAttention?: boolean }): Tensor;
  forward(
    src: Tensor,
    options: EncoderOptions & { captureAttention?: boolean } = {},
  ): Tensor | { output: Tensor; attentions: Tensor[] } {
    const attentions: Tensor[] = [];
    let x = src;
    for (const layer of this.layers) {
      if (options.captureAttention) {
        const r = layer.forward(x, { ...options, captureAttention: true });
        attentions.push(r.attention);
        x = r.output;
      } else x = layer.forward(x, options);
    }
    if (this.norm) x = this.norm.forward(x);
    return options.captureAttention ? { output: x, attentions } : x;
  }
}

export class TransformerDecoder extends Module {
  layers: ModuleList<TransformerDecoderLayer>;
  norm: LayerNorm | null;

  constructor(
    layer: TransformerDecoderLayer | (() => TransformerDecoderLayer),
    readonly numLayers: number,
    options: { norm?: LayerNorm | null } = {},
  ) {
    super();
    this.layers = new ModuleList(replicate(layer, numLayers));
    this.norm = options.norm ?? null;
  }

  forward(
    tgt: Tensor,
    memory: Tensor,
    options: DecoderOptions & Capture,
  ): { output: Tensor; selfAttentions: Tensor[]; crossAttentions: Tensor[] };
  forward(tgt: Tensor, memory: Tensor, options?: DecoderOptions & { captureAttention?: boolean }): Tensor;
  forward(
    tgt: Tensor,
    memory: Tensor,
    options: DecoderOptions & { captureAttention?: boolean } = {},
  ): Tensor | { output: Tensor; selfAttentions: Tensor[]; crossAttentions: Tensor[] } {
    const selfAttentions: Tensor[] = [];
    const crossAttentions: Tensor[] = [];
    let x = tgt;
    for (const layer of this.layers) {
      if (options.captureAttention) {
        const r = layer.forward(x, memory, { ...options, captureAttention: true });
        selfAttentions.push(r.selfAttention);
        crossAttentions.push(r.crossAttention);
        x = r.output;
      } else x = layer.forward(x, memory, options);
    }
    if (this.norm) x = this.norm.forward(x);
    return options.captureAttention ? { output: x, selfAttentions, crossAttentions } : x;
  }
}

export interface TransformerOptions extends Partial<Omit<TransformerLayerOptions, 'dModel' | 'nhead'>> {
  dModel?: number;
  nhead?: number;
  numEncoderLayers?: number;
  numDecoderLayers?: number;
}

export interface TransformerAttentions {
  output: Tensor;
  /** Per encoder layer, (B, H, S, S). */
  encoderAttentions: Tensor[];
  /** Per decoder layer, (B, H, T, T). */
  decoderSelfAttentions: Tensor[];
  /** Per decoder layer, (B, H, T, S): decoder queries over encoder memory. */
  decoderCrossAttentions: Tensor[];
}

/** torch.nn.Transformer: defaults dModel 512, nhead 8, 6 + 6 layers, feed-forward 2048, dropout 0.1, ReLU. */
export class Transformer extends Module {
  encoder: TransformerEncoder;
  decoder: TransformerDecoder;
  readonly dModel: number;
  readonly nhead: number;
  readonly batchFirst: boolean;

  constructor(options: TransformerOptions = {}) {
    super();
    this.dModel = options.dModel ?? 512;
    this.nhead = options.nhead ?? 8;
    this.batchFirst = options.batchFirst ?? false;
    const layerOptions: TransformerLayerOptions = { ...options, dModel: this.dModel, nhead: this.nhead };
    const norm = () =>
      new LayerNorm(this.dModel, { eps: options.layerNormEps ?? 1e-5, bias: options.bias ?? true });
    this.encoder = new TransformerEncoder(
      () => new TransformerEncoderLayer(layerOptions),
      options.numEncoderLayers ?? 6,
      { norm: norm() },
    );
    this.decoder = new TransformerDecoder(
      () => new TransformerDecoderLayer(layerOptions),
      options.numDecoderLayers ?? 6,
      { norm: norm() },
    );
    for (const p of this.parameters()) if (p.ndim > 1) xavierUniform_(p);
  }

  /** (n, n) float mask, -inf above the diagonal: position i attends to positions <= i. */
  static generateSquareSubsequentMask(n: number): Tensor {
    return causalMask(n, n);
  }

  forward(
    src: Tensor,
    tgt: Tensor,
    options: EncoderOptions & DecoderOptions & Capture,
  ): TransformerAttentions;
  forward(
    src: Tensor,
    tgt: Tensor,
    options?: EncoderOptions & DecoderOptions & { captureAttention?: boolean },
  ): Tensor;
  forward(
    src: Tensor,
    tgt: Tensor,
    options: EncoderOptions & DecoderOptions & { captureAttention?: boolean } = {},
  ): Tensor | TransformerAttentions {
    const batchDim = this.batchFirst ? 0 : 1;
    if (src.ndim !== tgt.ndim || (src.ndim === 3 && src.shape[batchDim] !== tgt.shape[batchDim])) {
      throw new Error(
        `Transformer: src ${fmt(src.shape)} and tgt ${fmt(tgt.shape)} must have the same batch size`,
      );
    }
    if (src.shape[src.ndim - 1] !== this.dModel || tgt.shape[tgt.ndim - 1] !== this.dModel) {
      throw new Error(
        `Transformer: src ${fmt(src.shape)} and tgt ${fmt(tgt.shape)} must both end with dModel ${this.dModel}`,
      );
    }
    const encoderOptions = {
      srcMask: options.srcMask,
      srcKeyPaddingMask: options.srcKeyPaddingMask,
      srcIsCausal: options.srcIsCausal,
    };
    const decoderOptions: DecoderOptions = {
      tgtMask: options.tgtMask,
      memoryMask: options.memoryMask,
      tgtKeyPaddingMask: options.tgtKeyPaddingMask,
      memoryKeyPaddingMask: options.memoryKeyPaddingMask,
      tgtIsCausal: options.tgtIsCausal,
      memoryIsCausal: options.memoryIsCausal,
    };
    if (!options.captureAttention) {
      const memory = this.encoder.forward(src, encoderOptions);
      return this.decoder.forward(tgt, memory, decoderOptions);
    }
    const enc = this.encoder.forward(src, { ...encoderOptions, captureAttention: true });
    const dec = this.decoder.forward(tgt, enc.output, { ...decoderOptions, captureAttention: true });
    return {
      output: dec.output,
      encoderAttentions: enc.attentions,
      decoderSelfAttentions: dec.selfAttentions,
      decoderCrossAttentions: dec.crossAttentions,
    };
  }
}
