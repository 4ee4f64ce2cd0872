/**
 * The regression target of the fine-tuning loss, by the scheduler config's `prediction_type`, as
 * diffusers' training scripts choose it: ε for `epsilon` models (SD 1.x, SD 2.x base), the velocity
 * v = √ᾱ_t·ε − √(1 − ᾱ_t)·x₀ for `v_prediction` models (SD 2.x 768-v), x₀ for `sample`.
 */
import { ModelFormatError } from '@diffmix/core';

export type PredictionType = 'epsilon' | 'v_prediction' | 'sample';
export const PREDICTION_TYPES: readonly PredictionType[] = ['epsilon', 'v_prediction', 'sample'];

/** What the target needs of the noise scheduler (`DDIMScheduler` of @diffmix/diffusion has both). */
export interface TargetScheduler {
  getVelocity(sample: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array;
}

/** The config's prediction type (default `epsilon`); anything else is a {@link ModelFormatError} naming `source`. */
export function predictionTypeOf(config: { prediction_type?: unknown }, source: string): PredictionType {
  const v = config.prediction_type ?? 'epsilon';
  if (!PREDICTION_TYPES.includes(v as PredictionType))
    throw new ModelFormatError(
      source,
      `prediction_type ${JSON.stringify(v)} cannot be fine-tuned (${PREDICTION_TYPES.join(', ')})`,
    );
  return v as PredictionType;
}

/** The MSE target for clean latents x₀, noise ε and timesteps t (one per batch item). */
export function trainingTarget(
  type: PredictionType,
  scheduler: TargetScheduler,
  latents: Float32Array,
  noise: Float32Array,
  timesteps: readonly number[],
): Float32Array {
  if (type === 'epsilon') return noise;
  if (type === 'sample') return latents;
  return scheduler.getVelocity(latents, noise, timesteps);
}
