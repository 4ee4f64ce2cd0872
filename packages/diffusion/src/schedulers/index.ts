export {
  alphasCumprodFromBetas,
  type BetaSchedule,
  type BetaScheduleConfig,
  betasForAlphaBar,
  betasFromConfig,
  rescaleZeroTerminalSnr,
} from './betas.js';
export {
  type ConfigField,
  type ConfigSpec,
  diffusersConfigObject,
  formatSchedulerConfigJson,
  parseSchedulerConfigJson,
  type RawSchedulerConfig,
  type ResolvedConfig,
  readSchedulerConfig,
  resolveConfig,
} from './config.js';
export {
  DDIM_SPEC,
  type DDIMConfig,
  DDIMScheduler,
  type DDIMStepOptions,
  type DDIMStepOutput,
  type DDIMStepScalars,
} from './ddim.js';
export {
  DPM_SOLVER_MULTISTEP_SPEC,
  type DPMAlgorithmType,
  type DPMSolverMultistepConfig,
  DPMSolverMultistepScheduler,
  type DPMSolverScalars,
  type DPMStepOutput,
  lambdaOf,
  sigmaToAlphaSigmaT,
  sigmaToT,
} from './dpm-solver-multistep.js';
export { createScheduler, type SchedulerClassName } from './factory.js';
export { fmaF32, numpyArange, numpyLinspace, roundHalfEven, torchCumprodF32, torchLinspaceF32 } from './float32.js';
export { type Img2ImgTimesteps, img2imgTimesteps } from './img2img.js';
export { ddimTimesteps, dpmTimesteps, type TimestepSpacing } from './timesteps.js';
export type { DiffusionScheduler, PredictionType, StepOptions } from './types.js';
