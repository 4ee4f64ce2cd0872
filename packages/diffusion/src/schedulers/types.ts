/** Shared scheduler types. */

export type PredictionType = 'epsilon' | 'sample' | 'v_prediction';

export interface StepOptions {
  /**
   * Noise for the stochastic parts of a step (DDIM with eta > 0, SDE DPM-Solver), same size as the sample.
   * diffusers would draw it with `randn_tensor`; this port never draws random numbers itself.
   */
  varianceNoise?: Float32Array;
  /** Number of images in the flat sample (only used by dynamic thresholding, which works per image). */
  batchSize?: number;
}

/** What a Stable Diffusion pipeline needs from a scheduler (diffusers' `SchedulerMixin` surface). */
export interface DiffusionScheduler {
  /** diffusers' class attribute `order` (1 for DPM-Solver multistep and DDIM). */
  readonly order: number;
  /** Standard deviation of the initial noise (1 for both). */
  readonly initNoiseSigma: number;
  /** The inference timesteps after `setTimesteps`. */
  readonly timesteps: readonly number[];
  setTimesteps(numInferenceSteps: number): void;
  /** Present on schedulers that index steps (DPM-Solver); img2img calls it with `t_start · order`. */
  setBeginIndex?(beginIndex: number): void;
  scaleModelInput(sample: Float32Array, timestep: number): Float32Array;
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options?: StepOptions): { prevSample: Float32Array };
  addNoise(original: Float32Array, noise: Float32Array, timesteps: number | readonly number[]): Float32Array;
}
