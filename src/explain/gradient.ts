/**
 * Class-specific maps from attention and its gradient with respect to a class score.
 *
 * - gradRollout (Chefer, Gur & Wolf, "Generic Attention-model Explainability for Interpreting
 *   Bi-Modal and Encoder-Decoder Transformers", ICCV 2021, eqs. 5-6): per layer
 *   Ā = mean_heads(relu(∇A ⊙ A)), then R ← R + Ā R starting from R = I. Only attention that both
 *   exists and raises the class score counts; the identity keeps each token's own contribution.
 * - tokenGradCam (the attention Grad-CAM baseline of Chefer et al., CVPR 2021): Grad-CAM with the
 *   heads of one layer as channels: α_h = mean over patch keys of ∂y/∂A[h, cls, k], map =
 *   relu(mean_h α_h A[h, cls, k]).
 *
 * The explainers take the attention tensors and their gradients; `attentionGradients` produces both
 * from any forward closure, so they never depend on a model's internals.
 */
import { enableGrad } from '../tensor/autograd.js';
import { fmt } from '../tensor/shape.js';
import { Tensor } from '../tensor/tensor.js';
import {
  attentionDims,
  chainProduct,
  firstMap,
  type MapOptions,
  resolveMapOptions,
  rowMaps,
  scaleToMax,
  type TokenMaps,
} from './attention.js';

export interface CapturedAttention {
  logits: Tensor;
  attentions: readonly Tensor[];
}

export interface AttentionGradients {
  /** (B, classes) as the forward returned them */
  logits: Tensor;
  /** the captured attention, one (B, heads, N, N) per layer */
  attentions: Tensor[];
  /** ∂(sum_b logits[b, target_b]) / ∂attention, same shapes */
  gradients: Tensor[];
  /** the class explained for each image */
  targets: number[];
}

/**
 * Runs `forward` with autograd on, then backpropagates the target class scores (one per image;
 * default the predicted class) to every captured attention tensor.
 *
 * The captured tensors must be the very probabilities the model multiplies with the values (so that
 * they are in the graph of the logits), and something upstream must require grad (the parameters
 * do by default). Parameter `.grad`s accumulate as in any backward: zero them before training.
 */
export function attentionGradients(
  forward: () => CapturedAttention,
  target?: number | readonly number[],
): AttentionGradients {
  const fn = 'attentionGradients';
  const { logits, attentions } = enableGrad(forward);
  if (!(logits instanceof Tensor) || logits.ndim !== 2) {
    throw new Error(
      `${fn}: the forward must return { logits: (B, classes), attentions }, got logits ${logits instanceof Tensor ? fmt(logits.shape) : typeof logits}`,
    );
  }
  const [batch, classes] = logits.shape;
  attentionDims(fn, attentions);
  if (attentions[0].shape[0] !== batch) {
    throw new Error(
      `${fn}: attention batch ${attentions[0].shape[0]} differs from the logits' batch ${batch}`,
    );
  }
  attentions.forEach((a, l) => {
    if (!a.requiresGrad) {
      throw new Error(
        `${fn}: attention ${l} is not part of the autograd graph; run the forward outside noGrad with parameters (or the input) requiring grad`,
      );
    }
    a.retainGrad();
    a.grad = null;
  });
  if (typeof target === 'object' && target.length !== batch) {
    throw new Error(`${fn}: ${target.length} target classes for a batch of ${batch}`);
  }
  const logitData = logits.data as Float32Array;
  const targets = Array.from({ length: batch }, (_, b) => {
    const t =
      target === undefined
        ? argmaxRow(logitData, b * classes, classes)
        : typeof target === 'number'
          ? target
          : target[b];
    if (!Number.isInteger(t) || t < 0 || t >= classes) {
      throw new Error(`${fn}: target class ${t} for image ${b} is outside [0, ${classes - 1}]`);
    }
    return t;
  });
  const seed = new Float32Array(batch * classes);
  targets.forEach((t, b) => {
    seed[b * classes + t] = 1;
  });
  logits.backward(new Tensor(seed, logits.shape));
  const gradients = attentions.map((a, l) => {
    if (!a.grad) {
      throw new Error(
        `${fn}: attention ${l} received no gradient; the captured tensor must be the one the model multiplies with the values`,
      );
    }
    return a.grad;
  });
  return { logits: logits.detach(), attentions: attentions.map((a) => a.detach()), gradients, targets };
}

function argmaxRow(data: Float32Array, offset: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (data[offset + i] > data[offset + best]) best = i;
  return best;
}

function checkGradients(fn: string, attentions: readonly Tensor[], gradients: readonly Tensor[]): void {
  if (!Array.isArray(gradients) || gradients.length !== attentions.length) {
    throw new Error(
      `${fn}: ${gradients?.length} gradients for ${attentions.length} attention layers; pass one per layer`,
    );
  }
  gradients.forEach((g, l) => {
    if (!(g instanceof Tensor) || g.shape.some((s, i) => s !== attentions[l].shape[i]) || g.ndim !== 4) {
      throw new Error(
        `${fn}: gradient ${l} has shape ${g instanceof Tensor ? fmt(g.shape) : typeof g} but attention ${l} is ${fmt(attentions[l].shape)}`,
      );
    }
  });
}

export type GradientMapOptions = MapOptions;

export interface GradRolloutResult extends TokenMaps {
  /** (B, N, N) relevance R = (I + Ā_L) ... (I + Ā_1) */
  matrix: Tensor;
}

export function gradRollout(
  attentions: readonly Tensor[],
  gradients: readonly Tensor[],
  options: GradientMapOptions = {},
): GradRolloutResult {
  const fn = 'gradRollout';
  const { batch, heads, tokens } = attentionDims(fn, attentions);
  checkGradients(fn, attentions, gradients);
  const { prefixTokens, grid, sources } = resolveMapOptions(fn, tokens, options);
  const nn = tokens * tokens;
  // Per layer I + Ā with Ā = mean_h relu(∇A ⊙ A), so that R ← R + Ā R is R ← (I + Ā) R.
  const steps = attentions.map((attn, l) => {
    const a = attn.data as Float32Array;
    const g = gradients[l].data as Float32Array;
    const step = new Float64Array(batch * nn);
    for (let b = 0; b < batch; b++) {
      const o = b * nn;
      for (let h = 0; h < heads; h++) {
        const base = (b * heads + h) * nn;
        for (let i = 0; i < nn; i++) {
          const v = a[base + i] * g[base + i];
          if (v > 0) step[o + i] += v / heads;
        }
      }
      for (let i = 0; i < tokens; i++) step[o + i * tokens + i] += 1;
    }
    return step;
  });
  const matrix = chainProduct(steps, batch, tokens);
  const r = matrix.data as Float32Array;
  const maps = rowMaps(
    (b, q, k) => r[b * nn + q * tokens + k],
    { batch, tokens, prefixTokens, grid },
    sources,
  );
  return { matrix, map: firstMap(maps), maps };
}

export interface TokenGradCamOptions extends GradientMapOptions {
  /** The attention layer whose heads are the channels; negative counts from the end. Default -1. */
  layer?: number;
}

/** Grad-CAM on the attention of one layer: (B, gh, gw) and (B, T, gh, gw), scaled to max 1. */
export function tokenGradCam(
  attentions: readonly Tensor[],
  gradients: readonly Tensor[],
  options: TokenGradCamOptions = {},
): TokenMaps {
  const fn = 'tokenGradCam';
  const { batch, heads, tokens, layers } = attentionDims(fn, attentions);
  checkGradients(fn, attentions, gradients);
  const { prefixTokens, grid, sources } = resolveMapOptions(fn, tokens, options);
  const [gh, gw] = grid;
  const layerOption = options.layer ?? -1;
  const layer = layerOption < 0 ? layers + layerOption : layerOption;
  if (!Number.isInteger(layer) || layer < 0 || layer >= layers) {
    throw new Error(`${fn}: layer ${layerOption} is outside the ${layers} attention layers`);
  }
  const a = attentions[layer].data as Float32Array;
  const g = gradients[layer].data as Float32Array;
  const patches = gh * gw;
  const rowsOf = sources === 'mean' ? [Array.from({ length: tokens }, (_, q) => q)] : sources.map((s) => [s]);
  const out = new Float32Array(batch * rowsOf.length * patches);
  const attnRow = new Float64Array(patches);
  const gradRow = new Float64Array(patches);
  for (let b = 0; b < batch; b++) {
    rowsOf.forEach((rows, s) => {
      const o = (b * rowsOf.length + s) * patches;
      const cam = new Float64Array(patches);
      for (let h = 0; h < heads; h++) {
        // The source row of this head over the patch keys (averaged over rows for 'mean').
        attnRow.fill(0);
        gradRow.fill(0);
        for (const q of rows) {
          const base = ((b * heads + h) * tokens + q) * tokens + prefixTokens;
          for (let k = 0; k < patches; k++) {
            attnRow[k] += a[base + k] / rows.length;
            gradRow[k] += g[base + k] / rows.length;
          }
        }
        let alpha = 0;
        for (let k = 0; k < patches; k++) alpha += gradRow[k] / patches;
        for (let k = 0; k < patches; k++) cam[k] += (alpha * attnRow[k]) / heads;
      }
      for (let k = 0; k < patches; k++) out[o + k] = Math.max(0, cam[k]);
      scaleToMax(out, o, patches);
    });
  }
  const maps = new Tensor(out, [batch, rowsOf.length, gh, gw]);
  return { map: firstMap(maps), maps };
}
