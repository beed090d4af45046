/**
 * Learning-rate schedules as pure functions of the step (or epoch) count, so a resumed run gets the
 * same lr from the step alone. `setLr` writes a scheduled value into an optimizer's groups, scaled by
 * each group's `lrScale` (timm's lr_scale).
 */
import type { GroupHyper, Optimizer } from './optimizer.js';

export type LrSchedule = (step: number) => number;

export interface WarmupOptions {
  /** Steps of linear warmup from `warmupInitLr` up to `baseLr` (0: none). */
  warmupSteps?: number;
  warmupInitLr?: number;
}

function checkWarmup(name: string, warmupSteps: number): void {
  if (!(Number.isInteger(warmupSteps) && warmupSteps >= 0)) {
    throw new Error(`${name}: warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  }
}

/**
 * Linear warmup then a half-cosine from `baseLr` down to `minLr` over the remaining
 * `totalSteps - warmupSteps` steps (timm's CosineLRScheduler with warmup_prefix=True); stays at
 * `minLr` past the end.
 */
export function cosineSchedule(
  options: { baseLr: number; totalSteps: number; minLr?: number } & WarmupOptions,
): LrSchedule {
  const { baseLr, totalSteps, minLr = 0, warmupSteps = 0, warmupInitLr = 0 } = options;
  checkWarmup('cosineSchedule', warmupSteps);
  if (!(totalSteps > warmupSteps)) {
    throw new Error(`cosineSchedule: totalSteps (${totalSteps}) must exceed warmupSteps (${warmupSteps})`);
  }
  const span = totalSteps - warmupSteps;
  return (step) => {
    if (step < warmupSteps) return warmupInitLr + ((baseLr - warmupInitLr) * step) / warmupSteps;
    const t = Math.min(step - warmupSteps, span);
    return minLr + 0.5 * (baseLr - minLr) * (1 + Math.cos((Math.PI * t) / span));
  };
}

/** `baseLr * gamma^floor((step - warmupSteps) / stepSize)` after an optional linear warmup (torch's StepLR). */
export function stepSchedule(
  options: { baseLr: number; stepSize: number; gamma?: number } & WarmupOptions,
): LrSchedule {
  const { baseLr, stepSize, gamma = 0.1, warmupSteps = 0, warmupInitLr = 0 } = options;
  checkWarmup('stepSchedule', warmupSteps);
  if (!(stepSize > 0)) throw new Error(`stepSchedule: stepSize must be > 0, got ${stepSize}`);
  return (step) => {
    if (step < warmupSteps) return warmupInitLr + ((baseLr - warmupInitLr) * step) / warmupSteps;
    return baseLr * gamma ** Math.floor((step - warmupSteps) / stepSize);
  };
}

/** Linear warmup to `baseLr`, then constant. */
export function linearWarmup(options: { baseLr: number } & WarmupOptions): LrSchedule {
  const { baseLr, warmupSteps = 0, warmupInitLr = 0 } = options;
  checkWarmup('linearWarmup', warmupSteps);
  return (step) =>
    step < warmupSteps ? warmupInitLr + ((baseLr - warmupInitLr) * step) / warmupSteps : baseLr;
}

/** Sets every group's lr to `lr * lrScale`. */
export function setLr<H extends GroupHyper>(optimizer: Optimizer<H>, lr: number): void {
  for (const g of optimizer.paramGroups) g.lr = lr * (g.lrScale ?? 1);
}
