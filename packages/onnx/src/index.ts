/**
 * @diffmix/onnx — ONNX model IR: read and write ONNX models (inline or external weights), query the
 * graph, read / replace / grow initializers, and hand models to ONNX Runtime from memory.
 */
export {
  bytesToTyped,
  inferOnnxDataType,
  ONNX_DATA_TYPE_CODES,
  onnxByteLength,
  onnxDataTypeFromCode,
  typedArrayFor,
  typedToBytes,
} from './dtypes.js';
export type { OnnxDataType, OnnxTensorData } from './dtypes.js';
export { checkExternalLocation } from './external.js';
export type { ExternalDataFile, ExternalDataRef } from './external.js';
export { findGatherForInput, nodeModulePath } from './graph.js';
export type { GatherLookup } from './graph.js';
export { DEFAULT_EXTERNAL_THRESHOLD, loadOnnxModel, OnnxModel, OnnxNode, parseOnnxModel, PROTOBUF_LIMIT_BYTES } from './model.js';
export type {
  InitializerInfo,
  InitializerLocation,
  LoadOnnxOptions,
  OnnxAttributeValue,
  OnnxTensor,
  OnnxValueInfo,
  SaveOptions,
  SerializedOnnxModel,
  SerializeOptions,
  TensorInput,
} from './model.js';
export { onnx } from './proto.js';
export type { OnnxProto } from './proto.js';
export { createOrtSession, ortSessionInput } from './session.js';
export type { CreateSessionOptions, OrtModuleLike } from './session.js';
