/**
 * One entry point over the explainers for a forward closure and a layout: runs the forward (with
 * autograd for the gradient methods), picks the explainer, and returns the maps with their names.
 */
import { noGrad } from '../tensor/autograd.js';
import type { Tensor } from '../tensor/tensor.js';
import type { HeadFusion } from './attention.js';
import { attentionFlow } from './flow.js';
import { attentionGradients, type CapturedAttention, gradRollout, tokenGradCam } from './gradient.js';
import type { AttentionLayout } from './layout.js';
import { attentionRollout } from './rollout.js';
import { swinRollout } from './swin.js';

export const EXPLAIN_METHODS = ['rollout', 'flow', 'grad-rollout', 'gradcam'] as const;
export type ExplainMethod = (typeof EXPLAIN_METHODS)[number];

export interface ExplainRequest {
  method: ExplainMethod;
  headFusion?: HeadFusion;
  discardRatio?: number;
  /** The class the gradient methods explain, one for all images or one per image; default predicted. */
  target?: number | readonly number[];
}

export interface Explanation {
  logits: Tensor;
  /** the captured attention, detached */
  attentions: Tensor[];
  /** (B, T, gh, gw), each map scaled to max 1 */
  maps: Tensor;
  /** a name per map source: 'cls', 'dist', 'mean' */
  mapNames: string[];
  /** the class each image's map explains (gradient methods) */
  targets?: number[];
}

export function explainForward(
  forward: () => CapturedAttention,
  layout: AttentionLayout,
  request: ExplainRequest,
): Explanation {
  const { method } = request;
  if (!EXPLAIN_METHODS.includes(method)) {
    throw new Error(`explain: method '${method}' is not one of ${EXPLAIN_METHODS.join(', ')}`);
  }
  if (layout.kind === 'swin') {
    if (method !== 'rollout') {
      throw new Error(
        `explain: Swin models support --method rollout (window attention has no class token for ${method})`,
      );
    }
    const { logits, attentions } = noGrad(forward);
    const r = swinRollout(attentions, {
      ...layout,
      headFusion: request.headFusion,
      discardRatio: request.discardRatio,
    });
    const [b, gh, gw] = r.map.shape;
    return { logits, attentions: [...attentions], maps: r.map.reshape([b, 1, gh, gw]), mapNames: ['mean'] };
  }
  const tokenOptions = {
    prefixTokens: layout.prefixTokens,
    tokenIndex: layout.tokenIndex,
    gridSize: layout.gridSize,
  };
  if (method === 'rollout' || method === 'flow') {
    const { logits, attentions } = noGrad(forward);
    const options = { ...tokenOptions, headFusion: request.headFusion, discardRatio: request.discardRatio };
    const r =
      method === 'rollout' ? attentionRollout(attentions, options) : attentionFlow(attentions, options);
    return { logits, attentions: [...attentions], maps: r.maps, mapNames: layout.tokenNames };
  }
  const g = attentionGradients(forward, request.target);
  const r =
    method === 'grad-rollout'
      ? gradRollout(g.attentions, g.gradients, tokenOptions)
      : tokenGradCam(g.attentions, g.gradients, tokenOptions);
  return {
    logits: g.logits,
    attentions: g.attentions,
    maps: r.maps,
    mapNames: layout.tokenNames,
    targets: g.targets,
  };
}
