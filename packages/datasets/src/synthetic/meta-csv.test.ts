import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatMetaCsv, parseCsv, parseMetaCsv, readMetaCsv, writeMetaCsv } from './meta-csv.js';
import type { MetaCsvRow } from './meta-csv.js';
import { listFiles, tempDir } from './test-support.js';

// Shaped exactly like pandas' `df.to_csv(path, index=False)` output in scripts/sample_mp.py.
const OFFICIAL = `First Directory,Second Directory,Number,Strength,Path
Black footed Albatross,Laysan Albatross,0,0.7,Black_footed_Albatross/Laysan_Albatross-000000-0.7.png
Laysan Albatross,Laysan Albatross,17,1.0,Laysan_Albatross/Laysan_Albatross-000017-1.png
"Comma, Bird","Quote ""Bird""",123456,0.3,"Comma,_Bird/Quote_""Bird""-123456-0.3.png"
`;

describe('parseCsv', () => {
  it('handles quotes, doubled quotes, embedded newlines, CRLF, BOM and blank lines', () => {
    const text = '\ufeffa,b\r\n"x,1","he said ""hi"""\r\n\r\n"multi\nline",z\n';
    expect(parseCsv(text)).toEqual([
      { fields: ['a', 'b'], line: 1 },
      { fields: ['x,1', 'he said "hi"'], line: 2 },
      { fields: ['multi\nline', 'z'], line: 4 },
    ]);
    expect(parseCsv('a,b')).toEqual([{ fields: ['a', 'b'], line: 1 }]);
    expect(parseCsv('a,\n,b\n')).toEqual([
      { fields: ['a', ''], line: 1 },
      { fields: ['', 'b'], line: 2 },
    ]);
  });

  it('names the line of an unterminated quote', () => {
    expect(() => parseCsv('a,b\n"open,x\n', 'f.csv')).toThrow(/f\.csv:2: unterminated/);
  });
});

describe('meta.csv', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ dir, cleanup } = await tempDir()));
  afterEach(() => cleanup());

  it('reads an official meta.csv', () => {
    const rows = parseMetaCsv(OFFICIAL, 'meta.csv');
    expect(rows).toEqual([
      {
        firstDirectory: 'Black footed Albatross',
        secondDirectory: 'Laysan Albatross',
        number: 0,
        strength: 0.7,
        path: 'Black_footed_Albatross/Laysan_Albatross-000000-0.7.png',
        line: 2,
      },
      {
        firstDirectory: 'Laysan Albatross',
        secondDirectory: 'Laysan Albatross',
        number: 17,
        strength: 1,
        path: 'Laysan_Albatross/Laysan_Albatross-000017-1.png',
        line: 3,
      },
      {
        firstDirectory: 'Comma, Bird',
        secondDirectory: 'Quote "Bird"',
        number: 123456,
        strength: 0.3,
        path: 'Comma,_Bird/Quote_"Bird"-123456-0.3.png',
        line: 4,
      },
    ]);
  });

  it('writes byte-for-byte what pandas writes, and reads it back', async () => {
    const rows = parseMetaCsv(OFFICIAL).map(({ line: _line, ...r }) => r);
    expect(formatMetaCsv(rows)).toBe(OFFICIAL);
    const file = path.join(dir, 'meta.csv');
    const hostile: MetaCsvRow[] = [
      ...rows,
      {
        firstDirectory: 'new\nline',
        secondDirectory: 'cr\rname',
        number: 5,
        strength: 0.00001,
        path: 'new_line/cr_name-000005-1e-05.png',
      },
    ];
    await writeMetaCsv(file, hostile);
    expect((await readMetaCsv(file)).map(({ line: _line, ...r }) => r)).toEqual(hostile);
    expect(await readFile(file, 'utf8')).toContain('"new\nline","cr\rname",5,1e-05,');
    expect(await listFiles(dir)).toEqual(['meta.csv']); // the temp file was renamed away
  });

  it('accepts extra columns in any order (e.g. a pandas index column)', () => {
    const text = ',Path,Strength,Number,Second Directory,First Directory,clip\n0,a/b-000001-0.5.png,0.5,1,b,a,0.9\n';
    expect(parseMetaCsv(text)).toEqual([
      { firstDirectory: 'a', secondDirectory: 'b', number: 1, strength: 0.5, path: 'a/b-000001-0.5.png', line: 2 },
    ]);
  });

  it('errors name file:line', async () => {
    expect(() => parseMetaCsv('First Directory,Path\n', 'm.csv')).toThrow(/m\.csv:1: missing column/);
    const bad = `${OFFICIAL}a,b,x,0.5,a/b.png\n`;
    expect(() => parseMetaCsv(bad, 'm.csv')).toThrow(/m\.csv:5: Number/);
    expect(() => parseMetaCsv(`${OFFICIAL}a,b,1,1.5,a/b.png\n`, 'm.csv')).toThrow(/m\.csv:5: Strength/);
    expect(() => parseMetaCsv(`${OFFICIAL}a,b,1\n`, 'm.csv')).toThrow(DatasetFormatError);
    await writeFile(path.join(dir, 'x.csv'), '');
    await expect(readMetaCsv(path.join(dir, 'x.csv'))).rejects.toThrow(/empty/);
    await expect(readMetaCsv(path.join(dir, 'missing.csv'))).rejects.toBeInstanceOf(NotFoundError);
  });
});
