export type { LoraBranch, LoraInsertOptions, TrainableRows, TrainableRowsOptions } from './lora.js';
export { DEFAULT_LORA_TARGETS, findEmbeddingGather, insertLoraBranches, makeEmbeddingRowsTrainable } from './lora.js';
export type {
  EmbeddingRowsStep,
  EmbeddingRowsStepOptions,
  EpsilonMseStep,
  EpsilonMseStepOptions,
  LoraUnetStep,
  LoraUnetStepOptions,
} from './step.js';
export { buildEmbeddingRowsStep, buildEpsilonMseStep, buildLoraUnetStep } from './step.js';
