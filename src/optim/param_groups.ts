/**
 * Weight-decay exclusion (timm's param_groups_weight_decay): biases, norm weights and other 1-D
 * parameters, and learned tokens/position tables, are not decayed.
 */
import type { Module, Parameter } from '../nn/module.js';

/** Parameter names (last path component) that are never decayed, as timm's models declare via no_weight_decay(). */
const TOKEN_NAMES = new Set([
  'cls_token',
  'dist_token',
  'reg_token',
  'pos_embed',
  'absolute_pos_embed',
  'relative_position_bias_table',
  'mask_token',
]);

export interface WeightDecayGroups {
  decay: Parameter[];
  noDecay: Parameter[];
  decayNames: string[];
  noDecayNames: string[];
}

/** Whether `name`/`param` belongs to the no-decay group. */
export function excludedFromWeightDecay(
  name: string,
  param: Parameter,
  noWeightDecay: ReadonlySet<string>,
): boolean {
  const leaf = name.slice(name.lastIndexOf('.') + 1);
  return param.ndim <= 1 || leaf === 'bias' || TOKEN_NAMES.has(leaf) || noWeightDecay.has(name);
}

/**
 * Two parameter groups: `{ params: decayed, weightDecay }` and `{ params: rest, weightDecay: 0 }`.
 * Frozen parameters (requiresGrad false) are left out. A model may name more exclusions through a
 * `noWeightDecay(): Iterable<string>` method (timm's no_weight_decay), full names.
 */
export function paramGroupsWeightDecay(
  model: Module,
  options: { weightDecay: number; noWeightDecay?: Iterable<string> },
): Array<{ params: Parameter[]; weightDecay: number }> {
  const g = splitWeightDecay(model, options.noWeightDecay);
  return [
    { params: g.noDecay, weightDecay: 0 },
    { params: g.decay, weightDecay: options.weightDecay },
  ];
}

export function splitWeightDecay(model: Module, extra: Iterable<string> = []): WeightDecayGroups {
  const declared = (model as { noWeightDecay?: () => Iterable<string> }).noWeightDecay?.() ?? [];
  const skip = new Set([...declared, ...extra]);
  const out: WeightDecayGroups = { decay: [], noDecay: [], decayNames: [], noDecayNames: [] };
  for (const [name, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    if (excludedFromWeightDecay(name, p, skip)) {
      out.noDecay.push(p);
      out.noDecayNames.push(name);
    } else {
      out.decay.push(p);
      out.decayNames.push(name);
    }
  }
  return out;
}
