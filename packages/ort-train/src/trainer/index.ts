export type { OrtSessionLike, OrtStepOptions, OrtTensorCtor } from './ort-step.js';
export { ortStepFunction } from './ort-step.js';
export type { ClipOptions, StepContext, StepFunction, StepReport, StepResult, TrainerOptions } from './trainer.js';
export { Trainer } from './trainer.js';
