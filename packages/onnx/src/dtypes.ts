/**
 * ONNX tensor element types (TensorProto.DataType) and the typed arrays their data is held in.
 */

/** Element type names, as onnxruntime-node's `Tensor.type` spells them where it has one. */
export type OnnxDataType =
  | 'float32'
  | 'uint8'
  | 'int8'
  | 'uint16'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'string'
  | 'bool'
  | 'float16'
  | 'float64'
  | 'uint32'
  | 'uint64'
  | 'complex64'
  | 'complex128'
  | 'bfloat16'
  | 'float8e4m3fn'
  | 'float8e4m3fnuz'
  | 'float8e5m2'
  | 'float8e5m2fnuz'
  | 'uint4'
  | 'int4'
  | 'float4e2m1';

/** TensorProto.DataType code of each element type. */
export const ONNX_DATA_TYPE_CODES: Readonly<Record<OnnxDataType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  string: 8,
  bool: 9,
  float16: 10,
  float64: 11,
  uint32: 12,
  uint64: 13,
  complex64: 14,
  complex128: 15,
  bfloat16: 16,
  float8e4m3fn: 17,
  float8e4m3fnuz: 18,
  float8e5m2: 19,
  float8e5m2fnuz: 20,
  uint4: 21,
  int4: 22,
  float4e2m1: 23,
};

const BY_CODE = new Map<number, OnnxDataType>(Object.entries(ONNX_DATA_TYPE_CODES).map(([k, v]) => [v, k as OnnxDataType]));

/** TensorProto.DataType code → name (undefined for unknown codes). */
export function onnxDataTypeFromCode(code: number): OnnxDataType | undefined {
  return BY_CODE.get(code);
}

/**
 * Typed array of each element type. float16 / bfloat16 come as raw bits in a `Uint16Array` (convert
 * with `float16ToFloat32` / `bfloat16ToFloat32` from @diffmix/core); float8 / 4-bit types as raw
 * bytes (4-bit types packed two per byte); bool as 0/1 bytes; complex as interleaved re/im.
 */
export type OnnxTensorData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

type Ctor = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): OnnxTensorData; BYTES_PER_ELEMENT: number };

const CTOR: Partial<Record<OnnxDataType, Ctor>> = {
  float32: Float32Array as unknown as Ctor,
  uint8: Uint8Array as unknown as Ctor,
  int8: Int8Array as unknown as Ctor,
  uint16: Uint16Array as unknown as Ctor,
  int16: Int16Array as unknown as Ctor,
  int32: Int32Array as unknown as Ctor,
  int64: BigInt64Array as unknown as Ctor,
  bool: Uint8Array as unknown as Ctor,
  float16: Uint16Array as unknown as Ctor,
  float64: Float64Array as unknown as Ctor,
  uint32: Uint32Array as unknown as Ctor,
  uint64: BigUint64Array as unknown as Ctor,
  complex64: Float32Array as unknown as Ctor,
  complex128: Float64Array as unknown as Ctor,
  bfloat16: Uint16Array as unknown as Ctor,
  float8e4m3fn: Uint8Array as unknown as Ctor,
  float8e4m3fnuz: Uint8Array as unknown as Ctor,
  float8e5m2: Uint8Array as unknown as Ctor,
  float8e5m2fnuz: Uint8Array as unknown as Ctor,
  uint4: Uint8Array as unknown as Ctor,
  int4: Uint8Array as unknown as Ctor,
  float4e2m1: Uint8Array as unknown as Ctor,
};

const PACKED4 = new Set<OnnxDataType>(['uint4', 'int4', 'float4e2m1']);

/** Bytes needed for `numel` elements (4-bit types are packed two per byte). Throws for `string`. */
export function onnxByteLength(type: OnnxDataType, numel: number): number {
  if (PACKED4.has(type)) return Math.ceil(numel / 2);
  const c = CTOR[type];
  if (!c) throw new TypeError(`element type ${type} has no fixed size`);
  return numel * c.BYTES_PER_ELEMENT * (type === 'complex64' || type === 'complex128' ? 2 : 1);
}

/** The typed array constructor used for an element type (undefined for `string`). */
export function typedArrayFor(type: OnnxDataType): Ctor | undefined {
  return CTOR[type];
}

/** Element type implied by a typed array, when unambiguous (Uint16Array and Uint8Array are not). */
export function inferOnnxDataType(data: OnnxTensorData): OnnxDataType | undefined {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int8Array) return 'int8';
  if (data instanceof Int16Array) return 'int16';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint32Array) return 'uint32';
  if (data instanceof BigInt64Array) return 'int64';
  if (data instanceof BigUint64Array) return 'uint64';
  return undefined;
}

/** Wraps little-endian bytes as the element type's typed array (a view when aligned, else a copy). */
export function bytesToTyped(type: OnnxDataType, bytes: Uint8Array): OnnxTensorData {
  const c = CTOR[type];
  if (!c) throw new TypeError(`element type ${type} cannot be held in a typed array`);
  const size = c.BYTES_PER_ELEMENT;
  if (bytes.byteOffset % size === 0) return new c(bytes.buffer, bytes.byteOffset, bytes.byteLength / size);
  // Copy with Uint8Array.from: a Node Buffer's slice() is a view into its pool, not a copy.
  const copy = Uint8Array.from(bytes);
  return new c(copy.buffer, 0, copy.byteLength / size);
}

/** The bytes of a typed array (a view). */
export function typedToBytes(data: OnnxTensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
