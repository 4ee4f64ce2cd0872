/**
 * Numeric codes of the Level-5 MAT-file format (MathWorks, "MAT-File Format", Level 5 chapter):
 * data-element types (miXXX) and array classes (mxXXX_CLASS), with the typed-array facts the reader
 * and the writer share.
 */
import type { MatNumericClass } from './types.js';

/** Data-element types: what the bytes after a tag are. */
export const MI = {
  INT8: 1,
  UINT8: 2,
  INT16: 3,
  UINT16: 4,
  INT32: 5,
  UINT32: 6,
  SINGLE: 7,
  DOUBLE: 9,
  INT64: 12,
  UINT64: 13,
  MATRIX: 14,
  COMPRESSED: 15,
  UTF8: 16,
  UTF16: 17,
  UTF32: 18,
} as const;

/** Array classes, the low byte of the array-flags word. */
export const MX = {
  CELL: 1,
  STRUCT: 2,
  OBJECT: 3,
  CHAR: 4,
  SPARSE: 5,
  DOUBLE: 6,
  SINGLE: 7,
  INT8: 8,
  UINT8: 9,
  INT16: 10,
  UINT16: 11,
  INT32: 12,
  UINT32: 13,
  INT64: 14,
  UINT64: 15,
  FUNCTION: 16,
  OPAQUE: 17,
} as const;

/** Bits of the flags byte (second byte of the array-flags word). */
export const FLAG_COMPLEX = 0x08;
export const FLAG_GLOBAL = 0x04;
export const FLAG_LOGICAL = 0x02;

/** Storage types that hold plain numbers, with their element size. */
export const NUMERIC_MI_SIZE: ReadonlyMap<number, number> = new Map([
  [MI.INT8, 1],
  [MI.UINT8, 1],
  [MI.INT16, 2],
  [MI.UINT16, 2],
  [MI.INT32, 4],
  [MI.UINT32, 4],
  [MI.SINGLE, 4],
  [MI.DOUBLE, 8],
  [MI.INT64, 8],
  [MI.UINT64, 8],
]);

export const MI_NAMES: ReadonlyMap<number, string> = new Map([
  [MI.INT8, 'miINT8'],
  [MI.UINT8, 'miUINT8'],
  [MI.INT16, 'miINT16'],
  [MI.UINT16, 'miUINT16'],
  [MI.INT32, 'miINT32'],
  [MI.UINT32, 'miUINT32'],
  [MI.SINGLE, 'miSINGLE'],
  [MI.DOUBLE, 'miDOUBLE'],
  [MI.INT64, 'miINT64'],
  [MI.UINT64, 'miUINT64'],
  [MI.MATRIX, 'miMATRIX'],
  [MI.COMPRESSED, 'miCOMPRESSED'],
  [MI.UTF8, 'miUTF8'],
  [MI.UTF16, 'miUTF16'],
  [MI.UTF32, 'miUTF32'],
]);

export function miName(type: number): string {
  return MI_NAMES.get(type) ?? `unknown type ${type}`;
}

/** Numeric array classes ↔ their class name and the storage type used when nothing smaller fits. */
export const NUMERIC_CLASSES: ReadonlyArray<{ mx: number; name: MatNumericClass; mi: number }> = [
  { mx: MX.DOUBLE, name: 'double', mi: MI.DOUBLE },
  { mx: MX.SINGLE, name: 'single', mi: MI.SINGLE },
  { mx: MX.INT8, name: 'int8', mi: MI.INT8 },
  { mx: MX.UINT8, name: 'uint8', mi: MI.UINT8 },
  { mx: MX.INT16, name: 'int16', mi: MI.INT16 },
  { mx: MX.UINT16, name: 'uint16', mi: MI.UINT16 },
  { mx: MX.INT32, name: 'int32', mi: MI.INT32 },
  { mx: MX.UINT32, name: 'uint32', mi: MI.UINT32 },
  { mx: MX.INT64, name: 'int64', mi: MI.INT64 },
  { mx: MX.UINT64, name: 'uint64', mi: MI.UINT64 },
];

/** Names of the classes the reader keeps as `unsupported` placeholders. */
export const UNSUPPORTED_CLASS_NAMES: ReadonlyMap<number, string> = new Map([
  [MX.OBJECT, 'object'],
  [MX.SPARSE, 'sparse'],
  [MX.FUNCTION, 'function_handle'],
  [MX.OPAQUE, 'opaque'],
]);

/** True when this machine stores multi-byte numbers little-endian (every platform Node ships for). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Typed-array constructors for each storage type (the same arrays also serve the classes). */
export type NumericTypedArray =
  | Float64Array
  | Float32Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Views `count` elements of storage type `mi` over an ArrayBuffer that holds them in host order. */
export function viewAs(mi: number, buffer: ArrayBuffer, count: number): NumericTypedArray {
  switch (mi) {
    case MI.INT8:
      return new Int8Array(buffer, 0, count);
    case MI.UINT8:
      return new Uint8Array(buffer, 0, count);
    case MI.INT16:
      return new Int16Array(buffer, 0, count);
    case MI.UINT16:
      return new Uint16Array(buffer, 0, count);
    case MI.INT32:
      return new Int32Array(buffer, 0, count);
    case MI.UINT32:
      return new Uint32Array(buffer, 0, count);
    case MI.SINGLE:
      return new Float32Array(buffer, 0, count);
    case MI.DOUBLE:
      return new Float64Array(buffer, 0, count);
    case MI.INT64:
      return new BigInt64Array(buffer, 0, count);
    case MI.UINT64:
      return new BigUint64Array(buffer, 0, count);
    default:
      throw new Error(`not a numeric storage type: ${miName(mi)}`);
  }
}

/** Reverses the byte order of each `size`-byte element in place (for files of the other endianness). */
export function swapBytes(bytes: Uint8Array, size: number): void {
  if (size === 1) return;
  for (let i = 0; i + size <= bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a] as number;
      bytes[a] = bytes[b] as number;
      bytes[b] = t;
    }
  }
}
