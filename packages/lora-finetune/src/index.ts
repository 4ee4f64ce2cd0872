/** @diffmix/lora-finetune — TI, DreamBooth-LoRA, TI+DB and full fine-tuning on exported SD ONNX graphs. */

export type { FineTuneOptions, FineTuneResult } from './fine-tune.js';
export { DEFAULT_INIT_TOKEN_ID, DEFAULT_TEMPLATES, fineTune, listCheckpoints } from './fine-tune.js';
export type { FullUnetStep, FullUnetStepOptions } from './full-step.js';
export { buildFullUnetStep } from './full-step.js';
export type { SaveUnetOptions } from './save-unet.js';
export { saveUnetOnnx } from './save-unet.js';
export type { FineTuneMode, LoraTiStepperOptions, StepBatch, StepperCheckpoint, StepResult } from './step.js';
export { FINE_TUNE_MODES, LoraTiStepper, peftLoraInit, ROWS } from './step.js';
