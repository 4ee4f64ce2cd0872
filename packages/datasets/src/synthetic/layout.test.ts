import { randomBytes } from 'node:crypto';
import { shardOfId } from '@diffmix/core';
import { describe, expect, it } from 'vitest';
import {
  formatIndex,
  formatStrength,
  manifestFileName,
  officialClassLabel,
  parseManifestFileName,
  parseSyntheticFileName,
  shardOfIndex,
  syntheticFileName,
  syntheticIndex,
} from './layout.js';

describe('formatStrength (Python float repr)', () => {
  // Expected values are what CPython prints for repr(float(x)).
  const cases: Array<[number, string]> = [
    [0.7, '0.7'],
    [0.5, '0.5'],
    [0.3, '0.3'],
    [0.9, '0.9'],
    [1, '1.0'],
    [0, '0.0'],
    [-0, '0.0'],
    [0.25, '0.25'],
    [0.1 + 0.2, '0.30000000000000004'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [1.5e-7, '1.5e-07'],
    [123.456, '123.456'],
    [1e16, '1e+16'],
    [1234567890123456, '1234567890123456.0'],
    [1.2345e-10, '1.2345e-10'],
  ];
  it.each(cases)('%s → %s', (x, text) => {
    expect(formatStrength(x)).toBe(text);
    expect(Number(text)).toBe(x === 0 ? 0 : x);
  });
});

describe('file names', () => {
  it('pads the index like {:06d}', () => {
    expect(formatIndex(12)).toBe('000012');
    expect(formatIndex(1234567)).toBe('1234567');
  });

  it('round-trips, also with "-" in the target and an exponent in the strength', () => {
    for (const [tgt, idx, s] of [
      ['Laysan_Albatross', 12, 0.7],
      ['x-12-y', 3, 0.5],
      ['a', 281474976710655, 0.00001],
      ['Boeing_737-200', 0, 1],
    ] as Array<[string, number, number]>) {
      const name = syntheticFileName(tgt, idx, s);
      expect(parseSyntheticFileName(name)).toEqual({ targetFolder: tgt, index: idx, strength: s });
    }
    expect(syntheticFileName('Laysan_Albatross', 12, 0.7)).toBe('Laysan_Albatross-000012-0.7.png');
    expect(parseSyntheticFileName('notes.txt')).toBeUndefined();
    expect(parseSyntheticFileName('a-b.png')).toBeUndefined();
  });

  it('official labels turn "/" and "_" into spaces', () => {
    expect(officialClassLabel('Black_footed Albatross/x')).toBe('Black footed Albatross x');
  });
});

describe('index numbering', () => {
  it('is the first 48 bits of the id and maps to the same shard as the id', () => {
    expect(syntheticIndex('000000000001aaaaaaaaaaaa')).toBe(1);
    expect(syntheticIndex('ffffffffffffaaaaaaaaaaaa')).toBe(2 ** 48 - 1);
    for (let i = 0; i < 500; i++) {
      const id = randomBytes(12).toString('hex');
      const index = syntheticIndex(id);
      for (const n of [1, 2, 3, 7, 16, 100]) expect(shardOfIndex(index, n)).toBe(shardOfId(id, n));
    }
  });
});

describe('manifest file names', () => {
  it('one per shard', () => {
    expect(manifestFileName(undefined)).toBe('manifest.jsonl');
    expect(manifestFileName({ index: 0, count: 1 })).toBe('manifest.jsonl');
    expect(manifestFileName({ index: 2, count: 4 })).toBe('manifest.shard-2-of-4.jsonl');
    expect(parseManifestFileName('manifest.shard-2-of-4.jsonl')).toEqual({ index: 2, count: 4 });
    expect(parseManifestFileName('manifest.shard-4-of-4.jsonl')).toBeUndefined();
    expect(parseManifestFileName('manifest.jsonl.lock')).toBeUndefined();
    expect(() => manifestFileName({ index: 3, count: 2 })).toThrow(/shard/);
  });
});
