/**
 * NumPy `.npy` (format 1.0 / 2.0 / 3.0) reading and writing, so tensors can be compared with
 * PyTorch / NumPy runs: parity fixtures are `.npy` files, and users dump tensors to check ours.
 * Little-endian C-order arrays of float32/float64/int8-64/uint8-64/bool are supported.
 */
import { ValidationError } from '../errors/index.js';

export type NpyData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array;

export interface NpyArray<T extends NpyData = NpyData> {
  /** NumPy dtype descriptor, e.g. `<f4`. */
  dtype: string;
  shape: number[];
  data: T;
}

const CTORS: Record<string, { new (buf: ArrayBuffer, off: number, len: number): NpyData; BYTES_PER_ELEMENT: number }> = {
  '<f4': Float32Array,
  '<f8': Float64Array,
  '|i1': Int8Array,
  '<i2': Int16Array,
  '<i4': Int32Array,
  '<i8': BigInt64Array,
  '|u1': Uint8Array,
  '|b1': Uint8Array,
  '<u2': Uint16Array,
  '<u4': Uint32Array,
  '<u8': BigUint64Array,
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parses `.npy` bytes; `source` names the file in errors. */
export function parseNpy(bytes: Uint8Array, source = '<npy>'): NpyArray {
  const fail = (problem: string): never => {
    throw new ValidationError({ source, issues: [problem] });
  };
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) fail('not a .npy file (bad magic)');
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  if (major < 1 || major > 3) fail(`unsupported .npy version ${major}`);
  if (headerStart + headerLen > bytes.length) fail('truncated header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) return fail(`cannot parse header ${JSON.stringify(header)}`);
  if (fortran === 'True') fail('Fortran-order arrays are not supported');
  const ctor = CTORS[descr] ?? fail(`unsupported dtype ${descr}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const byteLen = count * ctor.BYTES_PER_ELEMENT;
  if (dataStart + byteLen > bytes.length) fail(`truncated data: need ${byteLen} bytes, have ${bytes.length - dataStart}`);
  // Copy into a fresh, aligned buffer (the data offset need not be a multiple of the element size).
  // (Uint8Array.from, not .slice: Buffer#slice returns a view into a shared pool.)
  const copy = Uint8Array.from(bytes.subarray(dataStart, dataStart + byteLen));
  return { dtype: descr, shape, data: new ctor(copy.buffer, 0, count) };
}

function dtypeOf(data: NpyData): string {
  if (data instanceof Float32Array) return '<f4';
  if (data instanceof Float64Array) return '<f8';
  if (data instanceof Int8Array) return '|i1';
  if (data instanceof Int16Array) return '<i2';
  if (data instanceof Int32Array) return '<i4';
  if (data instanceof BigInt64Array) return '<i8';
  if (data instanceof Uint8Array) return '|u1';
  if (data instanceof Uint16Array) return '<u2';
  if (data instanceof Uint32Array) return '<u4';
  return '<u8';
}

/** Serialises an array as `.npy` version 1.0. */
export function formatNpy(array: { shape: number[]; data: NpyData }): Uint8Array {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length) {
    throw new ValidationError({ issues: [`shape [${array.shape}] holds ${count} values, data has ${array.data.length}`] });
  }
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${dtypeOf(array.data)}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + array.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), 10 + header.length);
  return out;
}
