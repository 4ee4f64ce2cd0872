/**
 * A restricted reader for PyTorch checkpoints written by `torch.save` (the zip format, PyTorch ≥ 1.6):
 * a zip archive holding `<name>/data.pkl` (a pickle) and one raw file per tensor storage
 * (`<name>/data/<key>`).
 *
 * Pickles can run arbitrary code, so this is NOT a general unpickler: it interprets the opcodes
 * `torch.save` emits for plain containers (dict, OrderedDict, list, tuple, str, int, float, bool,
 * None, bytes) and tensors, and it resolves only a fixed allow-list of globals
 * (`collections.OrderedDict`, `torch._utils._rebuild_tensor[_v2]`, `torch._utils._rebuild_parameter`,
 * the `torch.*Storage` type markers, `_codecs.encode`). Any other global, object construction or
 * opcode is refused with an error that says to convert the file to safetensors. Nothing is executed.
 * The legacy (pre-1.6, non-zip) format is refused the same way.
 */
import { readFile } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import { bfloat16ToFloat32, float16ToFloat32, ModelFormatError, NotFoundError } from '@diffmix/core';

// ------------------------------------------------------------------ zip

interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

function readZipDirectory(bytes: Uint8Array, source: string): Map<string, ZipEntry> {
  const fail = (problem: string): never => {
    throw new ModelFormatError(source, problem);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail('not a zip archive (no end-of-central-directory record)');
  let count = view.getUint16(eocd + 10, true);
  let cdOffset = view.getUint32(eocd + 16, true);
  if ((count === 0xffff || cdOffset === 0xffffffff) && eocd >= 20 && view.getUint32(eocd - 20, true) === 0x07064b50) {
    const z64 = Number(view.getBigUint64(eocd - 12, true));
    if (view.getUint32(z64, true) !== 0x06064b50) fail('broken zip64 end-of-central-directory record');
    count = Number(view.getBigUint64(z64 + 32, true));
    cdOffset = Number(view.getBigUint64(z64 + 48, true));
  }
  const entries = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || view.getUint32(p, true) !== 0x02014b50) fail('corrupt zip central directory');
    const method = view.getUint16(p + 10, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    let localOffset = view.getUint32(p + 42, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    // zip64 extra field: the 64-bit values of the fields saturated at 0xffffffff, in this order.
    let e = p + 46 + nameLen;
    const end = e + extraLen;
    while (e + 4 <= end) {
      const id = view.getUint16(e, true);
      const len = view.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        if (size === 0xffffffff) {
          size = Number(view.getBigUint64(q, true));
          q += 8;
        }
        if (compressedSize === 0xffffffff) {
          compressedSize = Number(view.getBigUint64(q, true));
          q += 8;
        }
        if (localOffset === 0xffffffff) localOffset = Number(view.getBigUint64(q, true));
      }
      e += 4 + len;
    }
    entries.set(name, { name, method, compressedSize, size, localOffset });
    p = end + commentLen;
  }
  return entries;
}

function readZipEntry(bytes: Uint8Array, entry: ZipEntry, source: string): Uint8Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const p = entry.localOffset;
  if (p + 30 > bytes.length || view.getUint32(p, true) !== 0x04034b50) {
    throw new ModelFormatError(source, `corrupt zip entry ${entry.name}`);
  }
  const start = p + 30 + view.getUint16(p + 26, true) + view.getUint16(p + 28, true);
  if (start + entry.compressedSize > bytes.length) throw new ModelFormatError(source, `zip entry ${entry.name} is truncated`);
  const raw = bytes.subarray(start, start + entry.compressedSize);
  if (entry.method === 0) return raw;
  if (entry.method === 8) return new Uint8Array(inflateRawSync(raw));
  throw new ModelFormatError(source, `zip entry ${entry.name} uses unsupported compression method ${entry.method}`);
}

// ------------------------------------------------------------------ values

export type TorchDType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const STORAGE_TYPES: Record<string, TorchDType> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

const ITEM_SIZE: Record<TorchDType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

class StorageType {
  constructor(readonly dtype: TorchDType) {}
}

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}

/** A tensor read from a checkpoint: a strided view of a storage. */
export class TorchTensor {
  constructor(
    readonly dtype: TorchDType,
    readonly shape: number[],
    readonly stride: number[],
    /** Element offset into the storage. */
    readonly offset: number,
    /** The storage's bytes (little-endian). */
    readonly storage: Uint8Array,
  ) {}

  get numel(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  private element(): (i: number) => number {
    const view = new DataView(this.storage.buffer, this.storage.byteOffset, this.storage.byteLength);
    switch (this.dtype) {
      case 'float32':
        return (i) => view.getFloat32(i * 4, true);
      case 'float64':
        return (i) => view.getFloat64(i * 8, true);
      case 'float16': {
        const one = new Uint16Array(1);
        return (i) => {
          one[0] = view.getUint16(i * 2, true);
          return float16ToFloat32(one)[0] as number;
        };
      }
      case 'bfloat16': {
        const one = new Uint16Array(1);
        return (i) => {
          one[0] = view.getUint16(i * 2, true);
          return bfloat16ToFloat32(one)[0] as number;
        };
      }
      case 'int64':
        return (i) => Number(view.getBigInt64(i * 8, true));
      case 'int32':
        return (i) => view.getInt32(i * 4, true);
      case 'int16':
        return (i) => view.getInt16(i * 2, true);
      case 'int8':
        return (i) => view.getInt8(i);
      default:
        return (i) => view.getUint8(i);
    }
  }

  /** The elements in C order as float32 (any stride, any dtype). */
  toFloat32(): Float32Array {
    const n = this.numel;
    const out = new Float32Array(n);
    const get = this.element();
    const rank = this.shape.length;
    const maxIndex = this.offset + this.shape.reduce((a, d, k) => a + (d - 1) * (this.stride[k] as number), 0);
    if (n > 0 && (maxIndex + 1) * ITEM_SIZE[this.dtype] > this.storage.byteLength) {
      throw new RangeError(
        `tensor view reaches element ${maxIndex} of a storage of ${this.storage.byteLength / ITEM_SIZE[this.dtype]}`,
      );
    }
    const contiguous = this.stride.every((s, k) => s === this.shape.slice(k + 1).reduce((a, b) => a * b, 1));
    if (contiguous && this.dtype === 'float32' && (this.storage.byteOffset + this.offset * 4) % 4 === 0) {
      return new Float32Array(this.storage.buffer, this.storage.byteOffset + this.offset * 4, n).slice();
    }
    const idx = new Array<number>(rank).fill(0);
    for (let i = 0; i < n; i++) {
      let pos = this.offset;
      for (let k = 0; k < rank; k++) pos += (idx[k] as number) * (this.stride[k] as number);
      out[i] = get(pos);
      for (let k = rank - 1; k >= 0; k--) {
        idx[k] = (idx[k] as number) + 1;
        if ((idx[k] as number) < (this.shape[k] as number)) break;
        idx[k] = 0;
      }
    }
    return out;
  }
}

/** What a checkpoint can contain: plain values, containers (dicts as Maps) and tensors. */
export type TorchValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | TorchTensor
  | TorchValue[]
  | Map<TorchValue, TorchValue>;

export function isTorchTensor(v: unknown): v is TorchTensor {
  return v instanceof TorchTensor;
}

// ------------------------------------------------------------------ pickle

const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_tensor',
  'torch._utils._rebuild_parameter',
  'torch._utils._rebuild_parameter_with_state',
  '_codecs.encode',
  'builtins.set',
]);

const MARK = Symbol('mark');

type Slot = TorchValue | Global | StorageType | typeof MARK;

function refuse(source: string, what: string): never {
  throw new ModelFormatError(
    source,
    `refusing to unpickle ${what}: only tensors and plain containers are read from torch checkpoints (nothing is executed); convert the file to safetensors`,
  );
}

function toShape(v: Slot, source: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number')) refuse(source, 'a tensor with a malformed size or stride');
  return v as number[];
}

/** Interprets a pickle with the allow-listed globals; `storage(key, dtype)` supplies tensor bytes. */
function unpickle(data: Uint8Array, source: string, storage: (key: string, dtype: TorchDType) => Uint8Array): TorchValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: Slot[] = [];
  const memo = new Map<number, Slot>();
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  let p = 0;
  const need = (n: number) => {
    if (p + n > data.length) throw new ModelFormatError(source, 'truncated pickle');
  };
  const u8 = () => {
    need(1);
    return data[p++] as number;
  };
  const u16 = () => {
    need(2);
    const v = view.getUint16(p, true);
    p += 2;
    return v;
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(p, true);
    p += 4;
    return v;
  };
  const bytesOf = (n: number) => {
    need(n);
    const b = data.subarray(p, p + n);
    p += n;
    return b;
  };
  const line = () => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) throw new ModelFormatError(source, 'truncated pickle');
    const s = latin1.decode(data.subarray(p, end));
    p = end + 1;
    return s;
  };
  const pop = (): Slot => {
    if (stack.length === 0) throw new ModelFormatError(source, 'malformed pickle (stack underflow)');
    return stack.pop() as Slot;
  };
  const popMark = (): Slot[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) throw new ModelFormatError(source, 'malformed pickle (no mark)');
    const items = stack.splice(i);
    items.shift();
    return items;
  };
  const top = (): Slot => {
    if (stack.length === 0) throw new ModelFormatError(source, 'malformed pickle (empty stack)');
    return stack[stack.length - 1] as Slot;
  };
  const setItems = (target: Slot, items: Slot[]) => {
    if (!(target instanceof Map)) refuse(source, 'items set on something that is not a dict');
    for (let i = 0; i + 1 < items.length; i += 2)
      (target as Map<TorchValue, TorchValue>).set(items[i] as TorchValue, items[i + 1] as TorchValue);
  };
  const makeGlobal = (module: string, name: string): Slot => {
    if (module === 'torch' && STORAGE_TYPES[name]) return new StorageType(STORAGE_TYPES[name] as TorchDType);
    if (!ALLOWED_GLOBALS.has(`${module}.${name}`)) refuse(source, `global ${module}.${name}`);
    return new Global(module, name);
  };
  const reduce = (fn: Slot, args: Slot): Slot => {
    if (!(fn instanceof Global) || !Array.isArray(args))
      return refuse(source, 'a call to something that is not an allowed global');
    const a = args as Slot[];
    switch (`${fn.module}.${fn.name}`) {
      case 'collections.OrderedDict':
        return new Map();
      case 'builtins.set':
        return [...((a[0] as TorchValue[]) ?? [])];
      case '_codecs.encode':
        return new Uint8Array([...String(a[0])].map((c) => c.charCodeAt(0) & 0xff));
      case 'torch._utils._rebuild_tensor':
      case 'torch._utils._rebuild_tensor_v2': {
        const st = a[0];
        if (!(st instanceof StoredBytes)) return refuse(source, 'a tensor without a storage');
        return new TorchTensor(st.dtype, toShape(a[2] as Slot, source), toShape(a[3] as Slot, source), Number(a[1]), st.bytes);
      }
      case 'torch._utils._rebuild_parameter':
      case 'torch._utils._rebuild_parameter_with_state':
        return a[0] as Slot;
      default:
        return refuse(source, `a call to ${fn.module}.${fn.name}`);
    }
  };
  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        bytesOf(8);
        break;
      case 0x2e: // STOP
        return pop() as TorchValue;
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x8f: // EMPTY_SET
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(popMark() as TorchValue[]);
        break;
      case 0x85: // TUPLE1
        stack.push([pop() as TorchValue]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop() as TorchValue, b as TorchValue]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop() as TorchValue, b as TorchValue, c as TorchValue]);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark() as TorchValue[]);
        break;
      case 0x64: {
        // DICT
        const m = new Map<TorchValue, TorchValue>();
        setItems(m, popMark());
        stack.push(m);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const list = top();
        if (!Array.isArray(list)) refuse(source, 'append to something that is not a list');
        (list as TorchValue[]).push(v as TorchValue);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const list = top();
        if (!Array.isArray(list)) refuse(source, 'append to something that is not a list');
        (list as TorchValue[]).push(...(items as TorchValue[]));
        break;
      }
      case 0x90: {
        // ADDITEMS (sets, kept as lists)
        const items = popMark();
        const set = top();
        if (!Array.isArray(set)) refuse(source, 'add to something that is not a set');
        (set as TorchValue[]).push(...(items as TorchValue[]));
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        need(4);
        stack.push(view.getInt32(p, true));
        p += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
      case 0x8b: {
        // LONG4
        const n = op === 0x8a ? u8() : u32();
        const b = bytesOf(n);
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i] as number);
        if (n > 0 && ((b[n - 1] as number) & 0x80) !== 0) v -= 1n << BigInt(8 * n);
        stack.push(v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(p, false));
        p += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(bytesOf(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(bytesOf(u8())));
        break;
      case 0x8d: {
        // BINUNICODE8
        need(8);
        const n = Number(view.getBigUint64(p, true));
        p += 8;
        stack.push(utf8.decode(bytesOf(n)));
        break;
      }
      case 0x54: // BINSTRING
        stack.push(latin1.decode(bytesOf(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(bytesOf(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(bytesOf(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytesOf(u8()).slice());
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) throw new ModelFormatError(source, `malformed pickle (memo ${i} unset)`);
        stack.push(memo.get(i) as Slot);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(makeGlobal(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') refuse(source, 'a computed global');
        stack.push(makeGlobal(module as string, name as string));
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', StorageType, key, location, numel)
        const pid = pop();
        if (!Array.isArray(pid) || pid[0] !== 'storage' || !(pid[1] instanceof StorageType) || typeof pid[2] !== 'string') {
          refuse(source, 'an unknown persistent object');
        }
        const [, type, key] = pid as unknown as [string, StorageType, string];
        stack.push(new StoredBytes(type.dtype, storage(key, type.dtype)) as unknown as Slot);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        stack.push(reduce(pop(), args));
        break;
      }
      case 0x62: // BUILD: attribute state on an OrderedDict / tensor (e.g. state_dict `_metadata`) is dropped
        pop();
        break;
      default:
        refuse(source, `pickle opcode 0x${op.toString(16)}${op >= 0x20 && op < 0x7f ? ` ('${String.fromCharCode(op)}')` : ''}`);
    }
  }
}

class StoredBytes {
  constructor(
    readonly dtype: TorchDType,
    readonly bytes: Uint8Array,
  ) {}
}

/** Parses `torch.save` bytes (zip format) without executing anything. */
export function parseTorchCheckpoint(bytes: Uint8Array, source = '<torch>'): TorchValue {
  if (bytes.length >= 2 && bytes[0] === 0x80 && (bytes[1] as number) <= 5) {
    throw new ModelFormatError(
      source,
      'legacy (pre-PyTorch-1.6, non-zip) checkpoint: not supported; convert the file to safetensors',
    );
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b)
    throw new ModelFormatError(source, 'not a PyTorch checkpoint (not a zip archive)');
  const entries = readZipDirectory(bytes, source);
  const pkl = [...entries.keys()].find((n) => n === 'data.pkl' || n.endsWith('/data.pkl'));
  if (pkl === undefined) throw new ModelFormatError(source, 'zip archive without data.pkl: not a torch.save checkpoint');
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order) {
    const text = new TextDecoder().decode(readZipEntry(bytes, order, source)).trim();
    if (text !== 'little') throw new ModelFormatError(source, `byte order ${text} is not supported`);
  }
  const cache = new Map<string, Uint8Array>();
  const storage = (key: string, dtype: TorchDType): Uint8Array => {
    const hit = cache.get(key);
    if (hit) return hit;
    const entry = entries.get(`${prefix}data/${key}`);
    if (!entry) throw new ModelFormatError(source, `tensor storage data/${key} is missing from the archive`);
    let data = readZipEntry(bytes, entry, source);
    // Uint8Array.from copies (a Node Buffer slice() would be a view with the same misalignment).
    if (data.byteOffset % ITEM_SIZE[dtype] !== 0) data = Uint8Array.from(data);
    cache.set(key, data);
    return data;
  };
  return unpickle(readZipEntry(bytes, entries.get(pkl) as ZipEntry, source), source, storage);
}

/** Reads a `torch.save` checkpoint file (`.bin`, `.pt`, `.pth`) with the restricted reader. */
export async function readTorchCheckpoint(path: string): Promise<TorchValue> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(path, 'torch checkpoint');
    throw new ModelFormatError(path, `cannot read (${(cause as Error).message})`, { cause });
  }
  return parseTorchCheckpoint(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), path);
}
