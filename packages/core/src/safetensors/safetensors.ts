/**
 * safetensors reading and writing (https://github.com/huggingface/safetensors, format described in
 * its README): 8-byte little-endian header length N, an N-byte UTF-8 JSON header mapping tensor names
 * to `{ dtype, shape, data_offsets: [begin, end] }` (offsets relative to the byte after the header)
 * plus an optional `__metadata__` string→string map, then the raw little-endian tensor bytes.
 *
 * Every structural problem (short file, bad JSON, unknown dtype, a size that does not match the shape,
 * offsets out of range or overlapping) is reported as a {@link ModelFormatError} naming the file.
 */
import { open, writeFile } from 'node:fs/promises';
import { ModelFormatError, NotFoundError } from '../errors/index.js';
import { bfloat16ToFloat32, float16ToFloat32 } from './half.js';

export type SafetensorsDType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

/**
 * Typed array holding a tensor's elements. F16 and BF16 come as their raw bit patterns in a
 * `Uint16Array` unless float32 conversion is requested; BOOL comes as a `Uint8Array` of 0/1.
 */
export type SafetensorsData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | BigUint64Array
  | Uint32Array
  | Uint16Array
  | Uint8Array;

type TypedCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): SafetensorsData;
  new (length: number): SafetensorsData;
  BYTES_PER_ELEMENT: number;
};

const DTYPES: Record<SafetensorsDType, TypedCtor> = {
  F64: Float64Array as unknown as TypedCtor,
  F32: Float32Array as unknown as TypedCtor,
  F16: Uint16Array as unknown as TypedCtor,
  BF16: Uint16Array as unknown as TypedCtor,
  I64: BigInt64Array as unknown as TypedCtor,
  I32: Int32Array as unknown as TypedCtor,
  I16: Int16Array as unknown as TypedCtor,
  I8: Int8Array as unknown as TypedCtor,
  U64: BigUint64Array as unknown as TypedCtor,
  U32: Uint32Array as unknown as TypedCtor,
  U16: Uint16Array as unknown as TypedCtor,
  U8: Uint8Array as unknown as TypedCtor,
  BOOL: Uint8Array as unknown as TypedCtor,
};

/** Bytes per element of a safetensors dtype. */
export function safetensorsDTypeSize(dtype: SafetensorsDType): number {
  return DTYPES[dtype].BYTES_PER_ELEMENT;
}

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(DTYPES, value);
}

/** Where one tensor lives in the file. */
export interface SafetensorsEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** Absolute byte offset of the tensor's data in the file. */
  byteOffset: number;
  byteLength: number;
}

/** A tensor read from a safetensors file. */
export interface SafetensorsTensor<T extends SafetensorsData = SafetensorsData> {
  name: string;
  /** The dtype stored in the file (also when `data` was converted to float32). */
  dtype: SafetensorsDType;
  shape: number[];
  data: T;
}

export interface TensorReadOptions {
  /** Always return a fresh copy (by default an aligned view into the file bytes is returned when possible). */
  copy?: boolean;
}

/** Header limit, as in the reference implementation (guards against absurd header lengths). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** A parsed safetensors file: the header plus the bytes the tensors are read from (lazily, on request). */
export class SafetensorsFile {
  /** File name (or other label) used in error messages. */
  readonly source: string;
  /** `__metadata__` (empty object when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Entries in header order. */
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  /** The whole file. */
  readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array, source: string, entries: Map<string, SafetensorsEntry>, metadata: Record<string, string>) {
    this.bytes = bytes;
    this.source = source;
    this.entries = entries;
    this.metadata = metadata;
  }

  /** Tensor names in header order. */
  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Header entry of `name`; throws a {@link ModelFormatError} naming the file when absent. */
  entry(name: string): SafetensorsEntry {
    const e = this.entries.get(name);
    if (!e) throw new ModelFormatError(this.source, `no tensor named ${JSON.stringify(name)}`);
    return e;
  }

  /** The raw little-endian bytes of a tensor (a view, no copy). */
  raw(name: string): Uint8Array {
    const e = this.entry(name);
    return this.bytes.subarray(e.byteOffset, e.byteOffset + e.byteLength);
  }

  /** A tensor in its stored dtype (F16/BF16 as raw bits in a `Uint16Array`). */
  tensor(name: string, options: TensorReadOptions = {}): SafetensorsTensor {
    const e = this.entry(name);
    const ctor = DTYPES[e.dtype];
    const count = e.byteLength / ctor.BYTES_PER_ELEMENT;
    const absolute = this.bytes.byteOffset + e.byteOffset;
    let data: SafetensorsData;
    if (!options.copy && absolute % ctor.BYTES_PER_ELEMENT === 0) {
      data = new ctor(this.bytes.buffer, absolute, count);
    } else {
      // Copy into a fresh (aligned) buffer. Uint8Array's slice, not Buffer's: a Node Buffer's slice is a view.
      const copy = Uint8Array.prototype.slice.call(this.bytes, e.byteOffset, e.byteOffset + e.byteLength);
      data = new ctor(copy.buffer, 0, count);
    }
    return { name, dtype: e.dtype, shape: [...e.shape], data };
  }

  /**
   * A floating-point tensor converted to float32 (F16 / BF16 / F64 converted, F32 returned as is,
   * a copy only when `copy` is set or the data is misaligned). Integer and bool tensors are refused.
   */
  float32(name: string, options: TensorReadOptions = {}): SafetensorsTensor<Float32Array> {
    const t = this.tensor(name, options);
    let data: Float32Array;
    switch (t.dtype) {
      case 'F32':
        data = t.data as Float32Array;
        break;
      case 'F16':
        data = float16ToFloat32(t.data as Uint16Array);
        break;
      case 'BF16':
        data = bfloat16ToFloat32(t.data as Uint16Array);
        break;
      case 'F64':
        data = Float32Array.from(t.data as Float64Array);
        break;
      default:
        throw new ModelFormatError(this.source, `tensor ${JSON.stringify(name)} has dtype ${t.dtype}, expected a float dtype`);
    }
    return { name, dtype: t.dtype, shape: t.shape, data };
  }
}

/** Parses safetensors bytes (the tensors stay in `bytes`; nothing is copied). `source` names the file in errors. */
export function parseSafetensors(bytes: Uint8Array, source = '<safetensors>'): SafetensorsFile {
  const fail = (problem: string): never => {
    throw new ModelFormatError(source, problem);
  };
  if (bytes.length < 8) fail(`not a safetensors file: ${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen64 = view.getBigUint64(0, true);
  if (headerLen64 > BigInt(bytes.length - 8)) {
    fail(
      `header length ${headerLen64} exceeds the ${bytes.length - 8} bytes that follow it (truncated or not a safetensors file)`,
    );
  }
  const headerLen = Number(headerLen64);
  if (headerLen > MAX_HEADER_BYTES) fail(`header length ${headerLen} is larger than the ${MAX_HEADER_BYTES}-byte limit`);
  let headerText = '';
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen));
  } catch (cause) {
    throw new ModelFormatError(source, 'header is not valid UTF-8 (not a safetensors file?)', { cause });
  }
  if (!headerText.startsWith('{')) fail('not a safetensors file: the header does not start with "{"');
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (cause) {
    throw new ModelFormatError(source, `header is not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) return fail('header is not a JSON object');

  const dataStart = 8 + headerLen;
  const dataLength = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('__metadata__ is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const what = `tensor ${JSON.stringify(name)}`;
    if (typeof value !== 'object' || value === null) return fail(`${what}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isSafetensorsDType(dtype)) {
      return fail(`${what}: unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPES).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      return fail(`${what}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      return fail(`${what}: data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`${what}: data_offsets [${begin}, ${end}] end before they begin`);
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const need = numel * DTYPES[dtype].BYTES_PER_ELEMENT;
    if (end - begin !== need) {
      fail(`${what}: data_offsets [${begin}, ${end}] span ${end - begin} bytes but ${dtype} [${shape.join(', ')}] needs ${need}`);
    }
    if (end > dataLength) {
      fail(`${what}: data_offsets [${begin}, ${end}] out of range: the data section has ${dataLength} bytes (file truncated?)`);
    }
    entries.set(name, { name, dtype, shape: [...(shape as number[])], byteOffset: dataStart + begin, byteLength: need });
  }
  // Overlap check (zero-length tensors can sit anywhere).
  const sorted = [...entries.values()].filter((e) => e.byteLength > 0).sort((a, b) => a.byteOffset - b.byteOffset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1] as SafetensorsEntry;
    const cur = sorted[i] as SafetensorsEntry;
    if (cur.byteOffset < prev.byteOffset + prev.byteLength) {
      const span = (e: SafetensorsEntry) => `[${e.byteOffset - dataStart}, ${e.byteOffset - dataStart + e.byteLength}]`;
      fail(`tensors ${JSON.stringify(prev.name)} ${span(prev)} and ${JSON.stringify(cur.name)} ${span(cur)} overlap`);
    }
  }
  return new SafetensorsFile(bytes, source, entries, metadata);
}

/**
 * Reads and parses a safetensors file. Files over 2 GiB are read in chunks (up to Node's 4 GiB
 * buffer limit); the file name is used in every error.
 */
export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  const bytes = await readWholeFile(path);
  return parseSafetensors(bytes, path);
}

async function readWholeFile(path: string): Promise<Uint8Array> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(path, 'safetensors file');
    throw new ModelFormatError(path, `cannot open (${(cause as Error).message})`, { cause });
  }
  try {
    const { size } = await handle.stat();
    const out = Buffer.allocUnsafe(size);
    const chunk = 1 << 30;
    let pos = 0;
    while (pos < size) {
      const { bytesRead } = await handle.read(out, pos, Math.min(chunk, size - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
    }
    if (pos !== size) throw new ModelFormatError(path, `short read: got ${pos} of ${size} bytes`);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } finally {
    await handle.close();
  }
}

/** A tensor to write: `dtype` is inferred from the typed array unless given (required for F16/BF16/U16 and BOOL). */
export interface SafetensorsInput {
  dtype?: SafetensorsDType;
  shape: readonly number[];
  data: SafetensorsData;
}

function inferDType(data: SafetensorsData): SafetensorsDType | undefined {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Int16Array) return 'I16';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof BigUint64Array) return 'U64';
  if (data instanceof Uint32Array) return 'U32';
  if (data instanceof Uint8Array) return 'U8';
  return undefined; // Uint16Array: F16, BF16 or U16
}

/**
 * Serialises tensors to safetensors bytes. Tensors are laid out largest element size first, then by
 * name (as the reference writer does), and the header is padded with spaces to a multiple of 8 so
 * every tensor starts aligned to its element size.
 */
export function formatSafetensors(
  tensors: Record<string, SafetensorsInput> | ReadonlyMap<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list: [string, SafetensorsInput][] =
    tensors instanceof Map
      ? [...(tensors as ReadonlyMap<string, SafetensorsInput>).entries()]
      : Object.entries(tensors as Record<string, SafetensorsInput>);
  const items = list.map(([name, t]) => {
    if (name === '__metadata__') throw new ModelFormatError('<safetensors>', 'a tensor cannot be named __metadata__');
    const dtype = t.dtype ?? inferDType(t.data);
    if (!dtype)
      throw new ModelFormatError(
        '<safetensors>',
        `tensor ${JSON.stringify(name)}: Uint16Array data needs an explicit dtype (F16, BF16 or U16)`,
      );
    const size = DTYPES[dtype].BYTES_PER_ELEMENT;
    if (t.data.BYTES_PER_ELEMENT !== size) {
      throw new ModelFormatError(
        '<safetensors>',
        `tensor ${JSON.stringify(name)}: ${t.data.constructor.name} does not hold ${dtype} elements`,
      );
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) {
      throw new ModelFormatError(
        '<safetensors>',
        `tensor ${JSON.stringify(name)}: shape [${t.shape.join(', ')}] has ${numel} elements, data has ${t.data.length}`,
      );
    }
    return { name, dtype, size, shape: [...t.shape], data: t.data };
  });
  items.sort((a, b) => b.size - a.size || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const it of items) {
    header[it.name] = { dtype: it.dtype, shape: it.shape, data_offsets: [offset, offset + it.data.byteLength] };
    offset += it.data.byteLength;
  }
  let headerBytes = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  if (padded !== headerBytes.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(headerBytes);
    headerBytes = p;
  }
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const it of items) {
    out.set(new Uint8Array(it.data.buffer, it.data.byteOffset, it.data.byteLength), pos);
    pos += it.data.byteLength;
  }
  return out;
}

/** Writes tensors to a safetensors file (see {@link formatSafetensors}). */
export async function writeSafetensors(
  path: string,
  tensors: Record<string, SafetensorsInput> | ReadonlyMap<string, SafetensorsInput>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFile(path, formatSafetensors(tensors, metadata));
}
