/**
 * `readSyntheticSet`: the records of a synthetic set with their soft labels, from our manifests
 * when present, else from an official Diff-Mix `meta.csv`.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import {
  AnnotationConfigSchema,
  DatasetFormatError,
  InvalidArgumentError,
  NotFoundError,
  annotate,
  resolveInside,
  silentLogger,
} from '@diffmix/core';
import type { ClassInfo, Logger, SoftLabel } from '@diffmix/core';
import { normaliseClasses } from './classes.js';
import type { ClassList } from './classes.js';
import { DATA_DIR, META_CSV_FILE, officialClassLabel, officialLabelFromFolder, parseSyntheticFileName } from './layout.js';
import { readAllManifests } from './manifest-io.js';
import type { DuplicateReport } from './manifest-io.js';
import { readMetaCsv } from './meta-csv.js';

export interface SyntheticRecord {
  /** Job id (manifest), or `data/<Path>` for official sets, which have no job ids. */
  id: string;
  /** Absolute path of the image. */
  path: string;
  label: SoftLabel;
  sourceClass: number;
  targetClass: number;
  strength: number;
  clipScore?: number;
}

export interface SyntheticSet {
  root: string;
  /** Where the records came from. */
  format: 'manifest' | 'meta-csv';
  records: SyntheticRecord[];
  classes: ClassInfo[];
  /** Job ids (or paths, for meta.csv) that appeared more than once; one record was kept for each. */
  duplicates: string[];
}

export interface ReadSyntheticSetOptions {
  /**
   * The dataset's classes. Required for an official set (to map "First/Second Directory" back to
   * ids); for a manifest set it is returned as `classes` (default: rebuilt from the names in the lines).
   */
  classes?: ClassList;
  /** γ of the Diff-Mix label for meta.csv sets (and `relabel`); default 0.8 (core's AnnotationConfig). */
  gamma?: number;
  /** Scaler c; default 1 (the official `soft_scaler` default). */
  scaler?: number;
  /** Recompute manifest labels from strength with `gamma`/`scaler` instead of using the stored ones. */
  relabel?: boolean;
  /** Which source to read: manifests if any exist (default), or force one. */
  source?: 'auto' | 'manifest' | 'meta-csv';
  /** CSV file name for official sets, e.g. `remained_meta.csv` for CLIP-filtered sets. */
  metaCsv?: string;
  logger?: Logger;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

function byPath<T extends { path: string; id: string }>(a: T, b: T): number {
  return a.path < b.path ? -1 : a.path > b.path ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export async function readSyntheticSet(root: string, options: ReadSyntheticSetOptions = {}): Promise<SyntheticSet> {
  const absRoot = path.resolve(root);
  const logger = options.logger ?? silentLogger;
  const annotation = AnnotationConfigSchema.parse({ gamma: options.gamma, scaler: options.scaler });
  const source = options.source ?? 'auto';
  if (source !== 'meta-csv') {
    const manifests = await readAllManifests(absRoot);
    if (manifests.files.length > 0) return fromManifests(absRoot, manifests, options, annotation, logger);
    if (source === 'manifest') throw new NotFoundError(path.join(absRoot, 'manifest.jsonl'), 'synthetic-set manifest');
  }
  const csv = path.join(absRoot, options.metaCsv ?? META_CSV_FILE);
  if (!(await exists(csv))) {
    throw new NotFoundError(absRoot, `synthetic set (no manifest.jsonl and no ${options.metaCsv ?? META_CSV_FILE})`);
  }
  return fromMetaCsv(absRoot, csv, options, annotation, logger);
}

function fromManifests(
  root: string,
  manifests: Awaited<ReturnType<typeof readAllManifests>>,
  options: ReadSyntheticSetOptions,
  annotation: { gamma: number; scaler: number },
  logger: Logger,
): SyntheticSet {
  for (const t of manifests.tornTails) {
    logger.warn('skipping a torn final manifest line (crash while appending?)', {
      file: t.file,
      line: t.lineNo,
      reason: t.reason,
    });
  }
  reportDuplicates(manifests.duplicates, logger);
  const records: SyntheticRecord[] = [];
  const names = new Map<number, string>();
  for (const { line, file, lineNo } of manifests.kept) {
    let abs: string;
    try {
      abs = resolveInside(root, line.path);
    } catch (cause) {
      throw new DatasetFormatError(`${file}:${lineNo}`, `path ${JSON.stringify(line.path)} leaves the set`, { cause });
    }
    const label = options.relabel
      ? annotate({ strength: line.strength, ...annotation, sourceClass: line.sourceClass, targetClass: line.targetClass })
      : line.label;
    const rec: SyntheticRecord = {
      id: line.id,
      path: abs,
      label,
      sourceClass: line.sourceClass,
      targetClass: line.targetClass,
      strength: line.strength,
    };
    if (line.clipScore !== undefined) rec.clipScore = line.clipScore;
    records.push(rec);
    const parts = line.path.split('/');
    if (!names.has(line.sourceClass)) {
      const n = line.sourceClassName ?? (parts.length === 3 ? officialLabelFromFolder(parts[1] as string) : undefined);
      if (n !== undefined) names.set(line.sourceClass, n);
    }
    if (!names.has(line.targetClass)) {
      const parsed = parseSyntheticFileName(parts[parts.length - 1] as string);
      const n = line.targetClassName ?? (parsed ? officialLabelFromFolder(parsed.targetFolder) : undefined);
      if (n !== undefined) names.set(line.targetClass, n);
    }
    for (const [c] of line.label) if (!names.has(c)) names.set(c, `class ${c}`);
  }
  let classes: ClassInfo[];
  if (options.classes) {
    classes = normaliseClasses(options.classes);
    const known = new Set(classes.map((c) => c.id));
    for (const r of records) {
      for (const [c] of r.label) {
        if (!known.has(c)) throw new DatasetFormatError(r.path, `label uses class ${c}, which is not in the given classes`);
      }
    }
  } else {
    classes = [...names.entries()].sort((a, b) => a[0] - b[0]).map(([id, name]) => ({ id, name }));
  }
  return {
    root,
    format: 'manifest',
    records: records.sort(byPath),
    classes,
    duplicates: manifests.duplicates.map((d) => d.id),
  };
}

function reportDuplicates(duplicates: DuplicateReport[], logger: Logger): void {
  for (const d of duplicates) logger.warn('duplicate lines for one job; keeping the newest', { ...d });
}

/** NFC, then every character the official code or core's path rule turns into `_`/space, as a space. */
function looseKey(name: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: folder-name rules replace control characters too
  return name.normalize('NFC').replace(/[\s/\\_<>:"|?*\u0000-\u001f\u007f]/g, ' ');
}

/** Maps an official "First/Second Directory" value back to a class id, strict to lenient. */
function classResolver(classes: ClassInfo[]): (label: string) => number | 'ambiguous' | undefined {
  const levels = [
    (s: string) => s,
    (s: string) => officialClassLabel(s),
    (s: string) => looseKey(s),
    (s: string) => looseKey(s).toLowerCase(),
  ];
  const maps = levels.map((key) => {
    const m = new Map<string, number | 'ambiguous'>();
    for (const c of classes) {
      for (const name of new Set([c.name, ...(c.rawName !== undefined ? [c.rawName] : [])])) {
        const k = key(name);
        const prev = m.get(k);
        m.set(k, prev === undefined || prev === c.id ? c.id : 'ambiguous');
      }
    }
    return m;
  });
  return (label) => {
    for (let i = 0; i < levels.length; i++) {
      const hit = (maps[i] as Map<string, number | 'ambiguous'>).get((levels[i] as (s: string) => string)(label));
      if (hit !== undefined) return hit;
    }
    return undefined;
  };
}

async function fromMetaCsv(
  root: string,
  csv: string,
  options: ReadSyntheticSetOptions,
  annotation: { gamma: number; scaler: number },
  logger: Logger,
): Promise<SyntheticSet> {
  if (!options.classes) {
    throw new InvalidArgumentError(
      'classes',
      `needed to map the class names in ${csv} back to class ids (official sets have no manifest)`,
    );
  }
  const classes = normaliseClasses(options.classes);
  const resolve = classResolver(classes);
  const rows = await readMetaCsv(csv);
  const dataDir = path.join(root, DATA_DIR);
  const seen = new Set<string>();
  const duplicates: string[] = [];
  const records: SyntheticRecord[] = [];
  for (const row of rows) {
    const where = `${csv}:${row.line}`;
    const ids = [row.firstDirectory, row.secondDirectory].map((name, i) => {
      const id = resolve(name);
      const col = i === 0 ? 'First Directory' : 'Second Directory';
      if (id === undefined) throw new DatasetFormatError(where, `${col} ${JSON.stringify(name)} is not one of the given classes`);
      if (id === 'ambiguous') throw new DatasetFormatError(where, `${col} ${JSON.stringify(name)} matches more than one class`);
      return id;
    }) as [number, number];
    let abs: string;
    try {
      abs = resolveInside(dataDir, row.path);
    } catch (cause) {
      throw new DatasetFormatError(where, `Path ${JSON.stringify(row.path)} leaves the data folder`, { cause });
    }
    const id = `${DATA_DIR}/${row.path}`;
    if (seen.has(id)) {
      duplicates.push(id);
      continue;
    }
    seen.add(id);
    records.push({
      id,
      path: abs,
      label: annotate({ strength: row.strength, ...annotation, sourceClass: ids[0], targetClass: ids[1] }),
      sourceClass: ids[0],
      targetClass: ids[1],
      strength: row.strength,
    });
  }
  if (duplicates.length) logger.warn('meta.csv lists some images more than once; keeping one row each', { duplicates });
  return { root, format: 'meta-csv', records: records.sort(byPath), classes, duplicates };
}
