/**
 * Names and numbers of a synthetic set on disk.
 *
 * Layout (same as the official Diff-Mix sampler, `scripts/sample_mp.py`):
 *
 *     <root>/data/<src folder>/<tgt folder>-<index:06d>-<strength>.png
 *     <root>/meta.csv                      official index (regenerated from the manifests)
 *     <root>/manifest.jsonl                ours: one line per finished image (unsharded writer)
 *     <root>/manifest.shard-<i>-of-<n>.jsonl   ours: one per shard when sharded (merged on read)
 *
 * Index numbering: the official sampler numbers images by their position in its task list
 * (`range(num_tasks)`). Our jobs are planned and sharded by id, and a writer does not see the plan,
 * so the number is derived from the job id instead: the first 48 bits of the id
 * ({@link syntheticIndex}). That makes it
 *  - deterministic: a re-done job lands on exactly the same file name (no duplicate with a new number);
 *  - coordination-free across shards: the top 32 bits of the index are the id's first 32 bits, which
 *    is exactly what `shardOfId` shards on, so two jobs with equal indices are always in the same
 *    shard (for every shard count). A collision can therefore only happen inside one writer, which
 *    knows all its paths and refuses it (probability ~2^-48 per pair with equal source, target and
 *    strength). It also lets a writer tell from a file name alone which shard owns the file.
 * The official reader parses the number with `(\d+)` and `int()`, so 15-digit numbers are fine.
 */
import { InvalidArgumentError, safePathComponent } from '@diffmix/core';
import type { Shard } from '@diffmix/core';

export const DATA_DIR = 'data';
export const MANIFEST_FILE = 'manifest.jsonl';
export const META_CSV_FILE = 'meta.csv';

/** Hex digits of the job id that make up the index (48 bits; < 2^53 so exact as a JS number). */
export const INDEX_HEX_DIGITS = 12;

/** The file-name number of a job: the first 48 bits of its id. */
export function syntheticIndex(jobId: string): number {
  if (!/^[0-9a-f]{12}/.test(jobId)) throw new InvalidArgumentError('id', `not a job id: ${JSON.stringify(jobId)}`);
  return Number.parseInt(jobId.slice(0, INDEX_HEX_DIGITS), 16);
}

/** The shard that owns a file with this index (same answer as `shardOfId` on the job's id). */
export function shardOfIndex(index: number, count: number): number {
  return Math.floor(index / 2 ** ((INDEX_HEX_DIGITS - 8) * 4)) % count;
}

/** Python's `f"{index:06d}"`. */
export function formatIndex(index: number): string {
  if (!Number.isSafeInteger(index) || index < 0)
    throw new InvalidArgumentError('index', `must be a non-negative integer, got ${index}`);
  return String(index).padStart(6, '0');
}

/**
 * Python's `repr(float)` (also what pandas writes for a float column): the shortest digits that
 * round-trip, fixed notation for 1e-4 ≤ |x| < 1e16 with at least one fractional digit (`1.0`),
 * scientific otherwise with a two-digit exponent (`1e-05`). The official sampler writes the strength
 * into file names with `f"{strength}"`, i.e. this (`0.7`, `0.5`; `1` only for its txt2img
 * strategies, which pass the int 1 — both parse the same with `float()`).
 */
export function formatStrength(value: number): string {
  if (!Number.isFinite(value)) throw new InvalidArgumentError('strength', `must be finite, got ${value}`);
  const v = value === 0 ? 0 : value; // -0 → 0
  const [mantissa = '0', expText = '0'] = v.toExponential().split('e');
  const exp = Number(expText);
  const negative = mantissa.startsWith('-');
  const digits = mantissa.replace('-', '').replace('.', '');
  let body: string;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1);
      body = `${intPart}.${frac === '' ? '0' : frac}`;
    } else {
      body = `0.${'0'.repeat(-exp - 1)}${digits}`;
    }
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    const e = Math.abs(exp);
    body = `${m}e${exp < 0 ? '-' : '+'}${e < 10 ? `0${e}` : e}`;
  }
  return negative ? `-${body}` : body;
}

/** `<tgt folder>-<index:06d>-<strength>.png`. */
export function syntheticFileName(targetFolder: string, index: number, strength: number): string {
  return `${targetFolder}-${formatIndex(index)}-${formatStrength(strength)}.png`;
}

export interface ParsedSyntheticFileName {
  targetFolder: string;
  index: number;
  strength: number;
}

/**
 * Inverse of {@link syntheticFileName}, with the official regex `(.+)-(\d+)-(.+).png` (greedy first
 * group, so target names containing `-` parse right). Undefined when the name does not match.
 */
export function parseSyntheticFileName(name: string): ParsedSyntheticFileName | undefined {
  const m = /^(.+)-(\d+)-(.+)\.png$/.exec(name);
  if (!m) return undefined;
  const index = Number(m[2]);
  const strength = Number(m[3]);
  if (!Number.isSafeInteger(index) || !Number.isFinite(strength)) return undefined;
  return { targetFolder: m[1] as string, index, strength };
}

/** The folder a class's images go to: the official rule (spaces and `/` → `_`) plus core's safety rules. */
export function classFolderName(name: string): string {
  return safePathComponent(name);
}

/**
 * What the official code writes into meta.csv's "First Directory" / "Second Directory" for a class:
 * it names folders `name.replace(" ", "_").replace("/", "_")` and then writes the folder name with
 * `.replace("_", " ")`, so the net effect is `/` and `_` become spaces.
 */
export function officialClassLabel(name: string): string {
  return name.replace(/[/_]/g, ' ');
}

/** The same label recovered from a folder name only (for lines without a class name). */
export function officialLabelFromFolder(folder: string): string {
  return folder.replace(/_/g, ' ');
}

export function normaliseShard(shard: Shard | undefined): Shard {
  if (shard === undefined) return { index: 0, count: 1 };
  const { index, count } = shard;
  if (!Number.isInteger(count) || count < 1 || !Number.isInteger(index) || index < 0 || index >= count) {
    throw new InvalidArgumentError('shard', `expected 0 ≤ index < count, got ${index}/${count}`);
  }
  return { index, count };
}

/** `manifest.jsonl` for an unsharded writer, `manifest.shard-<i>-of-<n>.jsonl` otherwise. */
export function manifestFileName(shard: Shard | undefined): string {
  const s = normaliseShard(shard);
  return s.count === 1 ? MANIFEST_FILE : `manifest.shard-${s.index}-of-${s.count}.jsonl`;
}

/** Recognises a manifest file name; returns its shard (`{0,1}` for `manifest.jsonl`). */
export function parseManifestFileName(name: string): Shard | undefined {
  if (name === MANIFEST_FILE) return { index: 0, count: 1 };
  const m = /^manifest\.shard-(\d+)-of-(\d+)\.jsonl$/.exec(name);
  if (!m) return undefined;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return count >= 1 && index < count ? { index, count } : undefined;
}

/** Short tag naming a writer's shard in temp and lock files. */
export function shardTag(shard: Shard): string {
  return `s${shard.index}of${shard.count}`;
}

/**
 * Temp files: `.diffmix-tmp.<what>.<tag>.<rand>` in the folder of the file they will become. `what`
 * is the job id for images, `manifest` / `meta` for root files; `tag` the writer's shard tag or `u`
 * (a standalone `writeMetaCsv`). Short on purpose: a final name can already be ~245 bytes.
 */
export const TEMP_PREFIX = '.diffmix-tmp.';
const TEMP_RE = /^\.diffmix-tmp\.([0-9A-Za-z]+)\.(s\d+of\d+|u)\.([0-9a-f]{8})$/;

export function tempFileName(what: string, tag: string, rand: string): string {
  return `${TEMP_PREFIX}${what}.${tag}.${rand}`;
}

export function parseTempFileName(name: string): { what: string; tag: string } | undefined {
  const m = TEMP_RE.exec(name);
  return m ? { what: m[1] as string, tag: m[2] as string } : undefined;
}
