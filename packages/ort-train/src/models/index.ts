export { GraphBuilder, attr as builderAttr } from './builder.js';
export type { Attr as BuilderAttr, Dim as BuilderDim, ElemType, ToModelOptions } from './builder.js';
export {
  buildClassifier,
  classifierSpecs,
  initClassifierState,
  loadClassifierState,
  parameterCount,
} from './classifier.js';
export type {
  BuildClassifierOptions,
  BuiltClassifier,
  ClassifierArch,
  ClassifierOptions,
  LoadClassifierOptions,
  ResNetArch,
} from './classifier.js';
export { counterFill, counterUniform, generateFromSpec, hash32 } from './counter.js';
export type { CounterTensorSpec, GeneratedTensor } from './counter.js';
export { initState, initTensor, loadState } from './state.js';
export type { LoadStateOptions, StateSource, Tensor as StateTensor, TensorKind, TensorMap, TensorSpec } from './state.js';
export { buildSpecSafetensors } from './weights-spec.js';
export type { WeightsSpec, WeightsSpecArch } from './weights-spec.js';
