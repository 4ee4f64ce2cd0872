export type { Attr as BuilderAttr, Dim as BuilderDim, ElemType, ToModelOptions } from './builder.js';
export { attr as builderAttr, GraphBuilder } from './builder.js';
export type {
  BuildClassifierOptions,
  BuiltClassifier,
  ClassifierArch,
  ClassifierOptions,
  LoadClassifierOptions,
  ResNetArch,
} from './classifier.js';
export {
  buildClassifier,
  classifierSpecs,
  initClassifierState,
  loadClassifierState,
  parameterCount,
} from './classifier.js';
export type { CounterTensorSpec, GeneratedTensor } from './counter.js';
export { counterFill, counterUniform, generateFromSpec, hash32 } from './counter.js';
export type { LoadStateOptions, StateSource, Tensor as StateTensor, TensorKind, TensorMap, TensorSpec } from './state.js';
export { initState, initTensor, loadState } from './state.js';
export type { BuildUnetOptions, BuiltUnet, UnetConfig, UnetDownBlockType, UnetUpBlockType } from './unet.js';
export {
  buildUnet,
  exportScope,
  SD15_UNET,
  SD15_UNET_DIFFUSERS_CONFIG,
  unetConfigFromDiffusers,
  unetParameterCount,
  unetSpecs,
  unetStateFromGraph,
} from './unet.js';
export type { BuildVitOptions, BuiltVit, LoadVitOptions, VitConfig } from './vit.js';
export { buildVit, initVitState, interpolatePosEmbedding, loadVitState, VIT_B_16, vitSeqLength, vitSpecs } from './vit.js';
export type { WeightsSpec, WeightsSpecArch } from './weights-spec.js';
export { buildSpecSafetensors } from './weights-spec.js';
