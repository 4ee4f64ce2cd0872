/**
 * Helpers shared by the adapters whose index files are MAT-files (Oxford Flowers 102, Stanford Cars,
 * Stanford Dogs): 1-based MATLAB indices to 0-based ones with range errors, finding a file among the
 * layouts people unpack these datasets into, and checking that every listed image exists.
 *
 * Internal to the package (not exported from its index): the adapters are the public surface.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { DatasetFormatError, NotFoundError, resolveInside } from '@diffmix/core';
import type { MatWhere } from './convert.js';

/**
 * Turns MATLAB's 1-based indices (labels, image numbers) into 0-based ones, checking each lies in
 * 1..`count`; the error names the file, the variable and the 1-based position of the bad entry,
 * e.g. `/d/imagelabels.mat: labels(17) = 103 is outside 1..102 (102 classes)`.
 */
export function zeroBased(values: readonly number[], count: number, where: MatWhere, range: string): number[] {
  return values.map((v, i) => {
    if (!Number.isInteger(v) || v < 1 || v > count) {
      throw new DatasetFormatError(where.file, `${where.name}(${i + 1}) = ${v} is outside 1..${count} (${range})`);
    }
    return v - 1;
  });
}

/** The first of `candidates` (relative to `root`) that exists as a `kind`, or undefined. */
export async function findFirst(
  root: string,
  candidates: readonly string[],
  kind: 'file' | 'directory',
): Promise<string | undefined> {
  for (const rel of candidates) {
    const full = path.join(root, rel);
    const s = await stat(full).catch(() => undefined);
    if (s && (kind === 'file' ? s.isFile() : s.isDirectory())) return full;
  }
  return undefined;
}

/** A `NotFoundError` for something looked for in several places, listing them. */
export function notFoundAnywhere(root: string, what: string, candidates: readonly string[], hint = ''): NotFoundError {
  return new NotFoundError(root, `${what} (looked for ${candidates.join(', ')}${hint ? `; ${hint}` : ''})`);
}

/** Resolves an index entry's relative path inside `dir`; an escaping path is a format error of the index file. */
export function resolveListed(dir: string, relative: string, where: MatWhere, entry: string): string {
  try {
    return resolveInside(dir, relative);
  } catch (cause) {
    throw new DatasetFormatError(where.file, `${entry} = ${JSON.stringify(relative)} is not a path inside ${dir}`, { cause });
  }
}

/** The record id of a file: its path relative to the dataset root, with '/' separators on every OS. */
export function recordId(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}

export interface ListedFile {
  path: string;
  /** Where the index lists it, for the message, e.g. `labels(17) in /d/imagelabels.mat`. */
  listedAs: () => string;
}

/**
 * Checks that every listed file exists. Instead of one `stat` per image (8,000–20,000 of them) it
 * lists each folder once and looks the names up, so the cost is one `readdir` per image folder
 * (Flowers 1, Cars 2, Dogs 120): a few milliseconds on a local disk and far fewer round trips on a
 * network file system. Throws `NotFoundError` naming the first missing file, where it is listed and
 * how many others are missing.
 */
export async function assertListedFilesExist(files: readonly ListedFile[]): Promise<void> {
  const byDir = new Map<string, ListedFile[]>();
  for (const f of files) {
    const dir = path.dirname(f.path);
    const list = byDir.get(dir);
    if (list) list.push(f);
    else byDir.set(dir, [f]);
  }
  const missing: ListedFile[] = [];
  const dirs = [...byDir.keys()];
  // A handful of listings at a time: enough to hide latency, few enough not to exhaust file handles.
  for (let i = 0; i < dirs.length; i += 16) {
    await Promise.all(
      dirs.slice(i, i + 16).map(async (dir) => {
        const names = new Set(await readdir(dir).catch(() => [] as string[]));
        for (const f of byDir.get(dir) as ListedFile[]) if (!names.has(path.basename(f.path))) missing.push(f);
      }),
    );
  }
  if (missing.length === 0) return;
  // Report the first in listing order, not in the order the folders happened to be read.
  const order = new Map(files.map((f, i) => [f, i]));
  missing.sort((a, b) => (order.get(a) as number) - (order.get(b) as number));
  const first = missing[0] as ListedFile;
  const others = missing.length - 1;
  throw new NotFoundError(
    first.path,
    `image listed as ${first.listedAs()}${others ? ` (and ${others} other listed image${others === 1 ? '' : 's'})` : ''}`,
  );
}
