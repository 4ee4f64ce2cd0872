/**
 * Synthetic sets on disk: `data/<src>/<tgt>-<index:06d>-<strength>.png`, our `manifest.jsonl`
 * (one line per finished image) and the official Diff-Mix `meta.csv`, so sets written by either
 * implementation can be read by the other.
 */
export { SyntheticSetWriter } from './writer.js';
export type { RecoveryReport, SyntheticSetWriterOptions, SyntheticWriteInput } from './writer.js';
export { readSyntheticSet } from './read.js';
export type { ReadSyntheticSetOptions, SyntheticRecord, SyntheticSet } from './read.js';
export { mergeShardManifests, metaCsvRowsFromManifest, regenerateMetaCsv } from './set.js';
export { META_CSV_COLUMNS, formatMetaCsv, parseCsv, parseMetaCsv, readMetaCsv, writeMetaCsv } from './meta-csv.js';
export type { CsvRecord, MetaCsvRow } from './meta-csv.js';
export { dedupeManifestEntries, parseManifestBuffer, readAllManifests, readManifestFile } from './manifest-io.js';
export type { DuplicateReport, ManifestEntry, ManifestFileContent, TornTail } from './manifest-io.js';
export {
  DATA_DIR,
  MANIFEST_FILE,
  META_CSV_FILE,
  classFolderName,
  formatIndex,
  formatStrength,
  manifestFileName,
  officialClassLabel,
  parseSyntheticFileName,
  shardOfIndex,
  syntheticFileName,
  syntheticIndex,
} from './layout.js';
export type { ParsedSyntheticFileName } from './layout.js';
export type { ClassList } from './classes.js';
