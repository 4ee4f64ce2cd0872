import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { MAT_V73_MESSAGE, readMat, readMatFile } from './read.js';
import type { MatValue } from './types.js';
import { matDouble, writeMat } from './write.js';

// ---- A tiny byte assembler, independent of the writer, for hand-built fixtures. ----

type Bytes = number[];

function u32(le: boolean, v: number): Bytes {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, le);
  return [...b];
}
function u16s(le: boolean, values: number[]): Bytes {
  const b = new Uint8Array(values.length * 2);
  values.forEach((v, i) => {
    new DataView(b.buffer).setUint16(i * 2, v, le);
  });
  return [...b];
}
function i16s(le: boolean, values: number[]): Bytes {
  const b = new Uint8Array(values.length * 2);
  values.forEach((v, i) => {
    new DataView(b.buffer).setInt16(i * 2, v, le);
  });
  return [...b];
}
function i32s(le: boolean, values: number[]): Bytes {
  return values.flatMap((v) => u32(le, v));
}
function ascii(s: string): Bytes {
  return [...s].map((c) => c.charCodeAt(0));
}
/** A normal-format element: 8-byte tag, data, zero padding to 8 bytes. */
function el(le: boolean, type: number, data: Bytes): Bytes {
  const pad = (8 - (data.length % 8)) % 8;
  return [...u32(le, type), ...u32(le, data.length), ...data, ...new Array<number>(pad).fill(0)];
}
/** A small-format element: count and type packed in one 32-bit word, data in the next 4 bytes. */
function small(le: boolean, type: number, data: Bytes): Bytes {
  return [...u32(le, (data.length << 16) | type), ...data, ...new Array<number>(4 - data.length).fill(0)];
}
function matrix(le: boolean, mxClass: number, dims: number[], name: string, rest: Bytes[], flagBits = 0): Bytes {
  const nameEl = name.length <= 4 ? small(le, 1, ascii(name)) : el(le, 1, ascii(name));
  return el(le, 14, [
    ...el(le, 6, [...u32(le, mxClass | (flagBits << 8)), ...u32(le, 0)]),
    ...el(le, 5, i32s(le, dims)),
    ...nameEl,
    ...rest.flat(),
  ]);
}
function header(le: boolean, text = 'MATLAB 5.0 MAT-file, hand-built fixture', version = 0x0100): Bytes {
  const h = new Array<number>(128).fill(0x20);
  ascii(text).forEach((c, i) => {
    h[i] = c;
  });
  for (let i = 116; i < 124; i++) h[i] = 0;
  const v = u16s(le, [version]);
  h[124] = v[0] as number;
  h[125] = v[1] as number;
  const ind = le ? 'IM' : 'MI';
  h[126] = ind.charCodeAt(0);
  h[127] = ind.charCodeAt(1);
  return h;
}
function file(le: boolean, ...elements: Bytes[]): Uint8Array {
  return Uint8Array.from([...header(le), ...elements.flat()]);
}
function hex(s: string): Bytes {
  return (s.replace(/\s+/g, '').match(/../g) ?? []).map((h) => Number.parseInt(h, 16));
}

function only(bytes: Uint8Array, name: string): MatValue {
  const v = readMat(bytes, 'fixture.mat').variables.get(name);
  if (!v) throw new Error(`no ${name}`);
  return v;
}

function formatError(fn: () => unknown): DatasetFormatError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetFormatError);
    return e as DatasetFormatError;
  }
  throw new Error('expected a DatasetFormatError');
}

describe('readMat: hand-built byte fixtures', () => {
  it('reads the small data element format (name and data packed into 8 bytes), little-endian', () => {
    // `ab = uint8(7)`, spelled out byte by byte as the format document lays it out.
    const body = hex(`
      0e000000 30000000
      06000000 08000000 09000000 00000000
      05000000 08000000 01000000 01000000
      01000200 61620000
      02000100 07000000`);
    const mat = readMat(Uint8Array.from([...header(true), ...body]), 'le.mat');
    expect(mat.header).toEqual({ text: 'MATLAB 5.0 MAT-file, hand-built fixture', version: 0x0100, endian: 'little' });
    expect(mat.variables.get('ab')).toEqual({ kind: 'numeric', class: 'uint8', dims: [1, 1], data: Uint8Array.of(7) });
  });

  it('reads the same variable from a big-endian file', () => {
    const body = hex(`
      0000000e 00000030
      00000006 00000008 00000009 00000000
      00000005 00000008 00000001 00000001
      00020001 61620000
      00010002 07000000`);
    const mat = readMat(Uint8Array.from([...header(false), ...body]), 'be.mat');
    expect(mat.header.endian).toBe('big');
    expect(mat.variables.get('ab')).toEqual({ kind: 'numeric', class: 'uint8', dims: [1, 1], data: Uint8Array.of(7) });
  });

  it.each([true, false])('widens storage smaller than the class (little-endian: %s)', (le) => {
    const bytes = file(
      le,
      // double stored as int16, negative values
      matrix(le, 6, [1, 3], 'd', [el(le, 3, i16s(le, [-300, 0, 300]))]),
      // int16 class stored as uint8 (small element: 2 bytes)
      matrix(le, 10, [2, 1], 'i', [small(le, 2, [1, 200])]),
      // uint64 class stored as uint16
      matrix(le, 15, [1, 2], 'u', [small(le, 4, u16s(le, [65535, 2]))]),
      // single class stored as uint8
      matrix(le, 7, [1, 1], 's', [small(le, 2, [9])]),
    );
    expect(only(bytes, 'd')).toEqual({ kind: 'numeric', class: 'double', dims: [1, 3], data: Float64Array.of(-300, 0, 300) });
    expect(only(bytes, 'i')).toEqual({ kind: 'numeric', class: 'int16', dims: [2, 1], data: Int16Array.of(1, 200) });
    expect(only(bytes, 'u')).toEqual({ kind: 'numeric', class: 'uint64', dims: [1, 2], data: BigUint64Array.of(65535n, 2n) });
    expect(only(bytes, 's')).toEqual({ kind: 'numeric', class: 'single', dims: [1, 1], data: Float32Array.of(9) });
  });

  it.each([true, false])('reads char arrays in every storage type, column-major (little-endian: %s)', (le) => {
    const bytes = file(
      le,
      matrix(le, 4, [1, 3], 'u8', [small(le, 2, ascii('abc'))]),
      // 2×2 ['ab'; 'cd'] is stored column by column: a c b d
      matrix(le, 4, [2, 2], 'u16', [el(le, 4, u16s(le, [0x61, 0x63, 0x62, 0x64]))]),
      matrix(le, 4, [1, 2], 'w', [small(le, 17, u16s(le, [0xe9, 0x4e2d]))]),
      matrix(le, 4, [0, 0], 'e', []),
      matrix(le, 4, [3, 1], 'col', [small(le, 2, ascii('xyz'))]),
    );
    expect(only(bytes, 'u8')).toEqual({ kind: 'char', dims: [1, 3], text: 'abc' });
    expect(only(bytes, 'u16')).toEqual({ kind: 'char', dims: [2, 2], text: ['ab', 'cd'] });
    expect(only(bytes, 'w')).toEqual({ kind: 'char', dims: [1, 2], text: 'é中' });
    expect(only(bytes, 'e')).toEqual({ kind: 'char', dims: [0, 0], text: '' });
    expect(only(bytes, 'col')).toEqual({ kind: 'char', dims: [3, 1], text: ['x', 'y', 'z'] });
  });

  it('reads a multi-row UTF-8 char matrix', () => {
    const le = true;
    // 2×2 ['é1'; 'x2'] stored column by column as UTF-8: é x 1 2
    const bytes = file(le, matrix(le, 4, [2, 2], 'utf8', [el(le, 16, [0xc3, 0xa9, 0x78, 0x31, 0x32])]));
    expect(only(bytes, 'utf8')).toEqual({ kind: 'char', dims: [2, 2], text: ['é1', 'x2'] });
  });

  it('reads cells (with an empty miMATRIX element for []), structs and logicals', () => {
    const le = true;
    const emptyMatrix = el(le, 14, []);
    const bytes = file(
      le,
      matrix(le, 1, [2, 1], 'c', [matrix(le, 4, [1, 2], '', [small(le, 2, ascii('hi'))]), emptyMatrix]),
      matrix(le, 2, [1, 2], 's', [
        small(le, 5, i32s(le, [8])),
        el(le, 1, [...ascii('class'), 0, 0, 0, ...ascii('fname'), 0, 0, 0]),
        matrix(le, 6, [1, 1], '', [small(le, 2, [3])]),
        matrix(le, 4, [1, 5], '', [el(le, 2, ascii('1.jpg'))]),
        matrix(le, 6, [1, 1], '', [small(le, 2, [1])]),
        matrix(le, 4, [1, 5], '', [el(le, 2, ascii('2.jpg'))]),
      ]),
      matrix(le, 9, [1, 3], 'b', [small(le, 2, [1, 0, 5])], 0x02),
    );
    expect(only(bytes, 'c')).toEqual({
      kind: 'cell',
      dims: [2, 1],
      items: [
        { kind: 'char', dims: [1, 2], text: 'hi' },
        { kind: 'numeric', class: 'double', dims: [0, 0], data: new Float64Array(0) },
      ],
    });
    const s = only(bytes, 's');
    expect(s.kind === 'struct' && s.fields).toEqual(['class', 'fname']);
    expect(s.kind === 'struct' && s.items.map((r) => [r.class, r.fname])).toEqual([
      [
        { kind: 'numeric', class: 'double', dims: [1, 1], data: Float64Array.of(3) },
        { kind: 'char', dims: [1, 5], text: '1.jpg' },
      ],
      [
        { kind: 'numeric', class: 'double', dims: [1, 1], data: Float64Array.of(1) },
        { kind: 'char', dims: [1, 5], text: '2.jpg' },
      ],
    ]);
    expect(only(bytes, 'b')).toEqual({ kind: 'logical', dims: [1, 3], data: Uint8Array.of(1, 0, 1) });
  });

  it('reads complex arrays', () => {
    const le = true;
    const bytes = file(le, matrix(le, 6, [1, 2], 'z', [small(le, 2, [1, 2]), small(le, 1, [0xff, 3])], 0x08));
    expect(only(bytes, 'z')).toEqual({
      kind: 'numeric',
      class: 'double',
      dims: [1, 2],
      data: Float64Array.of(1, 2),
      imag: Float64Array.of(-1, 3),
    });
  });

  it('keeps classes it does not decode as placeholders and still reads the rest; skips unnamed subsystem data', () => {
    const le = true;
    const sparse = matrix(le, 5, [2, 2], 'sp', [
      small(le, 5, i32s(le, [1])),
      el(le, 5, i32s(le, [0, 0, 1])),
      el(le, 9, [0, 0, 0, 0, 0, 0, 0xf0, 0x3f]),
    ]);
    const subsystem = matrix(le, 9, [1, 3], '', [small(le, 2, [1, 2, 3])]);
    const mat = readMat(file(le, sparse, matrix(le, 9, [1, 1], 'x', [small(le, 2, [4])]), subsystem), 'f.mat');
    expect([...mat.variables.keys()]).toEqual(['sp', 'x']);
    expect(mat.variables.get('sp')).toEqual({ kind: 'unsupported', class: 'sparse', dims: [2, 2] });
  });

  it('reads a variable inside a compressed element and tolerates trailing zero padding', () => {
    const le = true;
    const inner = Uint8Array.from(matrix(le, 9, [1, 1], 'x', [small(le, 2, [42])]));
    const packed = deflateSync(inner);
    const bytes = Uint8Array.from([...header(le), ...u32(le, 15), ...u32(le, packed.length), ...packed, 0, 0, 0]);
    expect(only(bytes, 'x')).toEqual({ kind: 'numeric', class: 'uint8', dims: [1, 1], data: Uint8Array.of(42) });
  });
});

describe('readMat: errors name the file and the problem', () => {
  it('rejects files that are not MAT v5', () => {
    expect(formatError(() => readMat(new TextEncoder().encode('<html>not found</html>'), '/d/setid.mat')).message).toBe(
      '/d/setid.mat: not a MAT v5 file: 22 bytes, shorter than the 128-byte MAT-file header',
    );
    const text = Uint8Array.from(new Array(200).fill(0x41));
    expect(formatError(() => readMat(text, 'a.mat')).message).toContain("no 'IM'/'MI' endian indicator");
    // A v4 file begins with a small int32 type code, so a zero among the first four bytes.
    const v4 = Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 120, 0, ...new Array(8).fill(0)]);
    expect(formatError(() => readMat(v4, 'v4.mat')).message).toContain('looks like a MAT v4 file');
    const badVersion = Uint8Array.from(header(true, 'MATLAB 5.0 MAT-file', 0x0300));
    expect(formatError(() => readMat(badVersion, 'v.mat')).message).toContain('unsupported MAT-file version 0x0300');
  });

  it('explains that MAT v7.3 (HDF5) files must be re-saved', () => {
    const v73 = new Uint8Array(1024);
    v73.set(
      header(true, 'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 .', 0x0200),
    );
    v73.set([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a], 512);
    const e = formatError(() => readMat(v73, '/data/labels.mat'));
    expect(e.file).toBe('/data/labels.mat');
    expect(e.message).toBe(`/data/labels.mat: ${MAT_V73_MESSAGE}`);
    expect(MAT_V73_MESSAGE).toBe('MAT v7.3 (HDF5) is not supported; re-save with -v7');
    const bareHdf5 = Uint8Array.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a, ...new Array(200).fill(0)]);
    expect(formatError(() => readMat(bareHdf5, 'h.mat')).message).toContain(MAT_V73_MESSAGE);
  });

  it.each([true, false])('reports a truncated file at every cut point (compressed: %s)', (compress) => {
    const bytes = writeMat({ labels: matDouble([1, 2, 3, 2.5, 1000, -7], [6, 1]) }, { compress });
    expect(readMat(bytes.subarray(0, 128), 'h.mat').variables.size).toBe(0);
    for (let cut = 129; cut < bytes.length; cut++) {
      const e = formatError(() => readMat(bytes.subarray(0, cut), '/x/imagelabels.mat'));
      expect(e.file).toBe('/x/imagelabels.mat');
      expect(e.message).toMatch(/truncated/);
    }
    for (let cut = 0; cut < 128; cut += 17)
      expect(formatError(() => readMat(bytes.subarray(0, cut), 'h.mat')).message).toContain('not a MAT v5 file');
  });

  it('reports truncation inside the inflated data, and corrupt zlib data', () => {
    const le = true;
    const whole = matrix(le, 9, [1, 3], 'x', [small(le, 2, [1, 2, 3])]);
    const packed = deflateSync(Uint8Array.from(whole.slice(0, whole.length - 12)));
    const truncatedInside = Uint8Array.from([...header(le), ...u32(le, 15), ...u32(le, packed.length), ...packed]);
    expect(formatError(() => readMat(truncatedInside, 'f.mat')).message).toMatch(
      /^f\.mat: truncated miMATRIX element at byte 0 of the data inflated from the compressed element at byte 128/,
    );
    const garbage = Uint8Array.from([...header(le), ...u32(le, 15), ...u32(le, 8), ...ascii('garbage!')]);
    expect(formatError(() => readMat(garbage, 'f.mat')).message).toMatch(
      /^f\.mat: corrupt or truncated compressed element at byte 128 \(zlib: /,
    );
  });

  it('reports data that does not match the dimensions, corrupt tags and unexpected elements', () => {
    const le = true;
    expect(formatError(() => readMat(file(le, matrix(le, 6, [1, 3], 'x', [small(le, 2, [1, 2])])), 'f.mat')).message).toBe(
      'f.mat: variable "x": a 1×3 double array holds 2 value(s), expected 3',
    );
    expect(formatError(() => readMat(file(le, matrix(le, 1, [1000, 1000], 'c', [])), 'f.mat')).message).toMatch(
      /truncated array at byte 128 \(variable "c"\): 1000000 element\(s\) declared/,
    );
    expect(formatError(() => readMat(file(le, el(le, 9, [0, 0, 0, 0, 0, 0, 0, 0])), 'f.mat')).message).toContain(
      'unexpected miDOUBLE element at byte 128',
    );
    expect(formatError(() => readMat(file(le, [...u32(le, (9 << 16) | 2), 0, 0, 0, 0]), 'f.mat')).message).toContain(
      'corrupt small data element at byte 128: claims 9 bytes',
    );
    expect(formatError(() => readMat(file(le, matrix(le, 99, [1, 1], 'q', [small(le, 2, [1])])), 'f.mat')).message).toContain(
      'unknown array class 99',
    );
  });
});

describe('readMatFile', () => {
  it('reads a file from disk and reports a missing one as NotFoundError', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'diffmix-mat-'));
    try {
      await writeFile(join(dir, 'a.mat'), writeMat({ v: matDouble([5]) }));
      const mat = await readMatFile(join(dir, 'a.mat'));
      expect(mat.file).toBe(join(dir, 'a.mat'));
      expect(mat.variables.get('v')).toEqual({ kind: 'numeric', class: 'double', dims: [1, 1], data: Float64Array.of(5) });
      await expect(readMatFile(join(dir, 'missing.mat'), 'label file')).rejects.toBeInstanceOf(NotFoundError);
      await expect(readMatFile(join(dir, 'missing.mat'), 'label file')).rejects.toThrow(
        `${join(dir, 'missing.mat')}: label file not found`,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
