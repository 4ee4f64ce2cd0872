import { DatasetFormatError } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import {
  describeMatValue,
  matToIntegers,
  matToNumber,
  matToNumbers,
  matToRecords,
  matToString,
  matToStrings,
  matVariable,
} from './convert.js';
import { readMat } from './read.js';
import { matCell, matChar, matDouble, matLogical, matNumeric, matStruct, writeMat } from './write.js';

const at = { file: '/d/list.mat', name: 'labels' };

describe('MAT value helpers', () => {
  it('finds variables and lists the ones present when one is missing', () => {
    const mat = readMat(writeMat({ trnid: matDouble([1]), tstid: matDouble([2]) }), '/d/setid.mat');
    expect(matVariable(mat, 'trnid')).toEqual(matDouble([1]));
    expect(() => matVariable(mat, 'valid')).toThrow(
      new DatasetFormatError('/d/setid.mat', 'no variable "valid" (the file has "trnid", "tstid")'),
    );
  });

  it('describes values for messages', () => {
    expect(describeMatValue(matDouble([1, 2], [2, 1]))).toBe('2×1 double');
    expect(describeMatValue(matChar('abc'))).toBe('1×3 char');
    expect(describeMatValue(matCell([]))).toBe('1×0 cell');
    expect(describeMatValue({ kind: 'unsupported', class: 'sparse', dims: [3, 3] })).toBe('3×3 sparse');
  });

  it('turns numeric and logical arrays into numbers, column-major', () => {
    expect(matToNumbers(matDouble([1, 2, 3, 4], [2, 2]))).toEqual([1, 2, 3, 4]);
    expect(matToNumbers(matLogical([true, false]))).toEqual([1, 0]);
    expect(matToNumbers(matNumeric('int64', [5n, -2n]))).toEqual([5, -2]);
    expect(() => matToNumbers(matNumeric('uint64', [2n ** 60n]), at)).toThrow('labels(1) = 1152921504606846976 does not fit');
    expect(() => matToNumbers(matChar('abc'), at)).toThrow(
      new DatasetFormatError('/d/list.mat', 'labels: expected a numeric array, found 1×3 char'),
    );
    expect(() =>
      matToNumbers({ kind: 'numeric', class: 'double', dims: [1, 1], data: Float64Array.of(1), imag: Float64Array.of(1) }, at),
    ).toThrow('expected a real numeric array, found 1×1 double (complex)');
  });

  it('reads scalars and integer lists', () => {
    expect(matToNumber(matDouble([7]))).toBe(7);
    expect(() => matToNumber(matDouble([1, 2]), at)).toThrow('labels: expected a numeric scalar, found 1×2 double');
    expect(matToIntegers(matDouble([1, 2]))).toEqual([1, 2]);
    expect(() => matToIntegers(matDouble([1, 2.5]), at)).toThrow(
      new DatasetFormatError('/d/list.mat', 'labels(2) = 2.5 is not an integer'),
    );
    expect(() => matToIntegers(matDouble([Number.NaN]), at)).toThrow('labels(1) = NaN is not an integer');
  });

  it('reads strings from char arrays and cells of char', () => {
    expect(matToString(matChar('Chihuahua'))).toBe('Chihuahua');
    expect(matToString(matCell([matChar('x')]))).toBe('x');
    expect(() => matToString(matChar(['ab', 'cd']), at)).toThrow('expected a single-row char array, found 2×2 char');
    expect(matToStrings(matCell([matChar('a/b.jpg'), matChar(''), matDouble([], [0, 0]), matChar('c.jpg')], [4, 1]))).toEqual([
      'a/b.jpg',
      '',
      '',
      'c.jpg',
    ]);
    // Rows of a char matrix lose the space padding, as MATLAB's cellstr does.
    expect(matToStrings(matChar(['ab', 'cde']))).toEqual(['ab', 'cde']);
    expect(matToStrings(matChar('one row '))).toEqual(['one row ']);
    expect(() => matToStrings(matCell([matChar('a'), matDouble([3])]), at)).toThrow(
      'labels{2}: expected a char array, found 1×1 double',
    );
    expect(() => matToStrings(matDouble([1]), at)).toThrow('expected a cell array of char or a char matrix');
  });

  it('returns struct records after checking the required fields', () => {
    const s = matStruct([{ class: matDouble([1]), fname: matChar('1.jpg') }]);
    expect(matToRecords(s, ['class', 'fname'])).toHaveLength(1);
    expect(() => matToRecords(s, ['class', 'relative_im_path'], { file: '/d/a.mat', name: 'annotations' })).toThrow(
      new DatasetFormatError('/d/a.mat', 'annotations: struct has no field "relative_im_path" (its fields: class, fname)'),
    );
    expect(() => matToRecords(matCell([]), [], at)).toThrow('expected a struct array, found 1×0 cell');
  });
});
