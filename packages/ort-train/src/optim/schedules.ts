/**
 * Learning-rate schedules as multipliers of each group's initial lr, evaluated per iteration (the
 * official Diff-Mix classifier code steps its schedule every iteration).
 */
import { InvalidArgumentError } from '@diffmix/core';

/** step (0-based, the update about to be made) → lr multiplier. */
export type LrSchedule = (step: number) => number;

export const constantSchedule = (): LrSchedule => () => 1;

export interface CosineWarmupOptions {
  totalSteps: number;
  /** Warmup iterations (default: `warmupFraction` of totalSteps, rounded down). */
  warmupSteps?: number;
  /** Default 0.1 (10 % linear warmup, as the official code). */
  warmupFraction?: number;
  /** Floor of the cosine, as a fraction of the initial lr (default 0). */
  minFactor?: number;
}

/**
 * Linear warmup then cosine decay (the `get_cosine_schedule_with_warmup` form):
 * step < W: step / W; else minFactor + (1 − minFactor) · ½(1 + cos(π · (step − W) / (T − W))).
 */
export function cosineWithWarmup(options: CosineWarmupOptions): LrSchedule {
  const total = options.totalSteps;
  if (!Number.isInteger(total) || total < 1)
    throw new InvalidArgumentError('totalSteps', `must be a positive integer, got ${total}`);
  const warmup = options.warmupSteps ?? Math.floor((options.warmupFraction ?? 0.1) * total);
  if (!Number.isInteger(warmup) || warmup < 0 || warmup > total)
    throw new InvalidArgumentError('warmupSteps', `must be an integer in [0, ${total}], got ${warmup}`);
  const floor = options.minFactor ?? 0;
  return (step) => {
    if (step < warmup) return step / Math.max(1, warmup);
    const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
    return floor + (1 - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
