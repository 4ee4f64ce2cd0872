/**
 * The timestep selection of diffusers' `StableDiffusionImg2ImgPipeline` (`retrieve_timesteps` + `get_timesteps`).
 */
import { InvalidArgumentError } from '@diffmix/core';
import type { DiffusionScheduler } from './types.js';

export interface Img2ImgTimesteps {
  /** Timesteps actually run: `scheduler.timesteps[t_start · order:]`. */
  timesteps: number[];
  /** `t_start · order`, also passed to `setBeginIndex` when the scheduler has it. */
  beginIndex: number;
  /** The timestep the init latents are noised to (`timesteps[0]`, diffusers' `latent_timestep`). */
  latentTimestep: number;
  /** `min(int(N · strength), N)`. */
  initTimestep: number;
  /** `max(N − init_timestep, 0)`. */
  tStart: number;
  /** Number of denoising steps run: `N − t_start`. */
  numSteps: number;
}

/**
 * Calls `scheduler.setTimesteps(N)`, then selects the img2img part of the schedule exactly like diffusers:
 * `init_timestep = min(int(N·strength), N)`, `t_start = max(N − init_timestep, 0)`,
 * `timesteps = scheduler.timesteps[t_start·order:]` and `scheduler.set_begin_index(t_start·order)`.
 * `int(N·strength)` truncates the float64 product, as Python does (25 · 0.7 = 17.5 → 17).
 */
export function img2imgTimesteps(scheduler: DiffusionScheduler, numInferenceSteps: number, strength: number): Img2ImgTimesteps {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new InvalidArgumentError('numInferenceSteps', `must be a positive integer, got ${numInferenceSteps}`);
  }
  if (!(strength >= 0 && strength <= 1)) {
    throw new InvalidArgumentError('strength', `must be in [0, 1], got ${strength}`);
  }
  const N = numInferenceSteps;
  const initTimestep = Math.min(Math.trunc(N * strength), N);
  const tStart = Math.max(N - initTimestep, 0);
  if (initTimestep === 0) {
    throw new InvalidArgumentError(
      'strength',
      `${strength} with ${N} steps leaves no denoising step (int(${N}·${strength}) = 0); raise strength or the step count`,
    );
  }
  scheduler.setTimesteps(N);
  const beginIndex = tStart * scheduler.order;
  const timesteps = scheduler.timesteps.slice(beginIndex);
  scheduler.setBeginIndex?.(beginIndex);
  return { timesteps, beginIndex, latentTimestep: timesteps[0]!, initTimestep, tStart, numSteps: N - tStart };
}
