/**
 * CLIP filtering of a synthetic set (Diff-Mix's data cleaning): score every image, drop those below
 * the q-th percentile (default 10), and write the result as NEW files — images and the set's own
 * manifests are never touched or deleted.
 *
 * The rule is the official one (`scripts/filter_syn_data.py`): `t = np.percentile(scores, q)` with
 * linear interpolation, keep `score ≥ t`, drop `score < t` (ties at the threshold are kept).
 *
 * Reads sets written by `@diffmix/datasets`' `SyntheticSetWriter` (`manifest.jsonl` and shard
 * manifests) and official sets that only have `meta.csv`. Writes:
 *
 *     <root>/remained_meta.csv                 kept images, official columns: what the official
 *                                              training code reads with clip_filtered_syn, and what
 *                                              readSyntheticSet(root, { metaCsv: 'remained_meta.csv' }) reads
 *     <out>/scores.jsonl                       resumable log: header + one line per image (appended per batch)
 *     <out>/scores.csv                         every image: rank, score, logits, kept — lowest score first
 *     <out>/dropped.csv, dropped_meta.csv      the dropped images (scores / official columns)
 *     <out>/remained_manifest.jsonl            kept manifest lines with clipScore filled (manifest sets)
 *     <out>/dropped_manifest.jsonl             dropped manifest lines with clipScore (manifest sets)
 *     <out>/lowest.png, lowest.json            contact sheet of the lowest-scored images + its legend
 *     <out>/summary.json                       counts, threshold, rule, captions, model, files
 *
 * `<out>` defaults to `<root>/clip_filter`.
 */
import { randomBytes } from 'node:crypto';
import { access, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import {
  AbortedError,
  DatasetFormatError,
  InvalidArgumentError,
  type Logger,
  type ManifestLine,
  NotFoundError,
  type ProgressMode,
  type ProgressReporter,
  resolveInside,
  serializeManifestLine,
  silentLogger,
} from '@diffmix/core';
import {
  DATA_DIR,
  formatMetaCsv,
  type MetaCsvRow,
  META_CSV_FILE,
  metaCsvRowsFromManifest,
  readAllManifests,
  readManifestFile,
  readMetaCsv,
} from '@diffmix/datasets';
import { ClipModel, type LoadClipModelOptions } from '../model/clip-model.js';
import { percentileLinear } from '../score/math.js';
import { ClipScorer, type ClipScorerOptions, type ScoreItem } from '../score/scorer.js';
import { scoreSheetPng } from './contact-sheet.js';
import { openScoreLog, SCORE_LOG_KIND, type ScoreLogHeader, type ScoreLogLine } from './score-log.js';

export const FILTER_DIR = 'clip_filter';
export const REMAINED_META_CSV = 'remained_meta.csv';
export const FILTER_FILES = {
  scoresLog: 'scores.jsonl',
  scoresCsv: 'scores.csv',
  droppedCsv: 'dropped.csv',
  droppedMetaCsv: 'dropped_meta.csv',
  remainedManifest: 'remained_manifest.jsonl',
  droppedManifest: 'dropped_manifest.jsonl',
  contactSheet: 'lowest.png',
  contactSheetJson: 'lowest.json',
  summary: 'summary.json',
} as const;

export interface FilterSyntheticSetOptions extends ClipScorerOptions {
  /** A loaded model, or a CLIP folder to load (and release afterwards) with `device` / `logitScale` / `session`. */
  model: ClipModel | string;
  device?: LoadClipModelOptions['device'];
  logitScale?: number;
  session?: LoadClipModelOptions['session'];
  /** Percentage of the set to drop, by lowest score (default 10). */
  dropPercent?: number;
  /** Folder for the filter's files (default `<root>/clip_filter`). */
  outDir?: string;
  /** Where to write the kept set's official CSV (default `<root>/remained_meta.csv`); false: not at all. */
  remainedMetaCsv?: string | false;
  /** Images on the contact sheet (default 32; 0: no sheet). */
  contactSheetCount?: number;
  /** Thumbnail box of the contact sheet in pixels (default 128). */
  contactSheetThumb?: number;
  /** Discard an existing score log instead of resuming from it (default false). */
  rescore?: boolean;
  /** Progress display (default 'auto': a bar on a TTY, JSON lines otherwise), or a reporter to tick. */
  progress?: ProgressMode | ProgressReporter;
  signal?: AbortSignal;
}

export interface FilteredImage {
  id: string;
  /** Path relative to the set root. */
  path: string;
  score: number;
  logits: number[];
  kept: boolean;
  /** 1 = lowest score. */
  rank: number;
}

export interface FilterResult {
  root: string;
  format: 'manifest' | 'meta-csv';
  total: number;
  kept: number;
  dropped: number;
  dropPercent: number;
  /** `np.percentile(scores, dropPercent)`; images below it are dropped. */
  threshold: number;
  /** Scores reused from an earlier run's log. */
  resumed: number;
  /** Every image, lowest score first. */
  images: FilteredImage[];
  files: Record<string, string>;
}

interface SetEntry {
  id: string;
  abs: string;
  rel: string;
  line?: ManifestLine;
  row?: MetaCsvRow;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/** The images of a set: manifest lines when there are manifests, else official meta.csv rows. */
async function readSetEntries(
  root: string,
  logger: Logger,
): Promise<{ format: 'manifest' | 'meta-csv'; entries: SetEntry[]; source: string }> {
  const manifests = await readAllManifests(root);
  if (manifests.files.length > 0) {
    for (const t of manifests.tornTails) logger.warn('skipping a torn final manifest line', { file: t.file, line: t.lineNo });
    if (manifests.duplicates.length)
      logger.warn('duplicate manifest lines; keeping the newest of each', { count: manifests.duplicates.length });
    const entries = manifests.kept.map(({ line, file, lineNo }) => {
      let abs: string;
      try {
        abs = resolveInside(root, line.path);
      } catch (cause) {
        throw new DatasetFormatError(`${file}:${lineNo}`, `path ${JSON.stringify(line.path)} leaves the set`, { cause });
      }
      return { id: line.id, abs, rel: line.path, line };
    });
    return { format: 'manifest', entries, source: manifests.files.join(', ') };
  }
  const csv = path.join(root, META_CSV_FILE);
  if (!(await exists(csv))) throw new NotFoundError(root, 'synthetic set (no manifest.jsonl and no meta.csv)');
  const rows = await readMetaCsv(csv);
  const dataDir = path.join(root, DATA_DIR);
  const seen = new Set<string>();
  const entries: SetEntry[] = [];
  for (const row of rows) {
    let abs: string;
    try {
      abs = resolveInside(dataDir, row.path);
    } catch (cause) {
      throw new DatasetFormatError(`${csv}:${row.line}`, `Path ${JSON.stringify(row.path)} leaves the data folder`, { cause });
    }
    const id = `${DATA_DIR}/${row.path}`;
    if (seen.has(id)) continue;
    seen.add(id);
    entries.push({ id, abs, rel: id, row });
  }
  return { format: 'meta-csv', entries, source: csv };
}

/** Writes a file atomically (temp file in the same folder, fsync, rename). */
async function writeAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.diffmix-tmp.clip.${randomBytes(4).toString('hex')}`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

function csvField(v: string): string {
  return /[",\r\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
}

function scoresCsv(images: readonly FilteredImage[]): string {
  let out = 'rank,id,path,score,logit_positive,logit_negative,kept\n';
  for (const im of images) {
    out += `${[String(im.rank), csvField(im.id), csvField(im.path), String(im.score), String(im.logits[0]), String(im.logits[1]), im.kept ? '1' : '0'].join(',')}\n`;
  }
  return out;
}

/** The split of the official rule: drop `score < percentile(scores, q)`. */
export function percentileSplit(scores: readonly number[], dropPercent: number): { threshold: number; kept: boolean[] } {
  if (!(dropPercent >= 0 && dropPercent <= 100))
    throw new InvalidArgumentError('dropPercent', `must be in [0, 100], got ${dropPercent}`);
  const threshold = percentileLinear(scores, dropPercent);
  return { threshold, kept: scores.map((s) => s >= threshold) };
}

async function modelFingerprint(model: ClipModel): Promise<Record<string, unknown>> {
  const files = model.files.kind === 'dual' ? [model.files.text, model.files.vision] : [model.files.model];
  const list = [];
  for (const f of files) list.push({ name: path.basename(f), bytes: (await stat(f)).size });
  const projections = model.describe().projections;
  return {
    kind: model.kind,
    files: list,
    logitScale: model.kind === 'dual' ? model.logitScale.value : 'graph',
    ...(projections ? { projections } : {}),
  };
}

/** Scores and filters a synthetic set (see module doc). */
export async function filterSyntheticSet(root: string, options: FilterSyntheticSetOptions): Promise<FilterResult> {
  const log = options.logger ?? silentLogger;
  const absRoot = path.resolve(root);
  const dropPercent = options.dropPercent ?? 10;
  if (!(dropPercent >= 0 && dropPercent <= 100))
    throw new InvalidArgumentError('dropPercent', `must be in [0, 100], got ${dropPercent}`);
  const sheetCount = options.contactSheetCount ?? 32;
  if (!Number.isInteger(sheetCount) || sheetCount < 0) {
    throw new InvalidArgumentError('contactSheetCount', `must be a non-negative integer, got ${sheetCount}`);
  }

  const { format, entries } = await readSetEntries(absRoot, log);
  if (entries.length === 0) {
    throw new DatasetFormatError(
      absRoot,
      `the synthetic set has no images to filter (its ${format === 'manifest' ? 'manifests are' : 'meta.csv is'} empty)`,
    );
  }
  entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));

  const ownModel = typeof options.model === 'string';
  const model =
    typeof options.model === 'string'
      ? await ClipModel.load(options.model, {
          ...(options.device ? { device: options.device } : {}),
          ...(options.logitScale !== undefined ? { logitScale: options.logitScale } : {}),
          ...(options.session ? { session: options.session } : {}),
          logger: log,
        })
      : options.model;
  try {
    // Captions are checked before any file is written.
    const scorer = new ClipScorer(model, options);
    const outDir = path.resolve(options.outDir ?? path.join(absRoot, FILTER_DIR));
    await mkdir(outDir, { recursive: true });
    const files: Record<string, string> = {};
    const at = (key: keyof typeof FILTER_FILES) => {
      const f = path.join(outDir, FILTER_FILES[key]);
      files[key] = f;
      return f;
    };

    const header: ScoreLogHeader = {
      kind: SCORE_LOG_KIND,
      v: 1,
      captions: [...scorer.captions],
      resampler: scorer.processor.resampler,
      model: await modelFingerprint(model),
    };
    const scoreLog = await openScoreLog(at('scoresLog'), header, { rescore: options.rescore ?? false });
    const byId = new Map<string, { score: number; logits: number[] }>();
    for (const e of entries) {
      const prev = scoreLog.existing.get(e.id);
      if (prev) byId.set(e.id, { score: prev.score, logits: prev.logits });
    }
    const resumed = byId.size;
    if (resumed) log.info(`resuming: ${resumed} of ${entries.length} images already scored`, { log: scoreLog.file });
    const stale = scoreLog.existing.size - resumed;
    if (stale > 0) log.warn(`${stale} scores in the log belong to images no longer in the set; ignored`, { log: scoreLog.file });

    const pending = entries.filter((e) => !byId.has(e.id));
    const relOf = new Map(entries.map((e) => [e.id, e.rel]));
    if (pending.length) {
      const items: ScoreItem[] = pending.map((e) => ({ id: e.id, path: e.abs }));
      for await (const batch of scorer.scoreSources(items, {
        progress: options.progress ?? 'auto',
        progressInitial: resumed,
        progressTotal: entries.length,
        ...(options.signal ? { signal: options.signal } : {}),
      })) {
        const lines: ScoreLogLine[] = batch.map((b) => ({
          id: b.id,
          path: relOf.get(b.id) as string,
          score: b.score,
          logits: b.logits,
        }));
        await scoreLog.append(lines);
        for (const b of batch) byId.set(b.id, { score: b.score, logits: b.logits });
        if (options.signal?.aborted)
          throw new AbortedError(`scoring aborted; ${byId.size} of ${entries.length} scores saved in ${scoreLog.file}`);
      }
    }

    // Split.
    const scores = entries.map((e) => (byId.get(e.id) as { score: number }).score);
    const { threshold, kept } = percentileSplit(scores, dropPercent);
    const order = entries
      .map((_, i) => i)
      .sort(
        (a, b) =>
          (scores[a] as number) - (scores[b] as number) || ((entries[a] as SetEntry).rel < (entries[b] as SetEntry).rel ? -1 : 1),
      );
    const rankOf = new Map<number, number>();
    for (const [r, i] of order.entries()) rankOf.set(i, r + 1);
    const images: FilteredImage[] = order.map((i) => {
      const e = entries[i] as SetEntry;
      const s = byId.get(e.id) as { score: number; logits: number[] };
      return { id: e.id, path: e.rel, score: s.score, logits: s.logits, kept: kept[i] as boolean, rank: rankOf.get(i) as number };
    });
    const keptEntries = entries.filter((_, i) => kept[i]);
    const droppedEntries = entries.filter((_, i) => !kept[i]);

    // Outputs: all new files, written atomically.
    await writeAtomic(at('scoresCsv'), scoresCsv(images));
    await writeAtomic(at('droppedCsv'), scoresCsv(images.filter((im) => !im.kept)));
    const metaRows = (list: SetEntry[]): MetaCsvRow[] =>
      format === 'manifest'
        ? metaCsvRowsFromManifest(list.map((e) => e.line as ManifestLine))
        : list.map((e) => {
            const { line: _line, ...row } = e.row as MetaCsvRow;
            return row;
          });
    await writeAtomic(at('droppedMetaCsv'), formatMetaCsv(metaRows(droppedEntries)));
    if (options.remainedMetaCsv !== false) {
      const file = path.resolve(options.remainedMetaCsv ?? path.join(absRoot, REMAINED_META_CSV));
      await writeAtomic(file, formatMetaCsv(metaRows(keptEntries)));
      files.remainedMetaCsv = file;
    }
    if (format === 'manifest') {
      const withScore = (list: SetEntry[]) =>
        list
          .map((e) =>
            serializeManifestLine({
              ...(e.line as ManifestLine),
              clipScore: clampUnit((byId.get(e.id) as { score: number }).score),
            }),
          )
          .join('');
      await writeAtomic(at('remainedManifest'), withScore(keptEntries));
      await writeAtomic(at('droppedManifest'), withScore(droppedEntries));
    }
    if (sheetCount > 0) {
      const lowest = images.slice(0, sheetCount);
      const sheet = await scoreSheetPng(
        lowest.map((im) => ({ path: resolveInside(absRoot, im.path), score: im.score, dropped: !im.kept })),
        options.contactSheetThumb !== undefined ? { thumbSize: options.contactSheetThumb } : {},
      );
      await writeAtomic(at('contactSheet'), sheet.png);
      const legend = {
        image: FILTER_FILES.contactSheet,
        width: sheet.width,
        height: sheet.height,
        order: 'lowest score first; red frame = dropped, grey = kept',
        threshold,
        cells: lowest.map((im, k) => ({
          ...sheet.cells[k],
          rank: im.rank,
          id: im.id,
          path: im.path,
          score: im.score,
          kept: im.kept,
        })),
      };
      await writeAtomic(at('contactSheetJson'), `${JSON.stringify(legend, null, 2)}\n`);
    }
    const result: FilterResult = {
      root: absRoot,
      format,
      total: entries.length,
      kept: keptEntries.length,
      dropped: droppedEntries.length,
      dropPercent,
      threshold,
      resumed,
      images,
      files,
    };
    at('summary');
    const summary = {
      root: absRoot,
      format,
      total: result.total,
      kept: result.kept,
      dropped: result.dropped,
      dropPercent,
      threshold,
      rule: 'drop score < np.percentile(scores, dropPercent) (linear interpolation), keep the rest (as the official scripts/filter_syn_data.py)',
      score: 'softmax(logit_scale * [cos(img, positive), cos(img, negative)])[0]',
      captions: scorer.captions,
      resampler: scorer.processor.resampler,
      model: model.describe(),
      resumedScores: resumed,
      scoreRange: { min: images[0]?.score ?? null, max: images[images.length - 1]?.score ?? null },
      files: Object.fromEntries(Object.entries(files).map(([k, f]) => [k, path.relative(absRoot, f)])),
      createdAt: new Date().toISOString(),
    };
    await writeAtomic(files.summary as string, `${JSON.stringify(summary, null, 2)}\n`);
    log.info(
      `clip filter: kept ${result.kept}, dropped ${result.dropped} of ${result.total} (threshold ${threshold.toFixed(6)})`,
      { outDir },
    );
    return result;
  } finally {
    if (ownModel) await model.release();
  }
}

/** Scores are probabilities; keep tiny float excursions inside the manifest schema's [0, 1]. */
function clampUnit(x: number): number {
  return Math.min(1, Math.max(0, x));
}

/** Reads the kept manifest lines (with clipScore) a filter run wrote. */
export async function readRemainedManifest(root: string, options: { outDir?: string } = {}): Promise<ManifestLine[]> {
  const file = path.join(path.resolve(options.outDir ?? path.join(root, FILTER_DIR)), FILTER_FILES.remainedManifest);
  if (!(await exists(file))) throw new NotFoundError(file, 'filtered manifest (run filterSyntheticSet first)');
  const content = await readManifestFile(file);
  if (content.tornTail) throw new DatasetFormatError(`${file}:${content.tornTail.lineNo}`, content.tornTail.reason);
  return content.entries.map((e) => e.line);
}
