/**
 * DDIM scheduler, a port of diffusers' `DDIMScheduler` (diffusers 0.40) written from its documented
 * computation: float32 training tables, NumPy timesteps, float32 elementwise update (eta = 0 deterministic,
 * eta > 0 with caller-supplied noise).
 */
import { InvalidArgumentError } from '@diffmix/core';
import { alphasCumprodFromBetas, type BetaSchedule, betasFromConfig } from './betas.js';
import { type ConfigSpec, diffusersConfigObject, type RawSchedulerConfig, type ResolvedConfig, resolveConfig } from './config.js';
import { toF32 as f } from './float32.js';
import { checkSameLength, combineF32, subScaledDivF32, thresholdSampleF32 } from './tensor.js';
import { ddimTimesteps, type TimestepSpacing } from './timesteps.js';
import type { DiffusionScheduler, PredictionType, StepOptions } from './types.js';

/** `DDIMScheduler.__init__` parameters (diffusers' JSON keys). */
export interface DDIMConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: number[] | null;
  clip_sample: boolean;
  set_alpha_to_one: boolean;
  steps_offset: number;
  prediction_type: PredictionType;
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  clip_sample_range: number;
  sample_max_value: number;
  timestep_spacing: TimestepSpacing;
  rescale_betas_zero_snr: boolean;
}

/** The `__init__` signature of `DDIMScheduler` (order and defaults as in diffusers). */
export const DDIM_SPEC: ConfigSpec = {
  num_train_timesteps: { kind: 'int', default: 1000, min: 1 },
  beta_start: { kind: 'float', default: 0.0001 },
  beta_end: { kind: 'float', default: 0.02 },
  beta_schedule: { kind: 'enum', values: ['linear', 'scaled_linear', 'squaredcos_cap_v2'], default: 'linear' },
  trained_betas: { kind: 'float-array-or-null', default: null },
  clip_sample: { kind: 'bool', default: true },
  set_alpha_to_one: { kind: 'bool', default: true },
  steps_offset: { kind: 'int', default: 0 },
  prediction_type: { kind: 'enum', values: ['epsilon', 'sample', 'v_prediction'], default: 'epsilon' },
  thresholding: { kind: 'bool', default: false },
  dynamic_thresholding_ratio: { kind: 'float', default: 0.995 },
  clip_sample_range: { kind: 'float', default: 1.0 },
  sample_max_value: { kind: 'float', default: 1.0 },
  timestep_spacing: { kind: 'enum', values: ['linspace', 'leading', 'trailing'], default: 'leading' },
  rescale_betas_zero_snr: { kind: 'bool', default: false },
};

export interface DDIMStepOptions extends StepOptions {
  /** Weight of the added noise: 0 = DDIM (deterministic), 1 = DDPM-like. Needs `varianceNoise` when > 0. */
  eta?: number;
  /** Recompute epsilon from the clipped x₀ (diffusers' `use_clipped_model_output`). */
  useClippedModelOutput?: boolean;
}

export interface DDIMStepOutput {
  prevSample: Float32Array;
  predOriginalSample: Float32Array;
}

/** The float32 scalars of one DDIM step (exposed so each can be checked). */
export interface DDIMStepScalars {
  timestep: number;
  prevTimestep: number;
  alphaProdT: number;
  alphaProdTPrev: number;
  betaProdT: number;
  variance: number;
  stdDevT: number;
  /** `(1 − ᾱ_prev − std²) ** 0.5`, the coefficient of the predicted noise. */
  directionCoef: number;
}

/** `DDIMScheduler` on flat Float32Array latents. */
export class DDIMScheduler implements DiffusionScheduler {
  static readonly className = 'DDIMScheduler';
  readonly order = 1;
  readonly initNoiseSigma = 1.0;
  readonly config: Readonly<DDIMConfig>;
  readonly useDefaultValues: readonly string[];
  readonly hiddenConfig: Readonly<Record<string, unknown>>;
  readonly betas: Float32Array;
  readonly alphas: Float32Array;
  readonly alphasCumprod: Float32Array;
  /** ᾱ used after the last step: 1 with `set_alpha_to_one`, else ᾱ₀. */
  readonly finalAlphaCumprod: number;
  timesteps: number[];
  numInferenceSteps: number | null = null;

  /**
   * Builds the scheduler from explicit parameters (diffusers' `DDIMScheduler(**kwargs)`); use
   * {@link DDIMScheduler.fromConfig} for a config file. (`resolved` is internal.)
   */
  constructor(
    config: Partial<DDIMConfig> = {},
    resolved: ResolvedConfig<DDIMConfig> = resolveConfig(DDIMScheduler.className, DDIM_SPEC, {}, config),
  ) {
    this.config = Object.freeze(resolved.config);
    this.useDefaultValues = Object.freeze([...resolved.useDefaultValues]);
    this.hiddenConfig = Object.freeze({ ...resolved.hidden });
    const c = this.config;
    if (c.trained_betas !== null && c.trained_betas.length !== c.num_train_timesteps) {
      throw new InvalidArgumentError(
        'trained_betas',
        `has ${c.trained_betas.length} values, num_train_timesteps is ${c.num_train_timesteps}`,
      );
    }
    this.betas = betasFromConfig(c);
    const { alphas, alphasCumprod } = alphasCumprodFromBetas(this.betas);
    this.alphas = alphas;
    this.alphasCumprod = alphasCumprod;
    this.finalAlphaCumprod = c.set_alpha_to_one ? 1.0 : this.alphasCumprod[0]!;
    this.timesteps = Array.from({ length: c.num_train_timesteps }, (_, i) => c.num_train_timesteps - 1 - i);
  }

  /** diffusers' `DDIMScheduler.from_config(raw, **overrides)` (see {@link resolveConfig}). */
  static fromConfig(raw: RawSchedulerConfig, overrides: Partial<DDIMConfig> = {}, source?: string): DDIMScheduler {
    return new DDIMScheduler({}, resolveConfig<DDIMConfig>(DDIMScheduler.className, DDIM_SPEC, raw, overrides, source));
  }

  /** The object diffusers shows as `scheduler.config`. */
  toDiffusersConfig(): Record<string, unknown> {
    return diffusersConfigObject(DDIMScheduler.className, {
      config: this.config,
      useDefaultValues: [...this.useDefaultValues],
      hidden: { ...this.hiddenConfig },
    });
  }

  /** diffusers' `set_timesteps(num_inference_steps)`. */
  setTimesteps(numInferenceSteps: number): void {
    const c = this.config;
    this.timesteps = ddimTimesteps(numInferenceSteps, c.timestep_spacing, {
      numTrainTimesteps: c.num_train_timesteps,
      stepsOffset: c.steps_offset,
    });
    this.numInferenceSteps = numInferenceSteps;
  }

  /** Identity: DDIM needs no input scaling. */
  scaleModelInput(sample: Float32Array, _timestep?: number): Float32Array {
    return sample;
  }

  private alphaProd(t: number): number {
    const a = this.alphasCumprod[t];
    if (!Number.isInteger(t) || a === undefined) {
      throw new InvalidArgumentError('timestep', `${t} is not a training timestep (0…${this.alphasCumprod.length - 1})`);
    }
    return a;
  }

  /** diffusers' `_get_variance(t, prev_t)` in float32. */
  getVariance(timestep: number, prevTimestep: number): number {
    const apt = this.alphaProd(timestep);
    const aptPrev = prevTimestep >= 0 ? this.alphaProd(prevTimestep) : this.finalAlphaCumprod;
    const bpt = f(1 - apt);
    const bptPrev = f(1 - aptPrev);
    return f(f(bptPrev / bpt) * f(1 - f(apt / aptPrev)));
  }

  /** The float32 scalars `step` uses at `timestep` with the given `eta`. */
  stepScalars(timestep: number, eta = 0): DDIMStepScalars {
    if (this.numInferenceSteps === null) {
      throw new InvalidArgumentError('numInferenceSteps', "is not set: call 'setTimesteps' after creating the scheduler");
    }
    const prevTimestep = timestep - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const alphaProdT = this.alphaProd(timestep);
    const alphaProdTPrev = prevTimestep >= 0 ? this.alphaProd(prevTimestep) : this.finalAlphaCumprod;
    const betaProdT = f(1 - alphaProdT);
    const variance = this.getVariance(timestep, prevTimestep);
    const stdDevT = f(f(eta) * f(Math.sqrt(variance)));
    const directionCoef = f(Math.sqrt(f(f(1 - alphaProdTPrev) - f(stdDevT * stdDevT))));
    return { timestep, prevTimestep, alphaProdT, alphaProdTPrev, betaProdT, variance, stdDevT, directionCoef };
  }

  /**
   * diffusers' `step(model_output, timestep, sample, eta, use_clipped_model_output, variance_noise=...)`:
   * x₀ and ε from the model output, clipping/thresholding of x₀, then
   * `prev = √ᾱ_prev·x₀ + √(1 − ᾱ_prev − σ²)·ε (+ σ·noise when eta > 0)`, all in float32.
   */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: DDIMStepOptions = {}): DDIMStepOutput {
    const eta = options.eta ?? 0;
    if (!Number.isFinite(eta) || eta < 0) throw new InvalidArgumentError('eta', `must be ≥ 0, got ${eta}`);
    checkSameLength(sample.length, { modelOutput, sample, varianceNoise: options.varianceNoise });
    const c = this.config;
    const s = this.stepScalars(timestep, eta);
    const sqrtA = f(Math.sqrt(s.alphaProdT));
    const sqrtB = f(Math.sqrt(s.betaProdT));
    let x0: Float32Array;
    let eps: Float32Array;
    if (c.prediction_type === 'epsilon') {
      x0 = subScaledDivF32(sample, sqrtB, modelOutput, sqrtA);
      eps = modelOutput;
    } else if (c.prediction_type === 'sample') {
      x0 = Float32Array.from(modelOutput);
      eps = subScaledDivF32(sample, sqrtA, x0, sqrtB);
    } else {
      x0 = combineF32([
        [sqrtA, sample],
        [-sqrtB, modelOutput],
      ]);
      eps = combineF32([
        [sqrtA, modelOutput],
        [sqrtB, sample],
      ]);
    }
    if (c.thresholding) {
      x0 = thresholdSampleF32(x0, c.dynamic_thresholding_ratio, c.sample_max_value, options.batchSize ?? 1);
    } else if (c.clip_sample) {
      const r = c.clip_sample_range;
      x0 = x0.map((v) => Math.min(Math.max(v, -r), r));
    }
    if (options.useClippedModelOutput) eps = subScaledDivF32(sample, sqrtA, x0, sqrtB);
    const terms: [number, Float32Array][] = [
      [f(Math.sqrt(s.alphaProdTPrev)), x0],
      [s.directionCoef, eps],
    ];
    if (eta > 0) {
      if (options.varianceNoise === undefined) {
        throw new InvalidArgumentError('varianceNoise', 'eta > 0 needs a noise tensor (this port does not draw random numbers)');
      }
      terms.push([s.stdDevT, options.varianceNoise]);
    }
    // diffusers: pred_sample_direction = coef * eps; prev = sqrt(a_prev) * x0 + direction; prev = prev + std * noise
    return { prevSample: combineF32(terms), predOriginalSample: x0 };
  }

  private perItem(original: Float32Array, timesteps: number | readonly number[]): { ts: readonly number[]; per: number } {
    const ts = typeof timesteps === 'number' ? [timesteps] : timesteps;
    if (ts.length === 0 || original.length % ts.length !== 0) {
      throw new InvalidArgumentError(
        'timesteps',
        `${ts.length} timesteps do not split ${original.length} values into equal batch items`,
      );
    }
    return { ts, per: original.length / ts.length };
  }

  /** diffusers' `add_noise`: `√ᾱ_t·x₀ + √(1 − ᾱ_t)·noise` per batch item, float32. */
  addNoise(original: Float32Array, noise: Float32Array, timesteps: number | readonly number[]): Float32Array {
    checkSameLength(original.length, { original, noise });
    const { ts, per } = this.perItem(original, timesteps);
    const out = new Float32Array(original.length);
    ts.forEach((t, b) => {
      const a = this.alphaProd(t);
      const sa = f(Math.sqrt(a));
      const sb = f(Math.sqrt(f(1 - a)));
      for (let i = b * per; i < (b + 1) * per; i++) out[i] = f(sa * original[i]!) + f(sb * noise[i]!);
    });
    return out;
  }

  /** diffusers' `get_velocity`: `√ᾱ_t·noise − √(1 − ᾱ_t)·sample` (the v-prediction target). */
  getVelocity(sample: Float32Array, noise: Float32Array, timesteps: number | readonly number[]): Float32Array {
    checkSameLength(sample.length, { sample, noise });
    const { ts, per } = this.perItem(sample, timesteps);
    const out = new Float32Array(sample.length);
    ts.forEach((t, b) => {
      const a = this.alphaProd(t);
      const sa = f(Math.sqrt(a));
      const sb = f(Math.sqrt(f(1 - a)));
      for (let i = b * per; i < (b + 1) * per; i++) out[i] = f(sa * noise[i]!) - f(sb * sample[i]!);
    });
    return out;
  }
}
