/**
 * Training noise schedule (betas → alphas_cumprod) exactly as diffusers builds it in float32 torch tensors.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { toF32 as f, torchCumprodF32, torchLinspaceF32 } from './float32.js';

export type BetaSchedule = 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';

export interface BetaScheduleConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: BetaSchedule;
  trained_betas: readonly number[] | null;
  rescale_betas_zero_snr: boolean;
}

/**
 * diffusers' `betas_for_alpha_bar(T)` with the default cosine transform (Glide `squaredcos_cap_v2`):
 * `min(1 − ᾱ(t₂)/ᾱ(t₁), 0.999)` in Python floats (float64), then `torch.tensor(..., float32)`.
 */
export function betasForAlphaBar(numTimesteps: number, maxBeta = 0.999): Float32Array {
  // Python evaluates `math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2` left to right.
  const alphaBar = (t: number): number => {
    const c = Math.cos((((t + 0.008) / 1.008) * Math.PI) / 2);
    return c * c;
  };
  const out = new Float32Array(numTimesteps);
  for (let i = 0; i < numTimesteps; i++) {
    const t1 = i / numTimesteps;
    const t2 = (i + 1) / numTimesteps;
    out[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return out;
}

/**
 * diffusers' `rescale_zero_terminal_snr(betas)` (Lin et al. 2023, Algorithm 1) in float32:
 * √ᾱ shifted so the last is 0 and rescaled so the first is unchanged, then converted back to betas.
 */
export function rescaleZeroTerminalSnr(betas: Float32Array): Float32Array {
  const n = betas.length;
  const alphas = Float32Array.from(betas, (b) => f(1 - b));
  const cumprod = torchCumprodF32(alphas);
  const sqrtBar = Float32Array.from(cumprod, (a) => f(Math.sqrt(a)));
  const first = sqrtBar[0]!;
  const last = sqrtBar[n - 1]!;
  const scale = f(first / f(first - last));
  const bar = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const shifted = f(sqrtBar[i]! - last);
    const scaled = f(shifted * scale);
    bar[i] = f(scaled * scaled);
  }
  const out = new Float32Array(n);
  out[0] = f(1 - bar[0]!);
  for (let i = 1; i < n; i++) out[i] = f(1 - f(bar[i]! / bar[i - 1]!));
  return out;
}

/** The float32 betas of a scheduler config (`trained_betas` win over `beta_schedule`, as in diffusers). */
export function betasFromConfig(config: BetaScheduleConfig): Float32Array {
  const T = config.num_train_timesteps;
  let betas: Float32Array;
  if (config.trained_betas !== null) {
    betas = Float32Array.from(config.trained_betas);
  } else if (config.beta_schedule === 'linear') {
    betas = torchLinspaceF32(config.beta_start, config.beta_end, T);
  } else if (config.beta_schedule === 'scaled_linear') {
    // torch.linspace(beta_start**0.5, beta_end**0.5, T, float32) ** 2
    betas = torchLinspaceF32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), T).map((b) => f(b * b));
  } else if (config.beta_schedule === 'squaredcos_cap_v2') {
    betas = betasForAlphaBar(T);
  } else {
    throw new InvalidArgumentError('beta_schedule', `${String(config.beta_schedule)} is not implemented`);
  }
  return config.rescale_betas_zero_snr ? rescaleZeroTerminalSnr(betas) : betas;
}

/** `alphas = 1 − betas` and `alphas_cumprod = cumprod(alphas)` (float64 accumulation, float32 outputs). */
export function alphasCumprodFromBetas(betas: Float32Array): { alphas: Float32Array; alphasCumprod: Float32Array } {
  const alphas = Float32Array.from(betas, (b) => f(1 - b));
  return { alphas, alphasCumprod: torchCumprodF32(alphas) };
}
