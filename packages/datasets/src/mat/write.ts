/**
 * A small Level-5 MAT-file writer. It exists so tests (and users who need to hand a dataset index to
 * MATLAB-era tools) can produce files in the same byte format MATLAB's `save -v7` produces: each
 * variable its own zlib-compressed element, integral doubles stored in the smallest integer type,
 * chars as UTF-8, data of at most 4 bytes in the small element format, struct field names in slots
 * of the longest name plus its terminating NUL, rounded up to 8 bytes.
 */
import { deflateSync } from 'node:zlib';
import { InvalidArgumentError } from '@diffmix/core';
import {
  FLAG_COMPLEX,
  FLAG_LOGICAL,
  HOST_LITTLE_ENDIAN,
  MI,
  MX,
  NUMERIC_CLASSES,
  type NumericTypedArray,
  swapBytes,
} from './constants.js';
import type { MatCell, MatChar, MatLogical, MatNumeric, MatNumericArray, MatNumericClass, MatStruct, MatValue } from './types.js';

export interface WriteMatOptions {
  /** Wrap each variable in a zlib-compressed element, as `save -v7` does (default true); false writes `save -v6` style. */
  compress?: boolean;
  /** Byte order of the file (default 'little', what every current MATLAB platform writes). */
  endian?: 'little' | 'big';
  /**
   * Store double and single arrays whose values are all integers in the smallest integer type that
   * holds them, as MATLAB does (default true). The class stays double/single; only the bytes shrink.
   */
  compactIntegers?: boolean;
  /** Storage of char data (default 'utf8', what MATLAB 7+ writes); 'uint8' only holds characters up to U+00FF. */
  charEncoding?: 'utf8' | 'utf16' | 'uint16' | 'uint8';
  /** Descriptive header text (at most 116 ASCII characters). */
  headerText?: string;
}

const DEFAULT_HEADER = 'MATLAB 5.0 MAT-file, written by @diffmix/datasets';
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9_]*$/;

interface Ctx {
  le: boolean;
  compactIntegers: boolean;
  charEncoding: NonNullable<WriteMatOptions['charEncoding']>;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function typedBytes(arr: NumericTypedArray, le: boolean): Uint8Array {
  const bytes = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength).slice();
  if (le !== HOST_LITTLE_ENDIAN) swapBytes(bytes, arr.BYTES_PER_ELEMENT);
  return bytes;
}

/** One data element: small format for at most 4 bytes of data, otherwise tag + data padded to 8 bytes. */
function element(type: number, payload: Uint8Array, ctx: Ctx): Uint8Array {
  if (payload.length <= 4 && type !== MI.MATRIX && type !== MI.COMPRESSED) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setUint32(0, ((payload.length << 16) | type) >>> 0, ctx.le);
    out.set(payload, 4);
    return out;
  }
  const padded = payload.length + ((8 - (payload.length % 8)) % 8);
  const out = new Uint8Array(8 + padded);
  const view = new DataView(out.buffer);
  view.setUint32(0, type, ctx.le);
  view.setUint32(4, payload.length, ctx.le);
  out.set(payload, 8);
  return out;
}

function checkDims(dims: readonly number[], count: number, what: string): void {
  if (dims.length < 2 || dims.some((d) => !Number.isInteger(d) || d < 0 || d > 0x7fffffff)) {
    throw new InvalidArgumentError(what, `dims must be at least two non-negative integers, got [${dims.join(', ')}]`);
  }
  const numel = dims.reduce((a, b) => a * b, 1);
  if (numel !== count)
    throw new InvalidArgumentError(what, `dims [${dims.join(', ')}] hold ${numel} element(s), but ${count} were given`);
}

/** The smallest integer storage type holding every value, if they are all integers; else undefined. */
function compactType(data: MatNumericArray): { mi: number; arr: NumericTypedArray } | undefined {
  if (data.length === 0 || data instanceof BigInt64Array || data instanceof BigUint64Array) return undefined;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of data) {
    if (!Number.isInteger(v) || Object.is(v, -0)) return undefined;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min >= 0) {
    if (max <= 0xff) return { mi: MI.UINT8, arr: Uint8Array.from(data) };
    if (max <= 0xffff) return { mi: MI.UINT16, arr: Uint16Array.from(data) };
    if (max <= 0xffffffff) return { mi: MI.UINT32, arr: Uint32Array.from(data) };
    return undefined;
  }
  if (min >= -0x80 && max <= 0x7f) return { mi: MI.INT8, arr: Int8Array.from(data) };
  if (min >= -0x8000 && max <= 0x7fff) return { mi: MI.INT16, arr: Int16Array.from(data) };
  if (min >= -0x80000000 && max <= 0x7fffffff) return { mi: MI.INT32, arr: Int32Array.from(data) };
  return undefined;
}

function numericData(cls: MatNumericClass, data: MatNumericArray, ctx: Ctx): Uint8Array {
  const info = NUMERIC_CLASSES.find((c) => c.name === cls) as (typeof NUMERIC_CLASSES)[number];
  if ((cls === 'double' || cls === 'single') && ctx.compactIntegers) {
    const compact = compactType(data);
    if (compact) return element(compact.mi, typedBytes(compact.arr, ctx.le), ctx);
  }
  return element(info.mi, typedBytes(data, ctx.le), ctx);
}

/** The characters of a char value in MATLAB's column-major order. */
function charUnits(value: MatChar, what: string): string {
  if (typeof value.text === 'string') {
    checkDims(value.dims, value.text.length, what);
    if (value.text.length > 0 && value.dims[0] !== 1) {
      throw new InvalidArgumentError(
        what,
        `a single string needs dims [1, ${value.text.length}], got [${value.dims.join(', ')}]`,
      );
    }
    return value.text;
  }
  const rows = value.text;
  const cols = rows[0]?.length ?? 0;
  if (rows.some((r) => r.length !== cols))
    throw new InvalidArgumentError(what, 'every row of a char matrix must have the same length');
  checkDims(value.dims, rows.length * cols, what);
  if (value.dims[0] !== rows.length)
    throw new InvalidArgumentError(what, `dims [${value.dims.join(', ')}] do not have ${rows.length} rows`);
  let units = '';
  for (let j = 0; j < cols; j++) for (let i = 0; i < rows.length; i++) units += (rows[i] as string)[j];
  return units;
}

function charData(units: string, ctx: Ctx, what: string): Uint8Array {
  switch (ctx.charEncoding) {
    case 'utf8':
      return element(MI.UTF8, new TextEncoder().encode(units), ctx);
    case 'uint8': {
      const bytes = new Uint8Array(units.length);
      for (let i = 0; i < units.length; i++) {
        const c = units.charCodeAt(i);
        if (c > 0xff)
          throw new InvalidArgumentError(what, `character U+${c.toString(16).toUpperCase()} does not fit charEncoding 'uint8'`);
        bytes[i] = c;
      }
      return element(MI.UINT8, bytes, ctx);
    }
    default: {
      const codes = new Uint16Array(units.length);
      for (let i = 0; i < units.length; i++) codes[i] = units.charCodeAt(i);
      return element(ctx.charEncoding === 'utf16' ? MI.UTF16 : MI.UINT16, typedBytes(codes, ctx.le), ctx);
    }
  }
}

function encodeMatrix(value: MatValue, name: string, ctx: Ctx, what: string): Uint8Array {
  let mx: number;
  let bits = 0;
  const body: Uint8Array[] = [];
  switch (value.kind) {
    case 'numeric': {
      mx = (NUMERIC_CLASSES.find((c) => c.name === value.class) ?? { mx: -1 }).mx;
      if (mx < 0) throw new InvalidArgumentError(what, `unknown numeric class ${JSON.stringify(value.class)}`);
      checkDims(value.dims, value.data.length, what);
      body.push(numericData(value.class, value.data, ctx));
      if (value.imag) {
        if (value.imag.length !== value.data.length) throw new InvalidArgumentError(what, 'imag must be as long as data');
        bits |= FLAG_COMPLEX;
        body.push(numericData(value.class, value.imag, ctx));
      }
      break;
    }
    case 'logical':
      mx = MX.UINT8;
      bits |= FLAG_LOGICAL;
      checkDims(value.dims, value.data.length, what);
      body.push(
        element(
          MI.UINT8,
          Uint8Array.from(value.data, (v) => (v ? 1 : 0)),
          ctx,
        ),
      );
      break;
    case 'char':
      mx = MX.CHAR;
      body.push(charData(charUnits(value, what), ctx, what));
      break;
    case 'cell':
      mx = MX.CELL;
      checkDims(value.dims, value.items.length, what);
      value.items.forEach((item, k) => {
        body.push(encodeMatrix(item, '', ctx, `${what}{${k + 1}}`));
      });
      break;
    case 'struct': {
      mx = MX.STRUCT;
      checkDims(value.dims, value.items.length, what);
      for (const f of value.fields) {
        if (!IDENTIFIER.test(f))
          throw new InvalidArgumentError(what, `field name ${JSON.stringify(f)} is not a MATLAB identifier`);
      }
      // One slot per field name: the longest name plus its NUL, rounded up to 8 (what MATLAB writes).
      const slot = Math.ceil((Math.max(0, ...value.fields.map((f) => f.length)) + 1) / 8) * 8;
      const names = new Uint8Array(slot * value.fields.length);
      value.fields.forEach((f, i) => {
        names.set(new TextEncoder().encode(f), i * slot);
      });
      body.push(element(MI.INT32, typedBytes(Int32Array.of(slot), ctx.le), ctx));
      body.push(element(MI.INT8, names, ctx));
      value.items.forEach((record, k) => {
        for (const f of value.fields) {
          const v = record[f];
          if (v === undefined) throw new InvalidArgumentError(what, `element ${k + 1} has no field ${JSON.stringify(f)}`);
          body.push(encodeMatrix(v, '', ctx, `${what}(${k + 1}).${f}`));
        }
      });
      break;
    }
    default:
      throw new InvalidArgumentError(what, `cannot write a value of class ${JSON.stringify(value.class)}`);
  }
  const flags = new Uint32Array([mx | (bits << 8), 0]);
  const head = [
    element(MI.UINT32, typedBytes(flags, ctx.le), ctx),
    element(MI.INT32, typedBytes(Int32Array.from(value.dims), ctx.le), ctx),
    element(MI.INT8, new TextEncoder().encode(name), ctx),
  ];
  return element(MI.MATRIX, concat([...head, ...body]), ctx);
}

function header(text: string, le: boolean): Uint8Array {
  if (text.length > 116 || !/^[\x20-\x7e]*$/.test(text)) {
    throw new InvalidArgumentError('headerText', 'must be at most 116 printable ASCII characters');
  }
  const out = new Uint8Array(128);
  out.fill(0x20, 0, 116);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  // Bytes 116..123 (subsystem data offset) stay zero: there is no subsystem data.
  new DataView(out.buffer).setUint16(124, 0x0100, le);
  // The endian indicator is the characters 'MI' written as a 16-bit value, so a reader sees 'IM' in
  // a little-endian file.
  out[126] = (le ? 'I' : 'M').charCodeAt(0);
  out[127] = (le ? 'M' : 'I').charCodeAt(0);
  return out;
}

/** Encodes variables (a record, a Map or [name, value] pairs, in order) as the bytes of a MAT-file. */
export function writeMat(
  variables: Record<string, MatValue> | Iterable<readonly [string, MatValue]>,
  options: WriteMatOptions = {},
): Uint8Array {
  const ctx: Ctx = {
    le: (options.endian ?? 'little') === 'little',
    compactIntegers: options.compactIntegers ?? true,
    charEncoding: options.charEncoding ?? 'utf8',
  };
  const entries =
    Symbol.iterator in variables ? [...(variables as Iterable<readonly [string, MatValue]>)] : Object.entries(variables);
  const parts = [header(options.headerText ?? DEFAULT_HEADER, ctx.le)];
  for (const [name, value] of entries) {
    if (!IDENTIFIER.test(name))
      throw new InvalidArgumentError('variables', `${JSON.stringify(name)} is not a MATLAB variable name`);
    const matrix = encodeMatrix(value, name, ctx, name);
    if (options.compress ?? true) {
      const packed = deflateSync(matrix);
      const tag = new Uint8Array(8);
      const view = new DataView(tag.buffer);
      view.setUint32(0, MI.COMPRESSED, ctx.le);
      view.setUint32(4, packed.length, ctx.le);
      parts.push(tag, packed);
    } else {
      parts.push(matrix);
    }
  }
  return concat(parts);
}

// ---- Builders: short ways to make the values `writeMat` takes (fixtures, small index files). ----

function defaultRow(n: number): number[] {
  return [1, n];
}

/** A numeric array of the given class; dims default to a row vector 1×N. */
export function matNumeric(cls: MatNumericClass, values: ArrayLike<number> | ArrayLike<bigint>, dims?: number[]): MatNumeric {
  const n = values.length;
  const nums = () => Array.from(values as ArrayLike<number | bigint>, (v) => Number(v));
  const bigs = () => Array.from(values as ArrayLike<number | bigint>, (v) => BigInt(v));
  let data: MatNumericArray;
  switch (cls) {
    case 'double':
      data = Float64Array.from(nums());
      break;
    case 'single':
      data = Float32Array.from(nums());
      break;
    case 'int8':
      data = Int8Array.from(nums());
      break;
    case 'uint8':
      data = Uint8Array.from(nums());
      break;
    case 'int16':
      data = Int16Array.from(nums());
      break;
    case 'uint16':
      data = Uint16Array.from(nums());
      break;
    case 'int32':
      data = Int32Array.from(nums());
      break;
    case 'uint32':
      data = Uint32Array.from(nums());
      break;
    case 'int64':
      data = BigInt64Array.from(bigs());
      break;
    case 'uint64':
      data = BigUint64Array.from(bigs());
      break;
  }
  return { kind: 'numeric', class: cls, dims: dims ?? defaultRow(n), data };
}

/** A double array (MATLAB's default numeric class); dims default to a row vector 1×N. */
export function matDouble(values: ArrayLike<number>, dims?: number[]): MatNumeric {
  return matNumeric('double', values, dims);
}

/** A logical array; dims default to a row vector 1×N. */
export function matLogical(values: ArrayLike<boolean | number>, dims?: number[]): MatLogical {
  return {
    kind: 'logical',
    dims: dims ?? defaultRow(values.length),
    data: Uint8Array.from(Array.from(values, (v) => (v ? 1 : 0))),
  };
}

/** A char array: one string is a 1×N row (`''` is 0×0); several strings are the rows of a char matrix, space-padded like `char(...)`. */
export function matChar(text: string | readonly string[]): MatChar {
  if (typeof text === 'string') return { kind: 'char', dims: text.length ? [1, text.length] : [0, 0], text };
  const width = Math.max(0, ...text.map((r) => r.length));
  return { kind: 'char', dims: [text.length, width], text: text.map((r) => r.padEnd(width, ' ')) };
}

/** A cell array; dims default to a row 1×N (pass `[n, 1]` for a column, as the Stanford Dogs lists use). */
export function matCell(items: readonly MatValue[], dims?: number[]): MatCell {
  return { kind: 'cell', dims: dims ?? defaultRow(items.length), items: [...items] };
}

/** A struct array from records that share their fields; dims default to 1×N. */
export function matStruct(records: readonly Record<string, MatValue>[], dims?: number[], fields?: readonly string[]): MatStruct {
  const names = fields ? [...fields] : Object.keys(records[0] ?? {});
  return { kind: 'struct', dims: dims ?? defaultRow(records.length), fields: names, items: [...records] };
}
