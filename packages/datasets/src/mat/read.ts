/**
 * Reader for Level-5 MAT-files (what MATLAB writes with `save -v6` / `save -v7`, and what scipy's
 * `savemat` writes). The datasets we support ship their indexes in this format: Oxford Flowers
 * (`imagelabels.mat`, `setid.mat`), the Stanford Cars devkit and the Stanford Dogs lists.
 *
 * File layout, as the reader walks it:
 * - a 128-byte header: 116 bytes of text, 8 bytes of subsystem offset, a 2-byte version (0x0100)
 *   and a 2-byte endian indicator ('IM' when the writer was little-endian, 'MI' when big-endian);
 * - then data elements, each an 8-byte tag (type, byte count) and its data padded to 8 bytes, or,
 *   for data of at most 4 bytes, a "small" element that packs count, type and data into 8 bytes.
 *   Top-level elements are variables: `miMATRIX`, or `miCOMPRESSED` (zlib) wrapping one.
 * - an `miMATRIX` holds sub-elements: array flags (class and complex/global/logical bits), the
 *   dimensions, the name, then the class's own parts (data, cells, struct fields).
 *
 * Every problem becomes a `DatasetFormatError` that names the file and says what is wrong and where,
 * because a bad download of an index file is the usual cause and the user needs to know which one.
 */
import { inflateSync } from 'node:zlib';
import { DatasetFormatError } from '@diffmix/core';
import { readBinaryFile } from '../adapters/common.js';
import {
  FLAG_COMPLEX,
  FLAG_LOGICAL,
  HOST_LITTLE_ENDIAN,
  MI,
  MX,
  miName,
  NUMERIC_CLASSES,
  NUMERIC_MI_SIZE,
  swapBytes,
  UNSUPPORTED_CLASS_NAMES,
  viewAs,
} from './constants.js';
import type { MatChar, MatFile, MatHeader, MatNumericArray, MatNumericClass, MatValue } from './types.js';

export const MAT_V73_MESSAGE = 'MAT v7.3 (HDF5) is not supported; re-save with -v7';

/** Nesting (cells in cells in structs…) deeper than this is treated as a corrupt file, not followed. */
const MAX_DEPTH = 100;

/** One shared decoder: constructing a TextDecoder per element dominated the time on large struct arrays. */
const utf8 = new TextDecoder('utf-8');

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/** A byte buffer being parsed: the file itself, or the inflated contents of a compressed element. */
interface Source {
  file: string;
  bytes: Uint8Array;
  view: DataView;
  le: boolean;
  /** Says where offset `pos` of this buffer is, for messages. */
  where(pos: number): string;
}

/** Describes the value being read, for messages; only called when something is wrong. */
type Describe = () => string;

/** One data element: its type, where its data starts, how long the data is and where the next element starts. */
interface Element {
  type: number;
  start: number;
  dataStart: number;
  length: number;
  end: number;
}

function fail(src: { file: string }, problem: string): never {
  throw new DatasetFormatError(src.file, problem);
}

function hasSignatureAt(bytes: Uint8Array, offset: number, sig: readonly number[]): boolean {
  if (bytes.length < offset + sig.length) return false;
  return sig.every((b, i) => bytes[offset + i] === b);
}

function asciiText(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

function parseHeader(bytes: Uint8Array, file: string): MatHeader {
  const src = { file };
  // A v7.3 file is an HDF5 file with a 512-byte MAT header in front; a bare HDF5 file has the
  // signature at 0. Both get the same advice.
  if (hasSignatureAt(bytes, 0, HDF5_SIGNATURE)) fail(src, `${MAT_V73_MESSAGE} (this is an HDF5 file)`);
  // MATLAB itself tells v4 from v5 files by a zero among the first four bytes: a v4 file starts with
  // a small int32 type code, a v5 file with header text.
  const looksV4 = bytes.length >= 4 && bytes.subarray(0, 4).includes(0);
  const v4Problem = 'not a MAT v5 file (it looks like a MAT v4 file, which is not supported; re-save with -v7)';
  if (bytes.length < 128) {
    if (looksV4) fail(src, v4Problem);
    fail(src, `not a MAT v5 file: ${bytes.length} bytes, shorter than the 128-byte MAT-file header`);
  }
  const text = asciiText(bytes.subarray(0, 116)).replace(/[\s\0]+$/, '');
  const indicator = String.fromCharCode(bytes[126] as number, bytes[127] as number);
  const isV73Text = /^MATLAB 7\.3 MAT-file/.test(text) || hasSignatureAt(bytes, 512, HDF5_SIGNATURE);
  if (indicator !== 'IM' && indicator !== 'MI') {
    if (isV73Text) fail(src, MAT_V73_MESSAGE);
    if (looksV4) fail(src, v4Problem);
    fail(src, "not a MAT v5 file (no 'IM'/'MI' endian indicator at byte 126)");
  }
  const le = indicator === 'IM';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(124, le);
  if (version === 0x0200 || isV73Text) fail(src, MAT_V73_MESSAGE);
  if (version !== 0x0100) fail(src, `unsupported MAT-file version 0x${version.toString(16).padStart(4, '0')} (expected 0x0100)`);
  return { text, version, endian: le ? 'little' : 'big' };
}

/** Reads the tag at `pos` (normal or small format); `limit` is the end of the enclosing element. */
function readTag(src: Source, pos: number, limit: number): Element {
  const left = limit - pos;
  if (left < 8) {
    fail(src, `truncated data element at ${src.where(pos)}: an element needs an 8-byte tag, only ${left} byte(s) left`);
  }
  const first = src.view.getUint32(pos, src.le);
  const smallCount = first >>> 16;
  if (smallCount !== 0) {
    // Small data element: byte count in the upper 16 bits, type in the lower, data in the next 4 bytes.
    if (smallCount > 4) fail(src, `corrupt small data element at ${src.where(pos)}: claims ${smallCount} bytes, at most 4 fit`);
    return { type: first & 0xffff, start: pos, dataStart: pos + 4, length: smallCount, end: pos + 8 };
  }
  const type = first;
  const length = src.view.getUint32(pos + 4, src.le);
  const dataStart = pos + 8;
  if (length > limit - dataStart) {
    fail(
      src,
      `truncated ${miName(type)} element at ${src.where(pos)}: it declares ${length} bytes of data, only ${limit - dataStart} left`,
    );
  }
  // Compressed elements are not padded (their byte count is exact); every other element is padded to 8.
  const padded = type === MI.COMPRESSED ? length : length + ((8 - (length % 8)) % 8);
  return { type, start: pos, dataStart, length, end: Math.min(dataStart + padded, limit) };
}

function inflateElement(src: Source, el: Element): Source {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(inflateSync(src.bytes.subarray(el.dataStart, el.dataStart + el.length)));
  } catch (cause) {
    throw new DatasetFormatError(
      src.file,
      `corrupt or truncated compressed element at ${src.where(el.start)} (zlib: ${(cause as Error).message})`,
      { cause },
    );
  }
  const outer = src.where(el.start);
  return {
    file: src.file,
    bytes,
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    le: src.le,
    where: (pos) => `byte ${pos} of the data inflated from the compressed element at ${outer}`,
  };
}

/** Reads element values one at a time, in the file's byte order, without copying the bytes. */
interface ValueReader {
  /** Storage type (miXXX) of the values. */
  storage: number;
  count: number;
  get(i: number): number | bigint;
}

function valueReader(src: Source, el: Element, what: Describe): ValueReader {
  // UTF-16/UTF-32 char data is read as the same-sized unsigned integers.
  const storage = el.type === MI.UTF16 ? MI.UINT16 : el.type === MI.UTF32 ? MI.UINT32 : el.type;
  const size = NUMERIC_MI_SIZE.get(storage);
  if (size === undefined) fail(src, `${what()} at ${src.where(el.start)} has type ${miName(el.type)}, expected a numeric type`);
  if (el.length % size !== 0) {
    fail(src, `${what()} at ${src.where(el.start)}: ${el.length} bytes is not a whole number of ${miName(el.type)} values`);
  }
  const { view, le } = src;
  const base = el.dataStart;
  let get: (i: number) => number | bigint;
  switch (storage) {
    case MI.INT8:
      get = (i) => view.getInt8(base + i);
      break;
    case MI.UINT8:
      get = (i) => view.getUint8(base + i);
      break;
    case MI.INT16:
      get = (i) => view.getInt16(base + 2 * i, le);
      break;
    case MI.UINT16:
      get = (i) => view.getUint16(base + 2 * i, le);
      break;
    case MI.INT32:
      get = (i) => view.getInt32(base + 4 * i, le);
      break;
    case MI.UINT32:
      get = (i) => view.getUint32(base + 4 * i, le);
      break;
    case MI.SINGLE:
      get = (i) => view.getFloat32(base + 4 * i, le);
      break;
    case MI.DOUBLE:
      get = (i) => view.getFloat64(base + 8 * i, le);
      break;
    case MI.INT64:
      get = (i) => view.getBigInt64(base + 8 * i, le);
      break;
    default:
      get = (i) => view.getBigUint64(base + 8 * i, le);
      break;
  }
  return { storage, count: el.length / size, get };
}

/**
 * Small arrays are carved out of shared 64 KiB slabs, as Node's Buffer pool does: a struct array
 * such as the Stanford Cars annotations holds ~50,000 scalars, and giving each its own ArrayBuffer
 * made allocation and garbage collection most of the reading time. A view keeps its slab alive,
 * which costs at most a slab per file read.
 */
const SLAB_BYTES = 64 * 1024;
const SMALL_ARRAY_BYTES = 64;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

function slabSpace(bytes: number): { buffer: ArrayBuffer; offset: number } {
  // Offsets stay multiples of 8 so every element type is aligned.
  const need = Math.ceil(bytes / 8) * 8;
  if (slabUsed + need > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const offset = slabUsed;
  slabUsed += need;
  return { buffer: slab, offset };
}

function classArray(cls: MatNumericClass, n: number): MatNumericArray {
  const info = CLASS_BYTES[cls];
  if (n * info > SMALL_ARRAY_BYTES || n === 0) return new CLASS_ARRAYS[cls](n);
  const { buffer, offset } = slabSpace(n * info);
  return new CLASS_ARRAYS[cls](buffer, offset, n);
}

const CLASS_ARRAYS = {
  double: Float64Array,
  single: Float32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
} as const;

const CLASS_BYTES: Record<MatNumericClass, number> = {
  double: 8,
  single: 4,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
};

/**
 * Reads an element's values into the typed array of class `cls`. The storage type may be smaller
 * than the class: MATLAB stores e.g. a double array whose values are all small integers as miUINT8
 * to save space, and the class is what the user sees.
 */
function readClass(src: Source, el: Element, cls: MatNumericClass, what: Describe): MatNumericArray {
  const { storage, count, get } = valueReader(src, el, what);
  const info = NUMERIC_CLASSES.find((c) => c.name === cls);
  if (count >= 64 && info?.mi === storage) {
    // Large array already in the class's own type: one copy (plus a byte swap for the other endianness).
    const copy = src.bytes.slice(el.dataStart, el.dataStart + el.length);
    if (src.le !== HOST_LITTLE_ENDIAN) swapBytes(copy, el.length / count);
    return viewAs(storage, copy.buffer, count) as MatNumericArray;
  }
  const out = classArray(cls, count);
  if (out instanceof BigInt64Array || out instanceof BigUint64Array) {
    for (let i = 0; i < count; i++) {
      const v = get(i);
      if (typeof v === 'bigint') out[i] = v;
      else if (Number.isInteger(v)) out[i] = BigInt(v);
      else fail(src, `${what()}: ${cls} value stored as non-integer ${v}`);
    }
  } else {
    for (let i = 0; i < count; i++) {
      const v = get(i);
      out[i] = typeof v === 'bigint' ? Number(v) : v;
    }
  }
  return out;
}

/** Decodes char data to UTF-16 code units (one per MATLAB character), still column-major. */
function decodeCharUnits(src: Source, el: Element, what: Describe): string {
  switch (el.type) {
    case MI.UTF8:
      return decodeUtf8(src.bytes, el.dataStart, el.length);
    case MI.UINT8:
    case MI.INT8:
      // One byte per character (what `save -v6` of ASCII text and some writers produce).
      return unitsToString(src.bytes.subarray(el.dataStart, el.dataStart + el.length));
    case MI.UTF16:
    case MI.UINT16:
    case MI.INT16:
      return unitsToString(readClass(src, { ...el, type: MI.UINT16 }, 'uint16', what) as Uint16Array);
    case MI.UTF32:
    case MI.UINT32:
    case MI.INT32: {
      const cps = readClass(src, { ...el, type: MI.UINT32 }, 'uint32', what) as Uint32Array;
      let s = '';
      for (const cp of cps) s += String.fromCodePoint(cp <= 0x10ffff ? cp : 0xfffd);
      return s;
    }
    default:
      return fail(src, `${what()} at ${src.where(el.start)} has type ${miName(el.type)}, which cannot hold characters`);
  }
}

/** UTF-8 text; pure ASCII (names, file names) is built directly, skipping a subarray and a decoder call. */
function decodeUtf8(bytes: Uint8Array, start: number, length: number): string {
  if (length <= 64) {
    let s = '';
    for (let i = start; i < start + length; i++) {
      const b = bytes[i] as number;
      if (b >= 0x80) return utf8.decode(bytes.subarray(start, start + length));
      s += String.fromCharCode(b);
    }
    return s;
  }
  return utf8.decode(bytes.subarray(start, start + length));
}

function unitsToString(units: Uint8Array | Uint16Array): string {
  // fromCharCode takes its arguments on the stack: go in chunks so long texts do not overflow it.
  let s = '';
  for (let i = 0; i < units.length; i += 8192) s += String.fromCharCode(...units.subarray(i, i + 8192));
  return s;
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function formatDims(dims: readonly number[]): string {
  return dims.join('×');
}

/** Reshapes column-major characters into row strings. */
function charValue(src: Source, dims: number[], units: string, what: Describe): MatChar {
  const numel = product(dims);
  const rows = dims[0] ?? 0;
  if (rows === 1 || rows === 0) {
    // One row (or an empty char): the text is the data as is. For UTF-8 data the unit count may
    // legitimately differ from the dims (characters outside the BMP), so it is not checked here.
    return { kind: 'char', dims, text: rows === 0 ? '' : units };
  }
  if (units.length !== numel) {
    fail(src, `${what()}: a ${formatDims(dims)} char array holds ${units.length} characters, expected ${numel}`);
  }
  const cols = numel / rows;
  const out: string[] = [];
  for (let i = 0; i < rows; i++) {
    let row = '';
    for (let j = 0; j < cols; j++) row += units[i + j * rows];
    out.push(row);
  }
  return { kind: 'char', dims, text: out };
}

/** Parses one miMATRIX element into its name and value. */
function parseMatrix(src: Source, el: Element, depth: number, what: Describe): { name: string; value: MatValue } {
  if (depth > MAX_DEPTH) fail(src, `${what()}: values nested more than ${MAX_DEPTH} levels deep at ${src.where(el.start)}`);
  // MATLAB writes an empty `[]` inside cells and struct fields as a miMATRIX with no data at all.
  if (el.length === 0) return { name: '', value: { kind: 'numeric', class: 'double', dims: [0, 0], data: new Float64Array(0) } };
  const limit = el.dataStart + el.length;
  let pos = el.dataStart;
  const next = (part: string): Element => {
    if (pos >= limit) fail(src, `truncated array at ${src.where(el.start)} (${what()}): it ends before its ${part}`);
    const sub = readTag(src, pos, limit);
    pos = sub.end;
    return sub;
  };

  const flagsEl = next('array flags');
  if (flagsEl.length < 4) fail(src, `corrupt array flags at ${src.where(flagsEl.start)} (${what()})`);
  const flags = src.view.getUint32(flagsEl.dataStart, src.le);
  const mx = flags & 0xff;
  const bits = (flags >>> 8) & 0xff;

  const dimsEl = next('dimensions');
  const dimsReader = valueReader(src, dimsEl, () => `dimensions of ${what()}`);
  const dims: number[] = [];
  for (let i = 0; i < dimsReader.count; i++) dims.push(Number(dimsReader.get(i)));
  if (dims.length === 0 || dims.some((d) => !Number.isInteger(d) || d < 0)) {
    fail(src, `corrupt dimensions [${dims.join(', ')}] at ${src.where(dimsEl.start)} (${what()})`);
  }
  const numel = product(dims);

  const nameEl = next('name');
  const name = decodeUtf8(src.bytes, nameEl.dataStart, nameEl.length);
  const label: Describe = depth === 0 && name !== '' ? () => `variable ${JSON.stringify(name)}` : what;

  const unsupported = UNSUPPORTED_CLASS_NAMES.get(mx);
  if (unsupported !== undefined) return { name, value: { kind: 'unsupported', class: unsupported, dims } };

  // Every cell and struct element needs at least an 8-byte tag: check before looping, so a corrupt
  // dimension cannot make us spin over billions of missing elements.
  const needElements = (count: number) => {
    if (count * 8 > limit - pos) {
      fail(
        src,
        `truncated array at ${src.where(el.start)} (${label()}): ${count} element(s) declared, room for at most ${Math.floor((limit - pos) / 8)}`,
      );
    }
  };

  if (mx === MX.CELL) {
    needElements(numel);
    const items: MatValue[] = [];
    for (let k = 0; k < numel; k++) {
      const itemWhat = () => `${label()}{${k + 1}}`;
      const sub = next('cell');
      if (sub.type !== MI.MATRIX) fail(src, `${itemWhat()} at ${src.where(sub.start)} is ${miName(sub.type)}, expected miMATRIX`);
      items.push(parseMatrix(src, sub, depth + 1, itemWhat).value);
    }
    return { name, value: { kind: 'cell', dims, items } };
  }

  if (mx === MX.STRUCT) {
    const lenEl = next('field name length');
    const lenReader = valueReader(src, lenEl, () => `field name length of ${label()}`);
    const fieldNameLength = lenReader.count > 0 ? Number(lenReader.get(0)) : 0;
    const namesEl = next('field names');
    const nameBytes = src.bytes.subarray(namesEl.dataStart, namesEl.dataStart + namesEl.length);
    if (nameBytes.length > 0 && (fieldNameLength <= 0 || nameBytes.length % fieldNameLength !== 0)) {
      fail(
        src,
        `corrupt field names of ${label()}: ${nameBytes.length} bytes is not a multiple of the field name length ${fieldNameLength}`,
      );
    }
    const fields: string[] = [];
    for (let off = 0; off < nameBytes.length; off += fieldNameLength) {
      const chunk = nameBytes.subarray(off, off + fieldNameLength);
      const nul = chunk.indexOf(0);
      fields.push(utf8.decode(nul === -1 ? chunk : chunk.subarray(0, nul)));
    }
    needElements(numel * fields.length);
    // Field names come from the file: a `__proto__` field (never a valid MATLAB name) must not reach
    // Object.prototype, so such structs get null-prototype records; the rest get plain objects, which
    // V8 builds several times faster.
    const unsafeNames = fields.includes('__proto__');
    const items: Record<string, MatValue>[] = [];
    for (let k = 0; k < numel; k++) {
      const record: Record<string, MatValue> = unsafeNames ? Object.create(null) : {};
      for (const field of fields) {
        const fieldWhat = () => (numel === 1 ? `${label()}.${field}` : `${label()}(${k + 1}).${field}`);
        const sub = next('struct field');
        if (sub.type !== MI.MATRIX)
          fail(src, `${fieldWhat()} at ${src.where(sub.start)} is ${miName(sub.type)}, expected miMATRIX`);
        record[field] = parseMatrix(src, sub, depth + 1, fieldWhat).value;
      }
      items.push(record);
    }
    return { name, value: { kind: 'struct', dims, fields, items } };
  }

  if (mx === MX.CHAR) {
    // An empty char may come without a data element at all.
    if (pos >= limit) return { name, value: charValue(src, dims, '', label) };
    return { name, value: charValue(src, dims, decodeCharUnits(src, next('characters'), label), label) };
  }

  const numeric = NUMERIC_CLASSES.find((c) => c.mx === mx);
  if (numeric === undefined) fail(src, `${label()} at ${src.where(el.start)} has unknown array class ${mx}`);
  const realEl = next('data');
  if (bits & FLAG_LOGICAL) {
    const stored = valueReader(src, realEl, () => `data of ${label()}`);
    if (stored.count !== numel)
      fail(src, `${label()}: a ${formatDims(dims)} logical array holds ${stored.count} value(s), expected ${numel}`);
    const data = new Uint8Array(numel);
    for (let i = 0; i < numel; i++) data[i] = stored.get(i) ? 1 : 0;
    return { name, value: { kind: 'logical', dims, data } };
  }
  const data = readClass(src, realEl, numeric.name, () => `data of ${label()}`);
  if (data.length !== numel) {
    fail(src, `${label()}: a ${formatDims(dims)} ${numeric.name} array holds ${data.length} value(s), expected ${numel}`);
  }
  if (bits & FLAG_COMPLEX) {
    const imag = readClass(src, next('imaginary part'), numeric.name, () => `imaginary part of ${label()}`);
    if (imag.length !== numel) fail(src, `${label()}: imaginary part holds ${imag.length} value(s), expected ${numel}`);
    return { name, value: { kind: 'numeric', class: numeric.name, dims, data, imag } };
  }
  return { name, value: { kind: 'numeric', class: numeric.name, dims, data } };
}

/** Reads the variables of one buffer of top-level elements (the file body, or an inflated element). */
function readElements(src: Source, start: number, variables: Map<string, MatValue>, depth: number): void {
  let pos = start;
  const end = src.bytes.length;
  while (pos < end) {
    // Trailing zero padding after the last element is harmless.
    if (end - pos < 8 && src.bytes.subarray(pos).every((b) => b === 0)) break;
    const el = readTag(src, pos, end);
    if (el.type === MI.COMPRESSED) {
      if (depth > 2) fail(src, `compressed element nested inside compressed data at ${src.where(el.start)}`);
      readElements(inflateElement(src, el), 0, variables, depth + 1);
    } else if (el.type === MI.MATRIX) {
      const { name, value } = parseMatrix(src, el, 0, () => `the variable at ${src.where(el.start)}`);
      // The unnamed element is MATLAB's subsystem data (for objects and function handles), not a variable.
      if (name !== '') variables.set(name, value);
    } else {
      fail(src, `unexpected ${miName(el.type)} element at ${src.where(el.start)} (a variable must be miMATRIX or miCOMPRESSED)`);
    }
    pos = el.end;
  }
}

/**
 * Parses the bytes of a Level-5 MAT-file. `file` is only used in error messages.
 * Throws `DatasetFormatError` for anything that is not a readable v5/v6/v7 MAT-file.
 */
export function readMat(bytes: Uint8Array, file = '<MAT-file bytes>'): MatFile {
  const header = parseHeader(bytes, file);
  const src: Source = {
    file,
    bytes,
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    le: header.endian === 'little',
    where: (pos) => `byte ${pos}`,
  };
  const variables = new Map<string, MatValue>();
  readElements(src, 128, variables, 0);
  return { file, header, variables };
}

/** Reads and parses a MAT-file; a missing file is a `NotFoundError` naming it. */
export async function readMatFile(path: string, what = 'MAT-file'): Promise<MatFile> {
  return readMat(await readBinaryFile(path, what), path);
}
