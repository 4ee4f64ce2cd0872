/**
 * Turning decoded MAT values into the plain JS values adapters want (number lists, string lists,
 * struct records), with errors that say which file and which variable or field had the wrong shape.
 */
import { DatasetFormatError } from '@diffmix/core';
import { formatDims } from './read.js';
import type { MatFile, MatValue } from './types.js';

/** Where a value came from, for error messages: the file and a MATLAB-style path such as `annotations(3).class`. */
export interface MatWhere {
  file: string;
  name: string;
}

const NOWHERE: MatWhere = { file: '<MAT value>', name: 'value' };

/** A short description such as `1×3 cell`, `2×2 double`, `1×5 char`, `1×8144 struct`. */
export function describeMatValue(value: MatValue): string {
  const dims = formatDims(value.dims);
  switch (value.kind) {
    case 'numeric':
      return `${dims} ${value.class}${value.imag ? ' (complex)' : ''}`;
    case 'unsupported':
      return `${dims} ${value.class}`;
    default:
      return `${dims} ${value.kind}`;
  }
}

function numelOf(value: MatValue): number {
  return value.dims.reduce((a, b) => a * b, 1);
}

function wrongShape(where: MatWhere, expected: string, value: MatValue): never {
  throw new DatasetFormatError(where.file, `${where.name}: expected ${expected}, found ${describeMatValue(value)}`);
}

/** The variable `name` of a MAT-file; a missing one is a `DatasetFormatError` listing what the file has. */
export function matVariable(mat: MatFile, name: string): MatValue {
  const value = mat.variables.get(name);
  if (value === undefined) {
    const has = [...mat.variables.keys()];
    throw new DatasetFormatError(
      mat.file,
      `no variable ${JSON.stringify(name)} (the file has ${has.length ? has.map((n) => JSON.stringify(n)).join(', ') : 'no variables'})`,
    );
  }
  return value;
}

/**
 * All elements of a numeric or logical array as JS numbers, in MATLAB's linear (column-major) order,
 * so a 1×N or N×1 vector comes back as its N values. 64-bit integers must fit in a double exactly.
 */
export function matToNumbers(value: MatValue, where: MatWhere = NOWHERE): number[] {
  if (value.kind === 'logical') return Array.from(value.data);
  if (value.kind !== 'numeric') wrongShape(where, 'a numeric array', value);
  if (value.imag) wrongShape(where, 'a real numeric array', value);
  const data = value.data;
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    return Array.from(data, (v, i) => {
      const n = Number(v);
      if (!Number.isSafeInteger(n)) {
        throw new DatasetFormatError(where.file, `${where.name}(${i + 1}) = ${v} does not fit in a JS number exactly`);
      }
      return n;
    });
  }
  return Array.from(data);
}

/** The single number of a 1×1 numeric or logical array. */
export function matToNumber(value: MatValue, where: MatWhere = NOWHERE): number {
  if ((value.kind !== 'numeric' && value.kind !== 'logical') || numelOf(value) !== 1)
    wrongShape(where, 'a numeric scalar', value);
  return matToNumbers(value, where)[0] as number;
}

/**
 * The numbers of a numeric array that must all be integers (labels, 1-based indices); a fractional
 * or non-finite value is an error naming its 1-based position.
 */
export function matToIntegers(value: MatValue, where: MatWhere = NOWHERE): number[] {
  const numbers = matToNumbers(value, where);
  numbers.forEach((n, i) => {
    if (!Number.isSafeInteger(n)) throw new DatasetFormatError(where.file, `${where.name}(${i + 1}) = ${n} is not an integer`);
  });
  return numbers;
}

/** The text of a char array with at most one row, or of a 1×1 cell holding one. */
export function matToString(value: MatValue, where: MatWhere = NOWHERE): string {
  if (value.kind === 'char') {
    if (typeof value.text === 'string') return value.text;
    wrongShape(where, 'a single-row char array', value);
  }
  if (value.kind === 'cell' && value.items.length === 1) {
    return matToString(value.items[0] as MatValue, { file: where.file, name: `${where.name}{1}` });
  }
  return wrongShape(where, 'a char array', value);
}

/**
 * A list of strings from a cell array of char (each cell one string, column-major order; an empty
 * cell, `''` or `[]`, gives '') or from a char matrix (one string per row, with the trailing spaces
 * that pad the rows removed, as MATLAB's `cellstr` does).
 */
export function matToStrings(value: MatValue, where: MatWhere = NOWHERE): string[] {
  if (value.kind === 'char') {
    if (typeof value.text === 'string') return [value.text];
    return value.text.map((row) => row.replace(/ +$/, ''));
  }
  if (value.kind !== 'cell') wrongShape(where, 'a cell array of char or a char matrix', value);
  return value.items.map((item, i) => {
    if ((item.kind === 'numeric' || item.kind === 'cell') && numelOf(item) === 0) return '';
    return matToString(item, { file: where.file, name: `${where.name}{${i + 1}}` });
  });
}

/**
 * The records of a struct array (column-major), after checking that every field in `required`
 * exists; the error lists the fields the struct does have.
 */
export function matToRecords(
  value: MatValue,
  required: readonly string[] = [],
  where: MatWhere = NOWHERE,
): Record<string, MatValue>[] {
  if (value.kind !== 'struct') wrongShape(where, 'a struct array', value);
  const missing = required.filter((f) => !value.fields.includes(f));
  if (missing.length) {
    throw new DatasetFormatError(
      where.file,
      `${where.name}: struct has no field ${missing.map((f) => JSON.stringify(f)).join(', ')} (its fields: ${value.fields.join(', ') || 'none'})`,
    );
  }
  return value.items;
}
