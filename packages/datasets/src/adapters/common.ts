/**
 * Helpers shared by the dataset adapters: reading index files with errors that name the file and
 * line, and turning raw class names into the clean human names used in prompts.
 */
import { readFile, stat } from 'node:fs/promises';
import { DatasetFormatError, NotFoundError } from '@diffmix/core';

/**
 * Clean human class name: drops a leading numeric id (`001.` / `001_`), turns `_` into spaces and
 * collapses whitespace. `001.Black_footed_Albatross` → `Black footed Albatross`.
 */
export function cleanClassName(raw: string): string {
  return raw
    .replace(/^\s*\d+[._]\s*/, '')
    .replace(/_/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Throws `NotFoundError` unless `path` is an existing directory. */
export async function requireDirectory(path: string, what = 'folder'): Promise<void> {
  const s = await stat(path).catch(() => undefined);
  if (!s) throw new NotFoundError(path, what);
  if (!s.isDirectory()) throw new DatasetFormatError(path, `expected a ${what}, found a file`);
}

/** Reads a UTF-8 text file; a missing file is a `NotFoundError` naming it. */
export async function readTextFile(path: string, what = 'index file'): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(path, what);
    throw new DatasetFormatError(path, `cannot read ${what}: ${(cause as Error).message}`, { cause });
  }
}

/** Reads a binary file; a missing file is a `NotFoundError` naming it. */
export async function readBinaryFile(path: string, what = 'file'): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(path, what);
    throw new DatasetFormatError(path, `cannot read ${what}: ${(cause as Error).message}`, { cause });
  }
}

export interface IndexLine {
  /** 1-based line number in the file. */
  line: number;
  fields: string[];
}

/**
 * Splits a whitespace-separated index file (`images.txt`, `train_test_split.txt`, …) into lines
 * of fields, skipping blank lines. With `fields: n` every line must have exactly n fields; with
 * `minFields`, at least that many (the last field then holds the rest of the line, for names
 * with spaces such as FGVC variants).
 */
export function parseIndexFile(file: string, text: string, shape: { fields: number } | { minFields: number; restJoined: true }): IndexLine[] {
  const out: IndexLine[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim();
    if (raw === '') continue;
    const parts = raw.split(/\s+/);
    if ('fields' in shape) {
      if (parts.length !== shape.fields) {
        throw new DatasetFormatError(`${file}:${i + 1}`, `expected ${shape.fields} fields, found ${parts.length}: ${JSON.stringify(raw)}`);
      }
      out.push({ line: i + 1, fields: parts });
    } else {
      if (parts.length < shape.minFields) {
        throw new DatasetFormatError(`${file}:${i + 1}`, `expected at least ${shape.minFields} fields, found ${parts.length}: ${JSON.stringify(raw)}`);
      }
      // The first n-1 whitespace-separated fields, then the rest of the line verbatim.
      const m = new RegExp(`^((?:\\S+\\s+){${shape.minFields - 1}})(.*)$`).exec(raw) as RegExpExecArray;
      const head = (m[1] as string).trim().split(/\s+/).filter((f) => f !== '');
      const rest = m[2] as string;
      out.push({ line: i + 1, fields: [...head, rest] });
    }
  }
  return out;
}

/** Parses a decimal integer field or throws naming file and line. */
export function parseIntField(file: string, line: number, value: string, what: string): number {
  if (!/^-?\d+$/.test(value)) throw new DatasetFormatError(`${file}:${line}`, `${what} is not an integer: ${JSON.stringify(value)}`);
  return Number(value);
}

/** Checks that every class has at least one record in `train` (an empty class is a broken download). */
export function assertNoEmptyClass(file: string, classNames: string[], labels: Iterable<number>): void {
  const counts = new Array<number>(classNames.length).fill(0);
  for (const l of labels) counts[l] = (counts[l] ?? 0) + 1;
  const empty = counts.flatMap((c, i) => (c === 0 ? [classNames[i]] : []));
  if (empty.length) throw new DatasetFormatError(file, `class(es) with no images: ${empty.slice(0, 5).join(', ')}${empty.length > 5 ? ', …' : ''}`);
}
