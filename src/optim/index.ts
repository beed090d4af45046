/** The `optim` namespace: optimizers, gradient clipping, lr schedules, weight-decay groups. */
export { Adam, type AdamHyper, AdamW } from './adam.js';
export {
  clipGradNorm_,
  type GroupHyper,
  Optimizer,
  type OptimizerStateDict,
  type ParamGroup,
  type ParamGroupInput,
  type ParamState,
} from './optimizer.js';
export {
  excludedFromWeightDecay,
  paramGroupsWeightDecay,
  splitWeightDecay,
  type WeightDecayGroups,
} from './param_groups.js';
export { cosineSchedule, type LrSchedule, linearWarmup, setLr, stepSchedule } from './schedule.js';
export { SGD, type SgdHyper } from './sgd.js';
