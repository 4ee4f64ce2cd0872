export type { LoraBranch, LoraInsertOptions, TrainableRows, TrainableRowsOptions } from './lora.js';
export { DEFAULT_LORA_TARGETS, findEmbeddingGather, insertLoraBranches, makeEmbeddingRowsTrainable } from './lora.js';
export type { EmbeddingRowsStep, EmbeddingRowsStepOptions, LoraUnetStep, LoraUnetStepOptions } from './step.js';
export { buildEmbeddingRowsStep, buildLoraUnetStep } from './step.js';
