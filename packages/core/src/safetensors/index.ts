export {
  bfloat16BitsToNumber,
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  halfBitsToNumber,
  numberToBfloat16Bits,
  numberToHalfBits,
} from './half.js';
export {
  formatSafetensors,
  isSafetensorsDType,
  parseSafetensors,
  readSafetensors,
  SafetensorsFile,
  safetensorsDTypeSize,
  writeSafetensors,
} from './safetensors.js';
export type {
  SafetensorsData,
  SafetensorsDType,
  SafetensorsEntry,
  SafetensorsInput,
  SafetensorsTensor,
  TensorReadOptions,
} from './safetensors.js';
