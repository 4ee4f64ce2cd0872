/** Build a scheduler by diffusers class name from any SD scheduler config (`from_config`). */
import { InvalidArgumentError } from '@diffmix/core';
import type { RawSchedulerConfig } from './config.js';
import { type DDIMConfig, DDIMScheduler } from './ddim.js';
import { type DPMSolverMultistepConfig, DPMSolverMultistepScheduler } from './dpm-solver-multistep.js';

export type SchedulerClassName = 'DPMSolverMultistepScheduler' | 'DDIMScheduler';

/**
 * `<className>.from_config(raw, **overrides)`. `raw` is typically a checkpoint's `scheduler_config.json`
 * (PNDM for SD 1.x); only the parameters the target class knows are taken from it.
 */
export function createScheduler(
  className: 'DPMSolverMultistepScheduler',
  raw: RawSchedulerConfig,
  overrides?: Partial<DPMSolverMultistepConfig>,
): DPMSolverMultistepScheduler;
export function createScheduler(
  className: 'DDIMScheduler',
  raw: RawSchedulerConfig,
  overrides?: Partial<DDIMConfig>,
): DDIMScheduler;
export function createScheduler(
  className: SchedulerClassName,
  raw: RawSchedulerConfig,
  overrides: Record<string, unknown> = {},
): DPMSolverMultistepScheduler | DDIMScheduler {
  if (className === 'DPMSolverMultistepScheduler') return DPMSolverMultistepScheduler.fromConfig(raw, overrides);
  if (className === 'DDIMScheduler') return DDIMScheduler.fromConfig(raw, overrides);
  throw new InvalidArgumentError(
    'className',
    `${String(className)} is not available; use 'DPMSolverMultistepScheduler' or 'DDIMScheduler'`,
  );
}
