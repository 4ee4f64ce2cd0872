export type {
  AdamWOptions,
  OptimizerKind,
  OptimizerStateJson,
  ParamGroup,
  ParamGroupOptions,
  ParamMap,
  SGDOptions,
} from './optimizers.js';
export { AdamW, clipGradNorm, Optimizer, SGD } from './optimizers.js';
export type { CosineWarmupOptions, LrSchedule } from './schedules.js';
export { constantSchedule, cosineWithWarmup } from './schedules.js';
