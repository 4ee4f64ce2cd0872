/** @diffmix/lora-finetune — TI, DreamBooth-LoRA and TI+DB fine-tuning steps on exported SD ONNX graphs. */
export { LoraTiStepper } from './step.js';
export type { FineTuneMode, LoraTiStepperOptions, StepBatch, StepperCheckpoint, StepResult } from './step.js';
