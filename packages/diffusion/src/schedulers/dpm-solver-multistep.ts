/**
 * DPM-Solver / DPM-Solver++ multistep scheduler, a port of diffusers' `DPMSolverMultistepScheduler`
 * (diffusers 0.40, commit 58eb52c) written from its documented computation.
 *
 * Precision, as diffusers on float32 latents:
 * - training tables (betas, alphas_cumprod, sigmas) are float32 torch tensors (cumprod accumulates in float64);
 * - timesteps are computed with NumPy in float64 and truncated to int64 (exact integers here);
 * - the inference sigmas are `np.interp` (float64) of the float32 training sigmas, then cast to float32;
 * - every solver coefficient (alpha_t, sigma_t, lambda, h, exp(−h)…) is a 0-dim float32 tensor, and the update is
 *   float32 elementwise arithmetic; this port rounds to float32 after each operation in the same order.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { alphasCumprodFromBetas, type BetaSchedule, betasFromConfig } from './betas.js';
import { type ConfigSpec, diffusersConfigObject, type RawSchedulerConfig, type ResolvedConfig, resolveConfig } from './config.js';
import { toF32 as f, numpyLinspace, roundHalfEven } from './float32.js';
import { checkSameLength, combineF32, scaledDifferenceF32, subScaledDivF32, thresholdSampleF32 } from './tensor.js';
import { dpmTimesteps, type TimestepSpacing } from './timesteps.js';
import type { DiffusionScheduler, PredictionType, StepOptions } from './types.js';

export type DPMAlgorithmType = 'dpmsolver++' | 'dpmsolver' | 'sde-dpmsolver++' | 'sde-dpmsolver';

/** `DPMSolverMultistepScheduler.__init__` parameters (diffusers' JSON keys). */
export interface DPMSolverMultistepConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: number[] | null;
  solver_order: number;
  prediction_type: PredictionType | 'flow_prediction';
  thresholding: boolean;
  dynamic_thresholding_ratio: number;
  sample_max_value: number;
  algorithm_type: DPMAlgorithmType;
  solver_type: 'midpoint' | 'heun';
  lower_order_final: boolean;
  euler_at_final: boolean;
  use_karras_sigmas: boolean;
  use_exponential_sigmas: boolean;
  use_beta_sigmas: boolean;
  use_lu_lambdas: boolean;
  use_flow_sigmas: boolean;
  flow_shift: number;
  final_sigmas_type: 'zero' | 'sigma_min';
  lambda_min_clipped: number;
  variance_type: 'learned' | 'learned_range' | null;
  timestep_spacing: TimestepSpacing;
  steps_offset: number;
  rescale_betas_zero_snr: boolean;
  use_dynamic_shifting: boolean;
  time_shift_type: 'exponential';
}

/** The `__init__` signature of `DPMSolverMultistepScheduler` (order and defaults as in diffusers). */
export const DPM_SOLVER_MULTISTEP_SPEC: ConfigSpec = {
  num_train_timesteps: { kind: 'int', default: 1000, min: 1 },
  beta_start: { kind: 'float', default: 0.0001 },
  beta_end: { kind: 'float', default: 0.02 },
  beta_schedule: { kind: 'enum', values: ['linear', 'scaled_linear', 'squaredcos_cap_v2'], default: 'linear' },
  trained_betas: { kind: 'float-array-or-null', default: null },
  solver_order: { kind: 'int', default: 2, oneOf: [1, 2, 3] },
  prediction_type: { kind: 'enum', values: ['epsilon', 'sample', 'v_prediction', 'flow_prediction'], default: 'epsilon' },
  thresholding: { kind: 'bool', default: false },
  dynamic_thresholding_ratio: { kind: 'float', default: 0.995 },
  sample_max_value: { kind: 'float', default: 1.0 },
  // diffusers re-registers `deis` as dpmsolver++ and the UniPC/DEIS solver types as midpoint.
  algorithm_type: {
    kind: 'enum',
    values: ['dpmsolver', 'dpmsolver++', 'sde-dpmsolver', 'sde-dpmsolver++'],
    default: 'dpmsolver++',
    aliases: { deis: 'dpmsolver++' },
  },
  solver_type: {
    kind: 'enum',
    values: ['midpoint', 'heun'],
    default: 'midpoint',
    aliases: { logrho: 'midpoint', bh1: 'midpoint', bh2: 'midpoint' },
  },
  lower_order_final: { kind: 'bool', default: true },
  euler_at_final: { kind: 'bool', default: false },
  use_karras_sigmas: { kind: 'bool', default: false },
  use_exponential_sigmas: { kind: 'bool', default: false },
  use_beta_sigmas: { kind: 'bool', default: false },
  use_lu_lambdas: { kind: 'bool', default: false },
  use_flow_sigmas: { kind: 'bool', default: false },
  flow_shift: { kind: 'float', default: 1.0 },
  final_sigmas_type: { kind: 'enum', values: ['zero', 'sigma_min'], default: 'zero' },
  lambda_min_clipped: { kind: 'float', default: Number.NEGATIVE_INFINITY },
  variance_type: { kind: 'nullable-enum', values: ['learned', 'learned_range'], default: null },
  timestep_spacing: { kind: 'enum', values: ['linspace', 'leading', 'trailing'], default: 'linspace' },
  steps_offset: { kind: 'int', default: 0 },
  rescale_betas_zero_snr: { kind: 'bool', default: false },
  use_dynamic_shifting: { kind: 'bool', default: false },
  time_shift_type: { kind: 'enum', values: ['exponential'], default: 'exponential' },
};

/** float32 `alpha_t = 1/√(σ²+1)`, `sigma_t = σ·alpha_t` (diffusers' `_sigma_to_alpha_sigma_t`, VP schedule). */
export function sigmaToAlphaSigmaT(sigma: number): { alphaT: number; sigmaT: number } {
  const alphaT = f(1 / f(Math.sqrt(f(f(sigma * sigma) + 1))));
  return { alphaT, sigmaT: f(sigma * alphaT) };
}

/** float32 `lambda = log(alpha_t) − log(sigma_t)` (+∞ when sigma_t = 0). */
export function lambdaOf(alphaT: number, sigmaT: number): number {
  return f(f(Math.log(alphaT)) - f(Math.log(sigmaT)));
}

/** The scalars of one solver update, all float32 (exposed so each number can be checked against diffusers). */
export interface DPMSolverScalars {
  order: 1 | 2 | 3;
  stepIndex: number;
  /** Raw sigmas: `[sigma_t (next), sigma_s0 (current), sigma_s1, sigma_s2]` as far as the order needs. */
  sigmas: number[];
  /** alpha / sigma_t of the same points. */
  alphaT: number[];
  sigmaT: number[];
  lambda: number[];
  /** `h = lambda_t − lambda_s0`. */
  h: number;
  /** Signed coefficients of the update terms, in torch's evaluation order (see `terms`). */
  coefficients: number[];
  /** What each coefficient multiplies: 'sample', 'D0', 'D1', 'D2', 'noise'. */
  terms: string[];
  /** Second/third order: `r0 = h_0/h` (and `r1 = h_1/h`). */
  r: number[];
}

export interface DPMStepOutput {
  prevSample: Float32Array;
  /** The converted model output (data prediction x₀ for dpmsolver++, noise for dpmsolver). */
  convertedModelOutput: Float32Array;
  /** The solver order actually used for this step. */
  order: 1 | 2 | 3;
  /** Absolute index into the full schedule of this step. */
  stepIndex: number;
}

/**
 * `DPMSolverMultistepScheduler` on flat Float32Array latents. Mutable like diffusers' object: `setTimesteps`
 * resets it, `step` advances `stepIndex` and keeps the last `solver_order` converted model outputs.
 */
export class DPMSolverMultistepScheduler implements DiffusionScheduler {
  static readonly className = 'DPMSolverMultistepScheduler';
  /** diffusers' class attribute `order` (pipelines use `t_start * order`). */
  readonly order = 1;
  readonly initNoiseSigma = 1.0;
  readonly config: Readonly<DPMSolverMultistepConfig>;
  readonly useDefaultValues: readonly string[];
  readonly hiddenConfig: Readonly<Record<string, unknown>>;

  readonly betas: Float32Array;
  readonly alphas: Float32Array;
  readonly alphasCumprod: Float32Array;
  /** Training tables (float32): √ᾱ, √(1−ᾱ), their log ratio, and σ = √((1−ᾱ)/ᾱ). */
  readonly trainAlphaT: Float32Array;
  readonly trainSigmaT: Float32Array;
  readonly trainLambdaT: Float32Array;
  readonly trainSigmas: Float32Array;

  /** Inference timesteps (int64 in diffusers); before `setTimesteps`, T−1 … 0. */
  timesteps: number[];
  /** Inference sigmas (float32, length N+1, the last one 0 or sigma_min). */
  sigmas: Float32Array;
  numInferenceSteps: number | null = null;
  /** Converted model outputs of the last `solver_order` steps (oldest first). */
  modelOutputs: (Float32Array | null)[];
  lowerOrderNums = 0;
  private _stepIndex: number | null = null;
  private _beginIndex: number | null = null;

  /**
   * Builds the scheduler from explicit parameters (diffusers' `DPMSolverMultistepScheduler(**kwargs)`); missing
   * parameters take diffusers' defaults. Use {@link DPMSolverMultistepScheduler.fromConfig} for a config file.
   * (`resolved` is internal: the already resolved config of `fromConfig`.)
   */
  constructor(
    config: Partial<DPMSolverMultistepConfig> = {},
    resolved: ResolvedConfig<DPMSolverMultistepConfig> = resolveConfig(
      DPMSolverMultistepScheduler.className,
      DPM_SOLVER_MULTISTEP_SPEC,
      {},
      config,
    ),
  ) {
    this.config = Object.freeze(resolved.config);
    this.useDefaultValues = Object.freeze([...resolved.useDefaultValues]);
    this.hiddenConfig = Object.freeze({ ...resolved.hidden });
    const c = this.config;
    if ([c.use_beta_sigmas, c.use_exponential_sigmas, c.use_karras_sigmas].filter(Boolean).length > 1) {
      throw new InvalidArgumentError(
        'config',
        'only one of use_beta_sigmas, use_exponential_sigmas, use_karras_sigmas can be used',
      );
    }
    const unsupported: [keyof DPMSolverMultistepConfig, boolean][] = [
      ['use_beta_sigmas', c.use_beta_sigmas],
      ['use_flow_sigmas', c.use_flow_sigmas],
      ['use_dynamic_shifting', c.use_dynamic_shifting],
      ['variance_type', c.variance_type !== null],
    ];
    for (const [key, on] of unsupported) {
      if (on)
        throw new InvalidArgumentError(
          key,
          `${JSON.stringify(c[key])} is not supported by this port (Stable Diffusion 1.x does not use it)`,
        );
    }
    if ((c.algorithm_type === 'dpmsolver' || c.algorithm_type === 'sde-dpmsolver') && c.final_sigmas_type === 'zero') {
      throw new InvalidArgumentError(
        'final_sigmas_type',
        `'zero' is not supported for algorithm_type ${c.algorithm_type}; choose 'sigma_min'`,
      );
    }
    if (c.algorithm_type === 'sde-dpmsolver' && c.solver_order === 3) {
      throw new InvalidArgumentError('solver_order', 'diffusers has no third-order update for sde-dpmsolver');
    }
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
    // Close to 0 without being 0 so the first sigma is not inf (diffusers: FP16's smallest subnormal).
    if (c.rescale_betas_zero_snr) this.alphasCumprod[this.alphasCumprod.length - 1] = 2 ** -24;
    const T = this.alphasCumprod.length;
    this.trainAlphaT = new Float32Array(T);
    this.trainSigmaT = new Float32Array(T);
    this.trainLambdaT = new Float32Array(T);
    this.trainSigmas = new Float32Array(T);
    for (let i = 0; i < T; i++) {
      const a = this.alphasCumprod[i]!;
      this.trainAlphaT[i] = Math.sqrt(a);
      this.trainSigmaT[i] = Math.sqrt(f(1 - a));
      this.trainLambdaT[i] = lambdaOf(this.trainAlphaT[i]!, this.trainSigmaT[i]!);
      // torch: ((1 − ᾱ) / ᾱ) ** 0.5 (torch's pow may differ from the correctly rounded sqrt by 1 ulp)
      this.trainSigmas[i] = Math.sqrt(f(f(1 - a) / a));
    }
    this.timesteps = Array.from({ length: c.num_train_timesteps }, (_, i) => c.num_train_timesteps - 1 - i);
    this.sigmas = Float32Array.from(this.trainSigmas);
    this.modelOutputs = new Array<Float32Array | null>(c.solver_order).fill(null);
  }

  /**
   * diffusers' `DPMSolverMultistepScheduler.from_config(raw, **overrides)`: `raw` may be the config of any
   * scheduler class (an SD `scheduler_config.json` is PNDM's); see {@link resolveConfig}.
   */
  static fromConfig(
    raw: RawSchedulerConfig,
    overrides: Partial<DPMSolverMultistepConfig> = {},
    source?: string,
  ): DPMSolverMultistepScheduler {
    const resolved = resolveConfig<DPMSolverMultistepConfig>(
      DPMSolverMultistepScheduler.className,
      DPM_SOLVER_MULTISTEP_SPEC,
      raw,
      overrides,
      source,
    );
    return new DPMSolverMultistepScheduler({}, resolved);
  }

  /** The object diffusers shows as `scheduler.config` (parameters, `_use_default_values`, hidden keys, `_class_name`). */
  toDiffusersConfig(): Record<string, unknown> {
    return diffusersConfigObject(DPMSolverMultistepScheduler.className, {
      config: this.config,
      useDefaultValues: [...this.useDefaultValues],
      hidden: { ...this.hiddenConfig },
    });
  }

  /** Index of the current step into the full schedule (null before the first `step`). */
  get stepIndex(): number | null {
    return this._stepIndex;
  }

  /** The index of the first step, set by img2img pipelines (null when not set). */
  get beginIndex(): number | null {
    return this._beginIndex;
  }

  /** diffusers' `set_begin_index`: the first `step` will use this schedule index. */
  setBeginIndex(beginIndex = 0): void {
    if (!Number.isInteger(beginIndex) || beginIndex < 0) {
      throw new InvalidArgumentError('beginIndex', `must be a non-negative integer, got ${beginIndex}`);
    }
    this._beginIndex = beginIndex;
  }

  /**
   * diffusers' `set_timesteps(num_inference_steps)` or `set_timesteps(timesteps=[...])`. Resets the solver state
   * (step index, begin index, stored model outputs).
   */
  setTimesteps(stepsOrTimesteps: number | { timesteps: readonly number[] }): void {
    const c = this.config;
    const T = c.num_train_timesteps;
    let timesteps: number[];
    let numInferenceSteps: number;
    if (typeof stepsOrTimesteps === 'number') {
      numInferenceSteps = stepsOrTimesteps;
      // Clip lambda(t) from below (for the cosine schedule): torch.searchsorted(flip(lambda_t), lambda_min_clipped).
      let clippedIdx = 0;
      const L = this.trainLambdaT.length;
      while (clippedIdx < L && this.trainLambdaT[L - 1 - clippedIdx]! < c.lambda_min_clipped) clippedIdx++;
      const lastTimestep = T - clippedIdx;
      timesteps = dpmTimesteps(numInferenceSteps, c.timestep_spacing, {
        numTrainTimesteps: T,
        stepsOffset: c.steps_offset,
        lastTimestep,
      });
    } else {
      const custom = stepsOrTimesteps.timesteps;
      if (c.use_karras_sigmas || c.use_lu_lambdas || c.use_exponential_sigmas) {
        throw new InvalidArgumentError('timesteps', 'custom timesteps cannot be combined with karras / lu / exponential sigmas');
      }
      if (custom.length === 0 || custom.some((t) => !Number.isInteger(t))) {
        throw new InvalidArgumentError('timesteps', 'must be a non-empty list of integers');
      }
      timesteps = [...custom];
      numInferenceSteps = timesteps.length;
    }

    const trainSigmas = this.trainSigmas;
    // NumPy float32 log of the float32 training sigmas (used by the karras / lu / exponential conversions).
    const logSigmas = Float64Array.from(trainSigmas, (s) => f(Math.log(s)));
    let sigmas: number[];
    if (c.use_karras_sigmas || c.use_lu_lambdas || c.use_exponential_sigmas) {
      const N = numInferenceSteps;
      const ramp = numpyLinspace(0, 1, N);
      const hiddenNumber = (key: string): number | undefined => {
        const v = this.hiddenConfig[key];
        return typeof v === 'number' ? v : undefined;
      };
      if (c.use_karras_sigmas) {
        const sigmaMin = hiddenNumber('sigma_min') ?? trainSigmas[0]!;
        const sigmaMax = hiddenNumber('sigma_max') ?? trainSigmas[trainSigmas.length - 1]!;
        const rho = 7.0;
        const minInv = sigmaMin ** (1 / rho);
        const maxInv = sigmaMax ** (1 / rho);
        sigmas = Array.from(ramp, (r) => (maxInv + r * (minInv - maxInv)) ** rho);
      } else if (c.use_lu_lambdas) {
        const lambdaMin = logSigmas[0]!;
        const lambdaMax = logSigmas[logSigmas.length - 1]!;
        sigmas = Array.from(ramp, (r) => Math.exp(lambdaMax + r * (lambdaMin - lambdaMax)));
      } else {
        const sigmaMin = hiddenNumber('sigma_min') ?? trainSigmas[0]!;
        const sigmaMax = hiddenNumber('sigma_max') ?? trainSigmas[trainSigmas.length - 1]!;
        sigmas = Array.from(numpyLinspace(Math.log(sigmaMax), Math.log(sigmaMin), N), (x) => Math.exp(x));
      }
      const round = !c.use_exponential_sigmas && c.beta_schedule !== 'squaredcos_cap_v2';
      timesteps = sigmas.map((s) => {
        const t = sigmaToT(s, logSigmas);
        return Math.trunc(round ? roundHalfEven(t) : t); // torch .to(int64) truncates
      });
    } else {
      // np.interp at integer timesteps returns the float32 training sigma exactly.
      sigmas = timesteps.map((t) => interpAt(t, trainSigmas));
    }
    const a0 = this.alphasCumprod[0]!;
    const sigmaLast = c.final_sigmas_type === 'sigma_min' ? f(Math.sqrt(f(f(1 - a0) / a0))) : 0;
    this.sigmas = Float32Array.from([...sigmas, sigmaLast]);
    this.timesteps = timesteps;
    this.numInferenceSteps = timesteps.length;
    this.modelOutputs = new Array<Float32Array | null>(c.solver_order).fill(null);
    this.lowerOrderNums = 0;
    this._stepIndex = null;
    this._beginIndex = null;
  }

  /**
   * Per-step float32 tables of the current schedule (length N+1): sigma, alpha_t, sigma_t, lambda_t — the
   * numbers diffusers uses inside `step` (alpha_t/sigma_t/lambda_t are recomputed there from the sigma).
   */
  scheduleTables(): {
    timesteps: number[];
    sigmas: Float32Array;
    alphaT: Float32Array;
    sigmaT: Float32Array;
    lambdaT: Float32Array;
  } {
    const n = this.sigmas.length;
    const alphaT = new Float32Array(n);
    const sigmaT = new Float32Array(n);
    const lambdaT = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const p = sigmaToAlphaSigmaT(this.sigmas[i]!);
      alphaT[i] = p.alphaT;
      sigmaT[i] = p.sigmaT;
      lambdaT[i] = lambdaOf(p.alphaT, p.sigmaT);
    }
    return { timesteps: [...this.timesteps], sigmas: Float32Array.from(this.sigmas), alphaT, sigmaT, lambdaT };
  }

  /**
   * diffusers' `index_for_timestep`: the position of `timestep` in the schedule — the second match when the
   * timestep occurs more than once (so img2img never skips a sigma), the last index when it is absent.
   */
  indexForTimestep(timestep: number, scheduleTimesteps: readonly number[] = this.timesteps): number {
    const matches: number[] = [];
    scheduleTimesteps.forEach((t, i) => {
      if (t === timestep) matches.push(i);
    });
    if (matches.length === 0) return this.timesteps.length - 1;
    return matches.length > 1 ? matches[1]! : matches[0]!;
  }

  /** diffusers' `_init_step_index`: the begin index when set, else the index of `timestep`. */
  initStepIndex(timestep: number): void {
    this._stepIndex = this._beginIndex ?? this.indexForTimestep(timestep);
  }

  /** Identity: DPM-Solver needs no input scaling (`scale_model_input`). */
  scaleModelInput(sample: Float32Array, _timestep?: number): Float32Array {
    return sample;
  }

  private sigmaAt(index: number): number {
    const s = this.sigmas[index];
    if (s === undefined) {
      throw new InvalidArgumentError(
        'stepIndex',
        `${index} is outside the schedule (${this.sigmas.length - 1} steps); call setTimesteps again`,
      );
    }
    return s;
  }

  /**
   * diffusers' `convert_model_output` at schedule index `stepIndex` (default: the current one): the data
   * prediction x₀ for dpmsolver++ / sde-dpmsolver++, the noise prediction for dpmsolver / sde-dpmsolver.
   * `batchSize` only matters with thresholding (per-image quantiles).
   */
  convertModelOutput(modelOutput: Float32Array, sample: Float32Array, stepIndex = this._stepIndex, batchSize = 1): Float32Array {
    if (stepIndex === null)
      throw new InvalidArgumentError('stepIndex', 'not initialised: call step(), initStepIndex() or pass it');
    checkSameLength(sample.length, { modelOutput, sample });
    const c = this.config;
    const sigma = this.sigmaAt(stepIndex);
    const { alphaT, sigmaT } = sigmaToAlphaSigmaT(sigma);
    if (c.algorithm_type === 'dpmsolver++' || c.algorithm_type === 'sde-dpmsolver++') {
      let x0: Float32Array;
      if (c.prediction_type === 'epsilon') x0 = subScaledDivF32(sample, sigmaT, modelOutput, alphaT);
      else if (c.prediction_type === 'sample') x0 = Float32Array.from(modelOutput);
      else if (c.prediction_type === 'v_prediction')
        x0 = combineF32([
          [alphaT, sample],
          [-sigmaT, modelOutput],
        ]);
      else
        x0 = combineF32([
          [1, sample],
          [-sigma, modelOutput],
        ]); // flow_prediction: sample − sigma·v
      return c.thresholding ? thresholdSampleF32(x0, c.dynamic_thresholding_ratio, c.sample_max_value, batchSize) : x0;
    }
    let eps: Float32Array;
    if (c.prediction_type === 'epsilon') eps = Float32Array.from(modelOutput);
    else if (c.prediction_type === 'sample') eps = subScaledDivF32(sample, alphaT, modelOutput, sigmaT);
    else if (c.prediction_type === 'v_prediction')
      eps = combineF32([
        [alphaT, modelOutput],
        [sigmaT, sample],
      ]);
    else
      throw new InvalidArgumentError(
        'prediction_type',
        `flow_prediction is not supported with algorithm_type ${c.algorithm_type}`,
      );
    if (c.thresholding) {
      const x0 = subScaledDivF32(sample, sigmaT, eps, alphaT);
      const clipped = thresholdSampleF32(x0, c.dynamic_thresholding_ratio, c.sample_max_value, batchSize);
      eps = subScaledDivF32(sample, alphaT, clipped, sigmaT);
    }
    return eps;
  }

  /** The solver order diffusers' `step` picks at schedule index `stepIndex` given the current state. */
  orderAt(stepIndex: number): 1 | 2 | 3 {
    const c = this.config;
    const n = this.timesteps.length;
    const lowerOrderFinal =
      stepIndex === n - 1 && (c.euler_at_final || (c.lower_order_final && n < 15) || c.final_sigmas_type === 'zero');
    const lowerOrderSecond = stepIndex === n - 2 && c.lower_order_final && n < 15;
    if (c.solver_order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal) return 1;
    if (c.solver_order === 2 || this.lowerOrderNums < 2 || lowerOrderSecond) return 2;
    return 3;
  }

  /**
   * The float32 scalars of the order-`order` update from schedule index `stepIndex` to `stepIndex + 1`, in the
   * exact form diffusers evaluates (`dpm_solver_first_order_update`, `multistep_dpm_solver_second/third_order_update`).
   */
  solverScalars(stepIndex: number, order: 1 | 2 | 3): DPMSolverScalars {
    const c = this.config;
    if (stepIndex - (order - 1) < 0)
      throw new InvalidArgumentError('order', `order ${order} needs ${order - 1} previous steps at index ${stepIndex}`);
    const sig = [this.sigmaAt(stepIndex + 1)];
    for (let k = 0; k < order; k++) sig.push(this.sigmaAt(stepIndex - k));
    const pairs = sig.map(sigmaToAlphaSigmaT);
    const alphaT = pairs.map((p) => p.alphaT);
    const sigmaT = pairs.map((p) => p.sigmaT);
    const lambda = pairs.map((p) => lambdaOf(p.alphaT, p.sigmaT));
    const [aT, a0] = [alphaT[0]!, alphaT[1]!];
    const [sT, s0] = [sigmaT[0]!, sigmaT[1]!];
    const h = f(lambda[0]! - lambda[1]!);
    const expNegH = f(Math.exp(-h));
    const expH = f(Math.exp(h));
    const exp2 = f(Math.exp(f(-2 * h))); // torch.exp(-2.0 * h)
    const expPos2 = f(Math.exp(f(2 * h))); // torch.exp(2 * h)
    const algo = c.algorithm_type;
    const r: number[] = [];
    let coefficients: number[];
    let terms: string[];

    // Shared pieces, named after diffusers' expressions.
    const ppB = f(aT * f(expNegH - 1)); // alpha_t * (exp(-h) - 1)
    const pB = f(sT * f(expH - 1)); // sigma_t * (exp(h) - 1)
    const sdeSampleCoef = f(f(sT / s0) * expNegH); // sigma_t / sigma_s * exp(-h)
    const sdeB = f(aT * f(1 - exp2)); // alpha_t * (1 - exp(-2h))
    const sdeNoisePP = f(sT * f(Math.sqrt(f(1 - exp2)))); // sigma_t * sqrt(1 - exp(-2h))
    const sdeNoiseP = f(sT * f(Math.sqrt(f(expPos2 - 1)))); // sigma_t * sqrt(exp(2h) - 1)

    if (order === 1) {
      if (algo === 'dpmsolver++') {
        coefficients = [f(sT / s0), -ppB];
        terms = ['sample', 'D0'];
      } else if (algo === 'dpmsolver') {
        coefficients = [f(aT / a0), -pB];
        terms = ['sample', 'D0'];
      } else if (algo === 'sde-dpmsolver++') {
        coefficients = [sdeSampleCoef, sdeB, sdeNoisePP];
        terms = ['sample', 'D0', 'noise'];
      } else {
        coefficients = [f(aT / a0), -f(2 * pB), sdeNoiseP];
        terms = ['sample', 'D0', 'noise'];
      }
    } else if (order === 2) {
      const h0 = f(lambda[1]! - lambda[2]!);
      const r0 = f(h0 / h);
      r.push(r0);
      const midpoint = c.solver_type === 'midpoint';
      if (algo === 'dpmsolver++') {
        coefficients = [f(sT / s0), -ppB, midpoint ? -f(0.5 * ppB) : f(aT * f(f(f(expNegH - 1) / h) + 1))];
      } else if (algo === 'dpmsolver') {
        coefficients = [f(aT / a0), -pB, midpoint ? -f(0.5 * pB) : -f(sT * f(f(f(expH - 1) / h) - 1))];
      } else if (algo === 'sde-dpmsolver++') {
        const heunD1 = f(aT * f(f(f(1 - exp2) / f(-2 * h)) + 1));
        coefficients = [sdeSampleCoef, sdeB, midpoint ? f(0.5 * sdeB) : heunD1, sdeNoisePP];
      } else {
        const heunD1 = f(2 * f(sT * f(f(f(expH - 1) / h) - 1)));
        coefficients = [f(aT / a0), -f(2 * pB), midpoint ? -pB : -heunD1, sdeNoiseP];
      }
      terms = algo === 'sde-dpmsolver++' || algo === 'sde-dpmsolver' ? ['sample', 'D0', 'D1', 'noise'] : ['sample', 'D0', 'D1'];
    } else {
      const h0 = f(lambda[1]! - lambda[2]!);
      const h1 = f(lambda[2]! - lambda[3]!);
      r.push(f(h0 / h), f(h1 / h));
      const h2 = f(h * h);
      if (algo === 'dpmsolver++') {
        coefficients = [f(sT / s0), -ppB, f(aT * f(f(f(expNegH - 1) / h) + 1)), -f(aT * f(f(f(f(expNegH - 1) + h) / h2) - 0.5))];
        terms = ['sample', 'D0', 'D1', 'D2'];
      } else if (algo === 'dpmsolver') {
        coefficients = [f(aT / a0), -pB, -f(sT * f(f(f(expH - 1) / h) - 1)), -f(sT * f(f(f(f(expH - 1) - h) / h2) - 0.5))];
        terms = ['sample', 'D0', 'D1', 'D2'];
      } else if (algo === 'sde-dpmsolver++') {
        const twoH = f(2 * h);
        coefficients = [
          sdeSampleCoef,
          sdeB,
          f(aT * f(f(f(1 - exp2) / f(-2 * h)) + 1)),
          f(aT * f(f(f(f(1 - exp2) - twoH) / f(twoH * twoH)) - 0.5)),
          sdeNoisePP,
        ];
        terms = ['sample', 'D0', 'D1', 'D2', 'noise'];
      } else {
        throw new InvalidArgumentError('solver_order', 'diffusers has no third-order update for sde-dpmsolver');
      }
    }
    return { order, stepIndex, sigmas: sig, alphaT, sigmaT, lambda, h, coefficients, terms, r };
  }

  /**
   * diffusers' `step(model_output, timestep, sample)`: converts the model output, stores it, and advances the
   * sample by one multistep DPM-Solver update (order per diffusers' lower-order rules). The SDE variants need
   * `options.varianceNoise` (this port does not draw random numbers).
   */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions = {}): DPMStepOutput {
    if (this.numInferenceSteps === null) {
      throw new InvalidArgumentError('numInferenceSteps', "is not set: call 'setTimesteps' after creating the scheduler");
    }
    checkSameLength(sample.length, { modelOutput, sample, varianceNoise: options.varianceNoise });
    if (this._stepIndex === null) this.initStepIndex(timestep);
    const stepIndex = this._stepIndex!;
    this.sigmaAt(stepIndex + 1);
    const order = this.orderAt(stepIndex);
    const converted = this.convertModelOutput(modelOutput, sample, stepIndex, options.batchSize ?? 1);
    const k = this.config.solver_order;
    for (let i = 0; i < k - 1; i++) this.modelOutputs[i] = this.modelOutputs[i + 1] ?? null;
    this.modelOutputs[k - 1] = converted;

    const sde = this.config.algorithm_type.startsWith('sde');
    if (sde && options.varianceNoise === undefined) {
      throw new InvalidArgumentError(
        'varianceNoise',
        `algorithm_type ${this.config.algorithm_type} needs a noise tensor for every step`,
      );
    }
    const scalars = this.solverScalars(stepIndex, order);
    const vectors: Record<string, Float32Array> = { sample, D0: converted };
    if (order === 2) {
      const m0 = this.modelOutputs[k - 1]!;
      const m1 = this.modelOutputs[k - 2]!;
      vectors.D1 = scaledDifferenceF32(f(1 / scalars.r[0]!), m0, m1);
    } else if (order === 3) {
      const [r0, r1] = [scalars.r[0]!, scalars.r[1]!];
      const m0 = this.modelOutputs[k - 1]!;
      const m1 = this.modelOutputs[k - 2]!;
      const m2 = this.modelOutputs[k - 3]!;
      const d10 = scaledDifferenceF32(f(1 / r0), m0, m1);
      const d11 = scaledDifferenceF32(f(1 / r1), m1, m2);
      const rSum = f(r0 + r1);
      const w = f(r0 / rSum);
      const inv = f(1 / rSum);
      const d1 = new Float32Array(d10.length);
      const d2 = new Float32Array(d10.length);
      for (let i = 0; i < d10.length; i++) {
        const diff = f(d10[i]! - d11[i]!);
        d1[i] = d10[i]! + f(w * diff);
        d2[i] = inv * diff;
      }
      vectors.D1 = d1;
      vectors.D2 = d2;
    }
    if (options.varianceNoise !== undefined) vectors.noise = options.varianceNoise;
    const prevSample = combineF32(scalars.terms.map((name, i) => [scalars.coefficients[i]!, vectors[name]!] as const));

    if (this.lowerOrderNums < k) this.lowerOrderNums += 1;
    this._stepIndex = stepIndex + 1;
    return { prevSample, convertedModelOutput: converted, order, stepIndex };
  }

  /**
   * diffusers' `add_noise(original, noise, timesteps)`: `alpha_t·x₀ + sigma_t·noise` with the sigma of the schedule
   * index — the begin index before the first step (img2img), the current step index after it (inpainting), else
   * the index of each timestep. `timesteps` has one entry per batch item (a number means the whole array).
   */
  addNoise(original: Float32Array, noise: Float32Array, timesteps: number | readonly number[]): Float32Array {
    checkSameLength(original.length, { original, noise });
    const ts = typeof timesteps === 'number' ? [timesteps] : timesteps;
    if (ts.length === 0 || original.length % ts.length !== 0) {
      throw new InvalidArgumentError(
        'timesteps',
        `${ts.length} timesteps do not split ${original.length} values into equal batch items`,
      );
    }
    const per = original.length / ts.length;
    const out = new Float32Array(original.length);
    ts.forEach((t, b) => {
      const index = this._beginIndex === null ? this.indexForTimestep(t, this.timesteps) : (this._stepIndex ?? this._beginIndex);
      const { alphaT, sigmaT } = sigmaToAlphaSigmaT(this.sigmaAt(index));
      for (let i = b * per; i < (b + 1) * per; i++) out[i] = f(alphaT * original[i]!) + f(sigmaT * noise[i]!);
    });
    return out;
  }
}

/** `np.interp(t, arange(len), table)` for an integer `t` inside the table (the value itself), else linear. */
function interpAt(t: number, table: Float32Array): number {
  const n = table.length;
  if (t <= 0) return table[0]!;
  if (t >= n - 1) return table[n - 1]!;
  const lo = Math.floor(t);
  if (lo === t) return table[lo]!;
  const a = table[lo]!;
  const b = table[lo + 1]!;
  return (b - a) * (t - lo) + a;
}

/** diffusers' `_sigma_to_t`: interpolate log σ in the (ascending) float32 log-sigma table, in float64. */
export function sigmaToT(sigma: number, logSigmas: Float64Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < logSigmas.length; i++) if (logSigma - logSigmas[i]! >= 0) low = i;
  low = Math.min(low, logSigmas.length - 2);
  const high = low + 1;
  const lo = logSigmas[low]!;
  const hi = logSigmas[high]!;
  const w = Math.min(Math.max((lo - logSigma) / (lo - hi), 0), 1);
  return (1 - w) * low + w * high;
}
