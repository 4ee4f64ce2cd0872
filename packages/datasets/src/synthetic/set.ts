/** Whole-set operations on manifests: meta.csv regeneration and merging shard manifests. */
import { stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { DatasetFormatError, serializeManifestLine, silentLogger } from '@diffmix/core';
import type { Logger, ManifestLine } from '@diffmix/core';
import { fsyncDir, writeFileAtomic } from './fsutil.js';
import {
  DATA_DIR,
  MANIFEST_FILE,
  META_CSV_FILE,
  officialClassLabel,
  officialLabelFromFolder,
  parseSyntheticFileName,
} from './layout.js';
import { liveLockShards } from './lock.js';
import { listManifestFiles, readAllManifests } from './manifest-io.js';
import { writeMetaCsv } from './meta-csv.js';
import type { MetaCsvRow } from './meta-csv.js';

/**
 * The official meta.csv rows for manifest lines, sorted by Path. Lines whose path is not under
 * `data/<folder>/` (not written by our writer) are skipped.
 */
export function metaCsvRowsFromManifest(lines: readonly ManifestLine[]): MetaCsvRow[] {
  const rows: MetaCsvRow[] = [];
  for (const line of lines) {
    const parts = line.path.split('/');
    if (parts.length !== 3 || parts[0] !== DATA_DIR) continue;
    const folder = parts[1] as string;
    const file = parts[2] as string;
    const parsed = parseSyntheticFileName(file);
    rows.push({
      firstDirectory:
        line.sourceClassName !== undefined ? officialClassLabel(line.sourceClassName) : officialLabelFromFolder(folder),
      secondDirectory:
        line.targetClassName !== undefined
          ? officialClassLabel(line.targetClassName)
          : officialLabelFromFolder(parsed?.targetFolder ?? String(line.targetClass)),
      number: line.index,
      strength: line.strength,
      path: `${folder}/${file}`,
    });
  }
  return rows.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

async function manifestSizes(root: string): Promise<string> {
  const sizes: string[] = [];
  for (const f of await listManifestFiles(root)) {
    const st = await stat(f.file).catch(() => undefined);
    sizes.push(`${f.name}:${st?.size ?? -1}`);
  }
  return sizes.join('|');
}

/**
 * Rewrites `<root>/meta.csv` from every manifest in the set (atomically). Returns the row count.
 *
 * Shard writers call this from `close()` while other shards may still append. If any manifest
 * changed while we were reading or writing, our meta.csv may be stale and may have replaced a newer
 * one, so we do it again (up to 3 times: a manifest that keeps changing belongs to a writer that is
 * still running and will regenerate meta.csv when it closes). The writer that appends last always
 * regenerates after its last line and re-checks, hence the final meta.csv is complete.
 */
export async function regenerateMetaCsv(root: string, options: { tag?: string; logger?: Logger } = {}): Promise<number> {
  const logger = options.logger ?? silentLogger;
  for (let attempt = 0; ; attempt++) {
    const before = await manifestSizes(root);
    const { kept, duplicates, tornTails } = await readAllManifests(root);
    const rows = metaCsvRowsFromManifest(kept.map((e) => e.line));
    await writeMetaCsv(path.join(root, META_CSV_FILE), rows, options.tag);
    if ((await manifestSizes(root)) === before || attempt >= 2) {
      for (const t of tornTails) logger.debug('meta.csv: skipped a torn final manifest line', { file: t.file, line: t.lineNo });
      if (duplicates.length) logger.warn('meta.csv: duplicate manifest lines, kept the newest', { count: duplicates.length });
      return rows.length;
    }
  }
}

/**
 * After all shards have finished: merges every shard manifest (and an existing `manifest.jsonl`)
 * into `manifest.jsonl`, one line per job, then deletes the shard manifests and regenerates
 * meta.csv. Refuses while any writer holds a lock. Crash-safe: the merged file is renamed into place
 * before shard files are removed, and a reader dedupes by job id meanwhile.
 */
export async function mergeShardManifests(
  root: string,
  options: { logger?: Logger } = {},
): Promise<{ lines: number; merged: string[] }> {
  const absRoot = path.resolve(root);
  const live = await liveLockShards(absRoot);
  if (live.length) {
    throw new DatasetFormatError(absRoot, `writers are still running (${live.map((s) => `${s.index}/${s.count}`).join(', ')})`);
  }
  const { kept, files } = await readAllManifests(absRoot);
  const target = path.join(absRoot, MANIFEST_FILE);
  const shardFiles = files.filter((f) => f !== target);
  if (shardFiles.length === 0) return { lines: kept.length, merged: [] };
  await writeFileAtomic(target, kept.map((e) => serializeManifestLine(e.line)).join(''), 'manifest', 'u');
  for (const f of shardFiles) await unlink(f);
  await fsyncDir(absRoot);
  await regenerateMetaCsv(absRoot, { logger: options.logger });
  return { lines: kept.length, merged: shardFiles };
}
