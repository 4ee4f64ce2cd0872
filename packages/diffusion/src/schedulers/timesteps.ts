/**
 * Inference timestep schedules, computed as diffusers does with NumPy (float64 arithmetic, `np.round`
 * = round half to even, then `astype(int64)`). DPM-Solver and DDIM use different formulas for the same
 * spacing name; both are here.
 */
import { InvalidArgumentError } from '@diffmix/core';
import { numpyArange, numpyLinspace, roundHalfEven } from './float32.js';

export type TimestepSpacing = 'linspace' | 'leading' | 'trailing';

function checkSteps(numInferenceSteps: number): void {
  if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 1) {
    throw new InvalidArgumentError('numInferenceSteps', `must be a positive integer, got ${numInferenceSteps}`);
  }
}

/** `float64 → int64` as `ndarray.astype(np.int64)` (truncation toward zero). */
const toInt = (x: number): number => Math.trunc(x);

/**
 * `DPMSolverMultistepScheduler.set_timesteps` (also Euler, UniPC…): N+1 points with the final one dropped.
 * - linspace: `np.linspace(0, last − 1, N + 1).round()[::-1][:-1]`
 * - leading:  `(np.arange(0, N + 1) · (last // (N + 1))).round()[::-1][:-1] + steps_offset`
 * - trailing: `np.arange(last, 0, −T/N).round() − 1` (NumPy may return N + 1 values here; diffusers keeps them)
 *
 * `lastTimestep` is `T − clipped_idx` (lambda_min_clipped), normally T.
 */
export function dpmTimesteps(
  numInferenceSteps: number,
  spacing: TimestepSpacing,
  opts: { numTrainTimesteps: number; stepsOffset: number; lastTimestep?: number },
): number[] {
  checkSteps(numInferenceSteps);
  const N = numInferenceSteps;
  const T = opts.numTrainTimesteps;
  const last = opts.lastTimestep ?? T;
  if (spacing === 'linspace') {
    const lin = numpyLinspace(0, last - 1, N + 1);
    const out: number[] = [];
    for (let i = N; i >= 1; i--) out.push(toInt(roundHalfEven(lin[i]!)));
    return out;
  }
  if (spacing === 'leading') {
    const ratio = Math.floor(last / (N + 1));
    const out: number[] = [];
    for (let i = N; i >= 1; i--) out.push(i * ratio + opts.stepsOffset);
    return out;
  }
  if (spacing === 'trailing') {
    return Array.from(numpyArange(last, 0, -(T / N)), (x) => toInt(roundHalfEven(x)) - 1);
  }
  throw new InvalidArgumentError(
    'timestep_spacing',
    `${String(spacing)} is not supported; choose 'linspace', 'leading' or 'trailing'`,
  );
}

/**
 * `DDIMScheduler.set_timesteps` (also DDPM, PNDM's base): N points.
 * - linspace: `np.linspace(0, T − 1, N).round()[::-1]`
 * - leading:  `(np.arange(0, N) · (T // N)).round()[::-1] + steps_offset`
 * - trailing: `np.round(np.arange(T, 0, −T/N)) − 1`
 */
export function ddimTimesteps(
  numInferenceSteps: number,
  spacing: TimestepSpacing,
  opts: { numTrainTimesteps: number; stepsOffset: number },
): number[] {
  checkSteps(numInferenceSteps);
  const N = numInferenceSteps;
  const T = opts.numTrainTimesteps;
  if (N > T) {
    throw new InvalidArgumentError('numInferenceSteps', `${N} cannot be larger than num_train_timesteps (${T})`);
  }
  if (spacing === 'linspace') {
    const lin = numpyLinspace(0, T - 1, N);
    const out: number[] = [];
    for (let i = N - 1; i >= 0; i--) out.push(toInt(roundHalfEven(lin[i]!)));
    return out;
  }
  if (spacing === 'leading') {
    const ratio = Math.floor(T / N);
    const out: number[] = [];
    for (let i = N - 1; i >= 0; i--) out.push(i * ratio + opts.stepsOffset);
    return out;
  }
  if (spacing === 'trailing') {
    return Array.from(numpyArange(T, 0, -(T / N)), (x) => toInt(roundHalfEven(x)) - 1);
  }
  throw new InvalidArgumentError(
    'timestep_spacing',
    `${String(spacing)} is not supported; choose 'linspace', 'leading' or 'trailing'`,
  );
}
