/**
 * Parquet image-classification sets in the Hugging Face layout: one row per image, an `image`
 * column that is a struct `{ bytes: binary, path: string }` (the `datasets.Image` feature) or plain
 * binary, an integer `label` column (`datasets.ClassLabel`) and sometimes a caption column
 * (`text` / `description` / `caption`).
 *
 * Class names come from `options.classNames`, else from the file's key-value metadata `huggingface`
 * (`{"info": {"features": {"<label column>": {"_type": "ClassLabel", "names": [...]}}}}`), else,
 * for a string label column, the sorted distinct train labels.
 *
 * Files: `root` is one `.parquet` file (the train split), or a folder holding split shards named
 * like the Hub's `data/train-00000-of-00002.parquet` (also `train.parquet`, `train/0000.parquet`),
 * looked for in `root` and then `root/data`. `options.train` / `options.test` name files explicitly.
 *
 * Memory: every image's encoded bytes end up in memory (records are `BytesRecord`s); rows are
 * decoded one row group at a time and only the needed columns are read, so the transient overhead
 * is one row group's decoded rows. Byte arrays are views into hyparquet's page buffers (not copied).
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  type BytesRecord,
  type ClassInfo,
  type Dataset,
  DatasetFormatError,
  InvalidArgumentError,
  type Metaclass,
  NotFoundError,
} from '@diffmix/core';
import { asyncBufferFromFile, type FileMetaData, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { cleanClassName } from '../common.js';
import { compareCodePoints } from '../imagefolder/index.js';

export interface ParquetOptions {
  /** Train file(s), resolved against `root` (or its folder when `root` is a file). */
  train?: string | readonly string[];
  /** Test file(s), resolved like `train`. */
  test?: string | readonly string[];
  /** Shard name prefix of the train split when discovering files. Default 'train'. */
  trainSplit?: string;
  /** Shard name prefix of the test split when discovering files. Default 'test'. */
  testSplit?: string;
  /** Default 'image'. */
  imageColumn?: string;
  /** Default 'label'. */
  labelColumn?: string;
  /** Caption column; default the first of 'text', 'description', 'caption' present; `null` for none. */
  captionColumn?: string | null;
  /** Class names by label id (overrides the file metadata). */
  classNames?: readonly string[];
  /** Default: base name of `root` without `.parquet`. */
  name?: string;
  /** Default 'object'. */
  metaclass?: Metaclass;
}

const CAPTION_COLUMNS = ['text', 'description', 'caption'];

interface RawRow {
  id: string;
  where: string;
  label: number | string;
  bytes: Uint8Array;
  caption?: string;
}

interface FileRead {
  file: string;
  rows: RawRow[];
  /** ClassLabel names from the `huggingface` metadata, if any. */
  names?: string[];
}

async function statOrUndefined(p: string) {
  return stat(p).catch(() => undefined);
}

function asList(v: string | readonly string[] | undefined): string[] | undefined {
  return v === undefined ? undefined : typeof v === 'string' ? [v] : [...v];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Checks `name-00003-of-00008.parquet` shard sets are complete. */
function assertCompleteShards(dir: string, files: string[]): void {
  const re = /-(\d+)-of-(\d+)\.parquet$/;
  const byTotal = new Map<number, Set<number>>();
  for (const f of files) {
    const m = re.exec(path.basename(f));
    if (!m) continue;
    const total = Number(m[2]);
    const set = byTotal.get(total) ?? new Set<number>();
    set.add(Number(m[1]));
    byTotal.set(total, set);
  }
  for (const [total, have] of byTotal) {
    for (let i = 0; i < total; i++) {
      if (!have.has(i))
        throw new DatasetFormatError(
          dir,
          `shard ${i} of ${total} is missing (have ${[...have].sort((a, b) => a - b).join(', ')})`,
        );
    }
  }
}

/** Shards of `split` in `dir`: `<split>.parquet`, `<split>-*.parquet`, `<split>_*.parquet` or `<split>/*.parquet`. */
async function findShards(dir: string, split: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const re = new RegExp(`^${escapeRegExp(split)}(?:[-_.].*)?\\.parquet$`);
  let files = entries.filter((e) => e.isFile() && re.test(e.name)).map((e) => path.join(dir, e.name));
  if (files.length === 0) {
    const sub = path.join(dir, split);
    if ((await statOrUndefined(sub))?.isDirectory()) {
      const subEntries = await readdir(sub, { withFileTypes: true });
      files = subEntries.filter((e) => e.isFile() && e.name.endsWith('.parquet')).map((e) => path.join(sub, e.name));
    }
  }
  files.sort((a, b) => compareCodePoints(a, b));
  assertCompleteShards(dir, files);
  return files;
}

function hfClassNames(metadata: FileMetaData, labelColumn: string, file: string): string[] | undefined {
  const kv = metadata.key_value_metadata?.find((e) => e.key === 'huggingface');
  if (!kv?.value) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(kv.value);
  } catch (cause) {
    throw new DatasetFormatError(file, `key-value metadata "huggingface" is not JSON`, { cause });
  }
  const feature = (parsed as { info?: { features?: Record<string, unknown> } })?.info?.features?.[labelColumn] as
    | { _type?: string; names?: unknown }
    | undefined;
  if (!feature || !Array.isArray(feature.names)) return undefined;
  if (!feature.names.every((n) => typeof n === 'string')) {
    throw new DatasetFormatError(file, `huggingface metadata: ${labelColumn}.names must be strings`);
  }
  return feature.names as string[];
}

function toBytes(value: unknown, where: string, column: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (value && typeof value === 'object') {
    const v = value as { bytes?: unknown; path?: unknown };
    if (v.bytes instanceof Uint8Array) return v.bytes;
    if (typeof v.path === 'string' && (v.bytes === null || v.bytes === undefined)) {
      throw new DatasetFormatError(
        where,
        `${column} holds only a path (${JSON.stringify(v.path)}), no embedded bytes; not supported`,
      );
    }
  }
  if (value === null || value === undefined) throw new DatasetFormatError(where, `${column} is null`);
  throw new DatasetFormatError(where, `${column} is not binary or a {bytes, path} struct`);
}

function toLabel(value: unknown, where: string, column: string): number | string {
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new DatasetFormatError(where, `${column} ${value} is out of range`);
    }
    return Number(value);
  }
  if (typeof value === 'number' && Number.isInteger(value)) return value;
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  throw new DatasetFormatError(where, `${column} is not an integer or a string: ${String(value)}`);
}

async function readParquetFile(
  file: string,
  idBase: string,
  cols: { image: string; label: string; caption: string | null | undefined },
): Promise<FileRead> {
  let metadata: FileMetaData;
  let buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(file, 'parquet file');
    throw new DatasetFormatError(file, `not a readable parquet file: ${(cause as Error).message}`, { cause });
  }
  const columnNames = parquetSchema(metadata).children.map((c) => c.element.name);
  for (const c of [cols.image, cols.label]) {
    if (!columnNames.includes(c))
      throw new DatasetFormatError(file, `no column ${JSON.stringify(c)} (columns: ${columnNames.join(', ')})`);
  }
  let caption: string | undefined;
  if (cols.caption === undefined) caption = CAPTION_COLUMNS.find((c) => columnNames.includes(c));
  else if (cols.caption !== null) {
    if (!columnNames.includes(cols.caption)) {
      throw new DatasetFormatError(
        file,
        `no caption column ${JSON.stringify(cols.caption)} (columns: ${columnNames.join(', ')})`,
      );
    }
    caption = cols.caption;
  }
  const columns = [cols.image, cols.label, ...(caption ? [caption] : [])];
  const decoder = new TextDecoder();
  const rows: RawRow[] = [];
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    if (rowEnd === rowStart) continue;
    let objects: Record<string, unknown>[];
    try {
      objects = await parquetReadObjects({ file: buffer, metadata, columns, rowStart, rowEnd, compressors, utf8: false });
    } catch (cause) {
      throw new DatasetFormatError(file, `cannot decode rows ${rowStart}..${rowEnd - 1}: ${(cause as Error).message}`, { cause });
    }
    objects.forEach((o, k) => {
      const index = rowStart + k;
      const where = `${file}:row ${index}`;
      const row: RawRow = {
        id: `${idBase}#${index}`,
        where,
        label: toLabel(o[cols.label], where, `column ${cols.label}`),
        bytes: toBytes(o[cols.image], where, `column ${cols.image}`),
      };
      if (caption) {
        const c = o[caption];
        if (typeof c === 'string') row.caption = c;
        else if (c instanceof Uint8Array) row.caption = decoder.decode(c);
      }
      rows.push(row);
    });
    rowStart = rowEnd;
  }
  const names = hfClassNames(metadata, cols.label, file);
  return names ? { file, rows, names } : { file, rows };
}

function sameNames(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Loads a parquet image-classification set (see the module comment). */
export async function loadParquet(root: string, options: ParquetOptions = {}): Promise<Dataset> {
  const rootStat = await statOrUndefined(root);
  if (!rootStat) throw new NotFoundError(root, 'parquet file or folder');
  const baseDir = rootStat.isDirectory() ? root : path.dirname(root);
  const cols = { image: options.imageColumn ?? 'image', label: options.labelColumn ?? 'label', caption: options.captionColumn };

  let trainFiles = asList(options.train)?.map((f) => path.resolve(baseDir, f));
  let testFiles = asList(options.test)?.map((f) => path.resolve(baseDir, f));
  if (!trainFiles) {
    if (!rootStat.isDirectory()) trainFiles = [root];
    else {
      const trainSplit = options.trainSplit ?? 'train';
      const testSplit = options.testSplit ?? 'test';
      for (const dir of [root, path.join(root, 'data')]) {
        const found = await findShards(dir, trainSplit);
        if (found.length > 0) {
          trainFiles = found;
          testFiles ??= await findShards(dir, testSplit);
          break;
        }
      }
      if (!trainFiles)
        throw new NotFoundError(
          path.join(root, `${trainSplit}-*.parquet`),
          `parquet shards of split ${JSON.stringify(trainSplit)}`,
        );
    }
  }
  if (trainFiles.length === 0) throw new InvalidArgumentError('options.train', 'names no file');

  const idBase = (f: string) => {
    const rel = path.relative(baseDir, f);
    return rel.startsWith('..') || path.isAbsolute(rel) ? path.basename(f) : rel.split(path.sep).join('/');
  };
  const trainReads: FileRead[] = [];
  for (const f of trainFiles) trainReads.push(await readParquetFile(f, idBase(f), cols));
  const testReads: FileRead[] = [];
  for (const f of testFiles ?? []) testReads.push(await readParquetFile(f, idBase(f), cols));

  // Class names.
  let rawNames: string[] | undefined = options.classNames ? [...options.classNames] : undefined;
  if (!rawNames) {
    for (const r of [...trainReads, ...testReads]) {
      if (!r.names) continue;
      if (!rawNames) rawNames = r.names;
      else if (!sameNames(rawNames, r.names)) {
        throw new DatasetFormatError(
          r.file,
          `ClassLabel names differ from those of ${(trainReads.find((t) => t.names) ?? r).file}`,
        );
      }
    }
  }
  const allTrainRows = trainReads.flatMap((r) => r.rows);
  if (!rawNames && allTrainRows.some((r) => typeof r.label === 'string')) {
    rawNames = [...new Set(allTrainRows.map((r) => String(r.label)))].sort(compareCodePoints);
  }
  if (!rawNames) {
    throw new DatasetFormatError(
      trainFiles[0] as string,
      `no class names: column ${JSON.stringify(cols.label)} has no ClassLabel names in the "huggingface" metadata; pass options.classNames`,
    );
  }
  if (rawNames.length === 0) throw new InvalidArgumentError('options.classNames', 'must not be empty');
  const nameIndex = new Map(rawNames.map((n, i) => [n, i]));
  const classes: ClassInfo[] = rawNames.map((raw, id) => {
    const name = cleanClassName(raw);
    return name === raw ? { id, name } : { id, name, rawName: raw };
  });

  const toRecords = (rows: RawRow[]): BytesRecord[] =>
    rows.map((r) => {
      let label: number;
      if (typeof r.label === 'string') {
        const i = nameIndex.get(r.label);
        if (i === undefined) throw new DatasetFormatError(r.where, `label ${JSON.stringify(r.label)} is not a known class name`);
        label = i;
      } else {
        if (r.label < 0 || r.label >= classes.length) {
          throw new DatasetFormatError(
            r.where,
            `label ${r.label} out of range 0..${classes.length - 1}${r.label === -1 ? ' (-1: unlabelled row)' : ''}`,
          );
        }
        label = r.label;
      }
      const rec: BytesRecord = { id: r.id, label, bytes: r.bytes };
      if (r.caption !== undefined) rec.caption = r.caption;
      return rec;
    });

  const train = toRecords(allTrainRows);
  const test = toRecords(testReads.flatMap((r) => r.rows));
  if (train.length === 0) throw new DatasetFormatError(trainFiles[0] as string, 'no rows');
  return {
    name: options.name ?? path.basename(root).replace(/\.parquet$/, ''),
    metaclass: options.metaclass ?? 'object',
    classes,
    train,
    test,
    root,
  };
}
