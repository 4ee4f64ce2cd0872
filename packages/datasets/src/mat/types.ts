/**
 * The JavaScript shape of MATLAB values read from (or written to) a Level-5 MAT-file.
 *
 * MATLAB stores every array in column-major order (the first index varies fastest). We keep that
 * order in `data` / `items` so that `dims` and MATLAB's linear indexing (`A(k)`, 1-based) line up:
 * element k of a MATLAB array is `data[k - 1]`. Char arrays are the exception: they are turned into
 * JS strings row by row, because nobody wants a column-major string.
 */

/** The numeric MATLAB classes (what `class(x)` says), independent of how the file stores them. */
export type MatNumericClass =
  | 'double'
  | 'single'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64';

/** The typed array that holds each numeric class (int64/uint64 need bigint to stay exact). */
export interface MatNumericArrayMap {
  double: Float64Array;
  single: Float32Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
}

export type MatNumericArray = MatNumericArrayMap[MatNumericClass];

/** A numeric array. `data` has the class's own typed array even when the file stored it in a smaller type. */
export interface MatNumeric {
  kind: 'numeric';
  class: MatNumericClass;
  dims: number[];
  /** Real part, column-major, `dims` product long. */
  data: MatNumericArray;
  /** Imaginary part for complex arrays, same length as `data`. */
  imag?: MatNumericArray;
}

/** A logical (boolean) array; `data` holds 0 or 1, column-major. */
export interface MatLogical {
  kind: 'logical';
  dims: number[];
  data: Uint8Array;
}

/**
 * A char array. A single-row array (1×N, and the empty 0×0 char) is one string; an M×N array with
 * M ≠ 1 is M strings, one per row (MATLAB pads the rows of a char matrix with spaces to equal length;
 * the padding is kept here). Arrays with more than two dimensions are read as dims[0] rows.
 */
export interface MatChar {
  kind: 'char';
  dims: number[];
  text: string | string[];
}

/** A cell array; `items` are column-major. */
export interface MatCell {
  kind: 'cell';
  dims: number[];
  items: MatValue[];
}

/** A struct array: one record per element, column-major, each with every field in `fields`. */
export interface MatStruct {
  kind: 'struct';
  dims: number[];
  fields: string[];
  items: Record<string, MatValue>[];
}

/**
 * A value of a class this reader does not decode (sparse, object, function handle, opaque such as
 * `string` or `table`). It is kept as a placeholder so the other variables of the file stay readable.
 */
export interface MatUnsupported {
  kind: 'unsupported';
  /** MATLAB's name for the class, e.g. "sparse", "object", "function_handle", "opaque". */
  class: string;
  dims: number[];
}

export type MatValue = MatNumeric | MatLogical | MatChar | MatCell | MatStruct | MatUnsupported;

export interface MatHeader {
  /** The descriptive text at the start of the file ("MATLAB 5.0 MAT-file, Platform: …"), trailing padding removed. */
  text: string;
  /** Version word; 0x0100 for every Level-5 file (v5, v6 and v7 alike). */
  version: number;
  /** Byte order the file was written in, from its endian indicator ('IM' little, 'MI' big). */
  endian: 'little' | 'big';
}

export interface MatFile {
  /** Where the bytes came from, used in every error message. */
  file: string;
  header: MatHeader;
  /** Variables by name, in file order. */
  variables: Map<string, MatValue>;
}
