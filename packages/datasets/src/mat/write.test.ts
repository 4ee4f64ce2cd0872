import { inflateSync } from 'node:zlib';
import { InvalidArgumentError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import { readMat } from './read.js';
import type { MatValue } from './types.js';
import { matCell, matChar, matDouble, matLogical, matNumeric, matStruct, type WriteMatOptions, writeMat } from './write.js';

const sample: Record<string, MatValue> = {
  labels: matDouble([1, 2, 3, 102, 1, 1]),
  ids: matDouble([1, 8189, 70000], [3, 1]),
  negative: matDouble([-1, -200, 5]),
  fractional: matDouble([0.5, Number.NaN, Number.POSITIVE_INFINITY, -0]),
  empty: matDouble([], [0, 0]),
  single: matNumeric('single', [1.5, -2], [2, 1]),
  i8: matNumeric('int8', [-128, 127]),
  u16: matNumeric('uint16', [65535]),
  i32: matNumeric('int32', [-5, 2 ** 31 - 1]),
  u32: matNumeric('uint32', [4294967295]),
  i64: matNumeric('int64', [-(2n ** 62n), 3n]),
  u64: matNumeric('uint64', [2n ** 64n - 1n]),
  complex: { kind: 'numeric', class: 'double', dims: [1, 2], data: Float64Array.of(1, 2), imag: Float64Array.of(0.5, -3) },
  flags: matLogical([true, false, true, true], [2, 2]),
  name: matChar('Black footed Albatross'),
  accents: matChar('pétale 中'),
  rows: matChar(['ab', 'cde', '']),
  nothing: matChar(''),
  files: matCell(
    [matChar('n02085620-Chihuahua/n02085620_5927.jpg'), matChar('n02085782-Japanese_spaniel/n02085782_1.jpg')],
    [2, 1],
  ),
  nested: matCell([matCell([matDouble([1])]), matDouble([]), matStruct([{ a: matChar('x') }])]),
  annotations: matStruct(
    [
      { bbox_x1: matDouble([39]), class: matDouble([14]), fname: matChar('00001.jpg') },
      { bbox_x1: matDouble([36]), class: matDouble([3]), fname: matChar('00002.jpg') },
    ],
    [1, 2],
  ),
  emptyStruct: matStruct([], [0, 0], ['a', 'b']),
  grid: matDouble([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]),
};

const variants: Array<[string, WriteMatOptions]> = [
  ['compressed (save -v7)', { compress: true }],
  ['uncompressed (save -v6)', { compress: false }],
  ['big-endian, compressed', { endian: 'big' }],
  ['big-endian, uncompressed', { endian: 'big', compress: false }],
  ['UTF-16 chars', { charEncoding: 'utf16' }],
  ['uint16 chars, no integer compaction', { charEncoding: 'uint16', compactIntegers: false }],
];

describe('writeMat → readMat round trip', () => {
  it.each(variants)('%s', (_label, options) => {
    const mat = readMat(writeMat(sample, options), 'roundtrip.mat');
    expect([...mat.variables.keys()]).toEqual(Object.keys(sample));
    for (const [name, value] of Object.entries(sample)) expect(mat.variables.get(name), name).toEqual(value);
    expect(mat.header.endian).toBe(options.endian ?? 'little');
  });

  it('round-trips latin-1 text stored one byte per character', () => {
    const value = matChar(['café', 'über']);
    expect(readMat(writeMat({ t: value }, { charEncoding: 'uint8', compress: false })).variables.get('t')).toEqual(value);
  });

  it('takes a Map or [name, value] pairs and keeps their order', () => {
    const pairs: Array<[string, MatValue]> = [
      ['z', matDouble([1])],
      ['a', matDouble([2])],
    ];
    expect([...readMat(writeMat(pairs)).variables.keys()]).toEqual(['z', 'a']);
    expect([...readMat(writeMat(new Map(pairs))).variables.keys()]).toEqual(['z', 'a']);
  });
});

describe('writeMat byte layout (what MATLAB writes)', () => {
  it('writes the 128-byte header with version 0x0100 and the endian indicator', () => {
    const le = writeMat({}, { headerText: 'MATLAB 5.0 MAT-file, test' });
    expect(le.length).toBe(128);
    expect(new TextDecoder().decode(le.subarray(0, 25))).toBe('MATLAB 5.0 MAT-file, test');
    expect(le[25]).toBe(0x20);
    expect([...le.subarray(116, 128)]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x01, 0x49, 0x4d]);
    const be = writeMat({}, { endian: 'big' });
    expect([...be.subarray(124, 128)]).toEqual([0x01, 0x00, 0x4d, 0x49]);
  });

  it('matches a hand-laid-out uncompressed element byte for byte, small elements included', () => {
    const bytes = writeMat({ ab: matNumeric('uint8', [7], [1, 1]) }, { compress: false });
    const hex = Buffer.from(bytes.subarray(128)).toString('hex');
    expect(hex).toBe(
      [
        '0e00000030000000',
        '0600000008000000',
        '0900000000000000',
        '0500000008000000',
        '0100000001000000',
        '0100020061620000',
        '0200010007000000',
      ].join(''),
    );
  });

  it('compresses each variable in its own miCOMPRESSED element', () => {
    const bytes = writeMat({ a: matDouble([1]), b: matDouble([2]) });
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    expect(view.getUint32(128, true)).toBe(15);
    const first = view.getUint32(132, true);
    const inflated = inflateSync(bytes.subarray(136, 136 + first));
    expect(inflated.readUInt32LE(0)).toBe(14);
    expect(view.getUint32(136 + first, true)).toBe(15);
  });

  /** The tag word of the data element of a one-letter variable in an uncompressed file. */
  function dataTag(value: MatValue, options: WriteMatOptions = {}): { type: number; small: number } {
    const bytes = writeMat({ x: value }, { ...options, compress: false });
    // header 128 + matrix tag 8 + flags 16 + dims 16 + small name 8
    const word = new DataView(bytes.buffer, bytes.byteOffset).getUint32(176, true);
    return { type: word & 0xffff, small: word >>> 16 };
  }

  it('stores integral doubles in the smallest integer type, like MATLAB', () => {
    expect(dataTag(matDouble([1, 2, 3]))).toEqual({ type: 2, small: 3 }); // miUINT8, 3 bytes packed
    expect(dataTag(matDouble([1, 8189]))).toEqual({ type: 4, small: 4 }); // miUINT16
    expect(dataTag(matDouble([70000]))).toEqual({ type: 6, small: 4 }); // miUINT32
    expect(dataTag(matDouble([-1, 100]))).toEqual({ type: 1, small: 2 }); // miINT8
    expect(dataTag(matDouble([-1, 300]))).toEqual({ type: 3, small: 4 }); // miINT16
    expect(dataTag(matDouble([-1, 70000])).type).toBe(5); // miINT32
    expect(dataTag(matDouble([0.5])).type).toBe(9); // miDOUBLE
    expect(dataTag(matDouble([2 ** 40])).type).toBe(9);
    expect(dataTag(matDouble([1, 2]), { compactIntegers: false }).type).toBe(9);
    expect(dataTag(matNumeric('int32', [1])).type).toBe(5); // integer classes keep their own type
    expect(dataTag(matChar('abc'))).toEqual({ type: 16, small: 3 }); // miUTF8
    expect(dataTag(matChar('abc'), { charEncoding: 'uint16' }).type).toBe(4);
  });

  it('gives struct field names slots of the longest name plus NUL, rounded up to 8', () => {
    const slot = (fields: string[]) => {
      const bytes = writeMat({ s: matStruct([], [0, 0], fields) }, { compress: false });
      const view = new DataView(bytes.buffer, bytes.byteOffset);
      expect(view.getUint32(176, true)).toBe((4 << 16) | 5); // small miINT32
      return view.getInt32(180, true);
    };
    expect(slot(['class', 'fname'])).toBe(8);
    expect(slot(['bbox_x1'])).toBe(8);
    expect(slot(['relative_im_path'])).toBe(24);
  });
});

describe('writeMat input checks', () => {
  it('rejects bad names, dims and values with InvalidArgumentError', () => {
    expect(() => writeMat({ '1bad': matDouble([1]) })).toThrow(InvalidArgumentError);
    expect(() => writeMat({ x: matDouble([1, 2], [3, 1]) })).toThrow('dims [3, 1] hold 3 element(s), but 2 were given');
    expect(() => writeMat({ x: matDouble([1], [1]) })).toThrow('at least two');
    expect(() => writeMat({ x: { kind: 'char', dims: [2, 2], text: ['ab', 'c'] } })).toThrow('same length');
    expect(() => writeMat({ x: matChar('中') }, { charEncoding: 'uint8' })).toThrow("does not fit charEncoding 'uint8'");
    expect(() => writeMat({ x: matStruct([{ a: matDouble([1]) }], [1, 1], ['a', 'b']) })).toThrow('element 1 has no field "b"');
    expect(() => writeMat({ x: matStruct([{ 'bad name': matDouble([1]) }]) })).toThrow('not a MATLAB identifier');
    expect(() => writeMat({ x: { kind: 'unsupported', class: 'sparse', dims: [1, 1] } })).toThrow('cannot write');
    expect(() => writeMat({}, { headerText: 'x'.repeat(117) })).toThrow('at most 116');
  });

  it('builds char matrices padded with spaces, as char() does', () => {
    expect(matChar(['a', 'abc'])).toEqual({ kind: 'char', dims: [2, 3], text: ['a  ', 'abc'] });
    expect(matChar('')).toEqual({ kind: 'char', dims: [0, 0], text: '' });
  });
});
