/**
 * Weights applied on top of an exported Stable Diffusion: LoRA merged into the UNet (or text
 * encoder) initializers, textual-inversion rows added to the token embedding, and a restricted
 * reader for torch checkpoints.
 */
export { loadLora, parseLora, parseLoraKey } from './lora.js';
export type { LoraComponent, LoraLayout, LoraMatrix, LoraModule, LoraWeights } from './lora.js';
export { indexModules, mergeLoras, mergeLorasIntoOnnx, normalizeModulePath } from './lora-merge.js';
export type {
  LoraSpec,
  MergeLoraOptions,
  MergeLoraReport,
  ModuleIndex,
  ModuleTarget,
  WeightedLora,
  WeightLayout,
} from './lora-merge.js';
export {
  applyTextualInversion,
  applyTextualInversionToOnnx,
  findTokenEmbedding,
  loadTextualInversion,
  parseTextualInversion,
  textualInversionFromTensors,
} from './textual-inversion.js';
export type {
  ApplyTextualInversionOptions,
  NamedTensor,
  ParseTextualInversionOptions,
  TextualInversionEmbedding,
  TextualInversionResult,
  TextualInversionSpec,
  TokenEmbeddingTable,
} from './textual-inversion.js';
export { isTorchTensor, parseTorchCheckpoint, readTorchCheckpoint, TorchTensor } from './torch-pickle.js';
export type { TorchDType, TorchValue } from './torch-pickle.js';
