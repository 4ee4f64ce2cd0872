/**
 * Reading manifest files: one JSON line per finished image (`@diffmix/core` `ManifestLine`).
 *
 * A crash can only damage the end of a manifest (lines are appended with one write each, after the
 * image is in place): a final line that does not parse (typically a fragment without a newline) is a
 * torn append and is dropped (the writer that owns the file also truncates it back). A final line
 * that parses but lacks only its newline is complete (the image was in place before the append
 * began) and is kept; its image is verified like any other line. A bad line anywhere else is
 * corruption and an error naming `file:line`.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DatasetFormatError, parseManifestLine } from '@diffmix/core';
import type { ManifestLine, Shard } from '@diffmix/core';
import { isErrno } from './fsutil.js';
import { parseManifestFileName } from './layout.js';

export interface ManifestEntry {
  line: ManifestLine;
  /** Absolute path of the manifest file. */
  file: string;
  /** 1-based line number. */
  lineNo: number;
}

export interface TornTail {
  /** 1-based line number of the dropped fragment. */
  lineNo: number;
  /** Byte length of the file up to the last complete line (what to truncate to). */
  keepBytes: number;
  /** Bytes dropped. */
  droppedBytes: number;
  reason: string;
}

export interface ManifestFileContent {
  file: string;
  entries: ManifestEntry[];
  tornTail: TornTail | undefined;
  /**
   * The final line is complete and valid but lacks its newline (a crash cut the append exactly
   * before it, or a hand edit): it is kept, and the owning writer adds the newline.
   */
  unterminated: boolean;
}

function isBlank(buf: Buffer): boolean {
  for (const b of buf) if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0a && b !== 0x00) return false;
  return true;
}

/** Parses a manifest file's bytes (see module doc for what counts as a torn tail). */
export function parseManifestBuffer(buf: Buffer, file: string): ManifestFileContent {
  // Split into [start, end) line spans; the last span has no newline if the file does not end in one.
  const spans: Array<{ start: number; end: number; terminated: boolean }> = [];
  let start = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    if (nl === -1) {
      spans.push({ start, end: buf.length, terminated: false });
      break;
    }
    spans.push({ start, end: nl, terminated: true });
    start = nl + 1;
  }
  // Index of the last span that is not blank: only that one may be a torn append.
  let last = spans.length - 1;
  while (last >= 0) {
    const s = spans[last] as (typeof spans)[number];
    if (!isBlank(buf.subarray(s.start, s.end))) break;
    last--;
  }
  const entries: ManifestEntry[] = [];
  let tornTail: TornTail | undefined;
  let unterminated = false;
  for (let i = 0; i <= last; i++) {
    const s = spans[i] as (typeof spans)[number];
    const bytes = buf.subarray(s.start, s.end);
    if (isBlank(bytes)) continue;
    const lineNo = i + 1;
    const isFinal = i === last;
    try {
      entries.push({ line: parseManifestLine(bytes.toString('utf8'), { source: file, line: lineNo }), file, lineNo });
      if (isFinal && !s.terminated) unterminated = true;
    } catch (cause) {
      if (isFinal) {
        tornTail = {
          lineNo,
          keepBytes: s.start,
          droppedBytes: buf.length - s.start,
          reason: `${s.terminated ? 'final line' : 'final line (no newline)'} does not parse (${(cause as Error).message})`,
        };
        break;
      }
      throw new DatasetFormatError(`${file}:${lineNo}`, `corrupt manifest line (${(cause as Error).message})`, { cause });
    }
  }
  // Trailing blank/NUL bytes after the last line (e.g. a crash that extended the file) are dropped too.
  if (!tornTail && !unterminated) {
    const lastSpan = last >= 0 ? spans[last] : undefined;
    const keepBytes = lastSpan ? lastSpan.end + 1 : 0;
    if (keepBytes < buf.length) {
      tornTail = { lineNo: last + 2, keepBytes, droppedBytes: buf.length - keepBytes, reason: 'blank bytes after the last line' };
    }
  }
  return { file, entries, tornTail, unterminated };
}

export async function readManifestFile(file: string): Promise<ManifestFileContent> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return { file, entries: [], tornTail: undefined, unterminated: false };
    throw err;
  }
  return parseManifestBuffer(buf, file);
}

/** Manifest files in `root` (`manifest.jsonl` first, then shard manifests by shard count and index). */
export async function listManifestFiles(root: string): Promise<Array<{ name: string; file: string; shard: Shard }>> {
  let names: string[];
  try {
    names = await readdir(root);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return [];
    throw err;
  }
  const out: Array<{ name: string; file: string; shard: Shard }> = [];
  for (const name of names) {
    const shard = parseManifestFileName(name);
    if (shard) out.push({ name, file: path.join(root, name), shard });
  }
  return out.sort((a, b) => a.shard.count - b.shard.count || a.shard.index - b.shard.index);
}

export interface DuplicateReport {
  id: string;
  kept: { file: string; lineNo: number };
  dropped: Array<{ file: string; lineNo: number }>;
}

/**
 * One entry per job id: the one with the latest `createdAt` (ISO strings compare as text), ties
 * (or no timestamps) going to the later entry in `entries` order. Returns kept entries in input order.
 */
export function dedupeManifestEntries(entries: readonly ManifestEntry[]): {
  kept: ManifestEntry[];
  duplicates: DuplicateReport[];
} {
  const best = new Map<string, { entry: ManifestEntry; pos: number; others: ManifestEntry[] }>();
  entries.forEach((entry, pos) => {
    const prev = best.get(entry.line.id);
    if (!prev) {
      best.set(entry.line.id, { entry, pos, others: [] });
      return;
    }
    const a = prev.entry.line.createdAt ?? '';
    const b = entry.line.createdAt ?? '';
    if (b >= a) best.set(entry.line.id, { entry, pos, others: [...prev.others, prev.entry] });
    else prev.others.push(entry);
  });
  const kept = [...best.values()].sort((x, y) => x.pos - y.pos);
  const duplicates: DuplicateReport[] = kept
    .filter((k) => k.others.length > 0)
    .map((k) => ({
      id: k.entry.line.id,
      kept: { file: k.entry.file, lineNo: k.entry.lineNo },
      dropped: k.others.map((o) => ({ file: o.file, lineNo: o.lineNo })),
    }));
  return { kept: kept.map((k) => k.entry), duplicates };
}

/** Every manifest in `root`, read-only (torn tails are skipped, not truncated), deduplicated. */
export async function readAllManifests(root: string): Promise<{
  kept: ManifestEntry[];
  duplicates: DuplicateReport[];
  tornTails: Array<{ file: string } & TornTail>;
  files: string[];
}> {
  const files = await listManifestFiles(root);
  const all: ManifestEntry[] = [];
  const tornTails: Array<{ file: string } & TornTail> = [];
  for (const f of files) {
    const content = await readManifestFile(f.file);
    all.push(...content.entries);
    if (content.tornTail) tornTails.push({ file: f.file, ...content.tornTail });
  }
  const { kept, duplicates } = dedupeManifestEntries(all);
  return { kept, duplicates, tornTails, files: files.map((f) => f.file) };
}
