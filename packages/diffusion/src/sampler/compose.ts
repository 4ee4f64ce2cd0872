/**
 * `composeSyntheticSet`: a set of a target size drawn from the union of several pools, as the official
 * compose step builds the paper's Diff-Mix set (three fixed-strength pools s = 0.5, 0.7, 0.9,
 * subsampled to 5× the training set).
 *
 * - The union is keyed by job id (a job found in two pools counts once), sorted by id, and
 *   `targetSize` jobs are drawn without replacement with `Rng.fromSeed(seed).split('compose')`; the
 *   result depends on the pools' contents and the seed, not on the order the pools are listed in.
 * - Images are COPIED into the new set through `SyntheticSetWriter` (each checked against its pool
 *   manifest's sha256 first): the new set is self-contained (works across file systems, survives
 *   deleting a pool), crash-safe and resumable like any set (re-running skips what is there), and gets
 *   its own manifest and meta.csv. Hard links would save disk space but bypass the writer's temp +
 *   rename protocol and tie the sets together; a copy costs one read and one write per image. The
 *   pools are only read, never moved, changed or deleted.
 * - File names are derived from job ids, so an image keeps its pool's name in the composed set.
 * - `<out>/compose.json` records the pools, seed and sizes; a folder composed with other settings is
 *   refused.
 * Pools must be diffmix sets (with manifests); an official meta.csv-only set has no job ids.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { DatasetFormatError, InvalidArgumentError, Rng, canonicalJson, resolveInside, silentLogger } from '@diffmix/core';
import type { ClassInfo, Logger, ManifestLine } from '@diffmix/core';
import { SyntheticSetWriter, readAllManifests } from '@diffmix/datasets';
import type { ClassList, SyntheticWriteInput } from '@diffmix/datasets';
import { writeFileAtomically } from './plan-file.js';
import { PLAN_FILE } from './plan-file.js';
import type { PlanRecord } from './plan.js';

export const COMPOSE_FILE = 'compose.json';

export interface ComposeOptions {
  /** Folders of the pools (diffmix synthetic sets). */
  pools: readonly string[];
  /** Images in the composed set (e.g. 5 × the training set). */
  targetSize: number;
  seed: number | string;
  out: string;
  /** The dataset's classes; default: the pools' `plan.json`, else the names in their manifests. */
  classes?: ClassList;
  /** Take the whole union when it is smaller than `targetSize` instead of failing. */
  allowSmaller?: boolean;
  /** Images copied at once (default 8). */
  concurrency?: number;
  logger?: Logger;
  signal?: AbortSignal;
}

export interface ComposeSummary {
  out: string;
  pools: Array<{ root: string; images: number }>;
  /** Distinct jobs over all pools. */
  union: number;
  /** Jobs found in more than one pool. */
  duplicates: number;
  selected: number;
  copied: number;
  alreadyThere: number;
  /** False when `signal` stopped the copy early (run again to finish). */
  complete: boolean;
  seconds: number;
}

interface PoolLine {
  line: ManifestLine;
  root: string;
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new DatasetFormatError(file, `not valid JSON (${(err as Error).message})`);
  }
}

async function poolClasses(roots: readonly string[], lines: readonly ManifestLine[]): Promise<ClassInfo[]> {
  let found: { root: string; classes: ClassInfo[] } | undefined;
  for (const root of roots) {
    const rec = await readJson<PlanRecord>(path.join(root, PLAN_FILE));
    if (!rec?.dataset?.classes) continue;
    if (found && canonicalJson(found.classes) !== canonicalJson(rec.dataset.classes)) {
      throw new InvalidArgumentError('pools', `${found.root} and ${root} were planned on different class lists`);
    }
    found ??= { root, classes: rec.dataset.classes };
  }
  if (found) return found.classes;
  const names = new Map<number, string>();
  for (const l of lines) {
    if (l.sourceClassName !== undefined) names.set(l.sourceClass, l.sourceClassName);
    if (l.targetClassName !== undefined) names.set(l.targetClass, l.targetClassName);
  }
  for (const l of lines) {
    for (const c of [l.sourceClass, l.targetClass, ...l.label.map(([id]) => id)]) {
      if (!names.has(c)) throw new InvalidArgumentError('classes', `the pools do not name class ${c}: pass options.classes`);
    }
  }
  return [...names.entries()].sort((a, b) => a[0] - b[0]).map(([id, name]) => ({ id, name }));
}

export async function composeSyntheticSet(options: ComposeOptions): Promise<ComposeSummary> {
  const started = performance.now();
  const logger = options.logger ?? silentLogger;
  const out = path.resolve(options.out);
  const roots = options.pools.map((p) => path.resolve(p));
  if (roots.length === 0) throw new InvalidArgumentError('pools', 'at least one pool is needed');
  if (new Set(roots).size !== roots.length) throw new InvalidArgumentError('pools', 'a pool is listed twice');
  for (const r of roots) {
    if (r === out || out.startsWith(`${r}${path.sep}`) || r.startsWith(`${out}${path.sep}`)) {
      throw new InvalidArgumentError('out', `must be outside the pools (and not contain them): ${out} vs ${r}`);
    }
  }
  if (!Number.isSafeInteger(options.targetSize) || options.targetSize < 0) {
    throw new InvalidArgumentError('targetSize', `must be a non-negative integer, got ${options.targetSize}`);
  }
  const concurrency = options.concurrency ?? 8;

  // 1. The union of the pools, one entry per job id (first pool wins; the same job made the same image).
  const union = new Map<string, PoolLine>();
  const pools: ComposeSummary['pools'] = [];
  let duplicates = 0;
  for (const root of roots) {
    const { kept, files } = await readAllManifests(root);
    if (files.length === 0) {
      throw new DatasetFormatError(
        root,
        'has no manifest.jsonl: only diffmix sets can be composed (official sets have no job ids)',
      );
    }
    pools.push({ root, images: kept.length });
    for (const { line } of kept) {
      if (union.has(line.id)) duplicates++;
      else union.set(line.id, { line, root });
    }
  }
  const ids = [...union.keys()].sort();
  let targetSize = options.targetSize;
  if (targetSize > ids.length) {
    if (!options.allowSmaller) {
      throw new InvalidArgumentError('targetSize', `${targetSize} is more than the ${ids.length} distinct images of the pools`);
    }
    logger.warn('the pools hold fewer images than the target size; taking all of them', {
      target: targetSize,
      union: ids.length,
    });
    targetSize = ids.length;
  }
  const selected = Rng.fromSeed(options.seed).split('compose').sample(ids, targetSize).sort();
  const selectedSet = new Set(selected);

  // 2. Record what is being composed; refuse a folder composed differently.
  const record = {
    format: 'diffmix-compose',
    version: 1,
    pools: roots,
    seed: options.seed,
    targetSize: options.targetSize,
    union: ids.length,
    selected: selected.length,
    selection: createHash('sha256').update(selected.join('\n')).digest('hex'),
  };
  await mkdir(out, { recursive: true });
  const existing = await readJson<typeof record>(path.join(out, COMPOSE_FILE));
  if (existing && existing.selection !== record.selection) {
    throw new InvalidArgumentError('out', `${out} holds a set composed from other pools or settings; use another folder`);
  }
  if (!existing)
    await writeFileAtomically(path.join(out, COMPOSE_FILE), `${JSON.stringify(record, null, 2)}\n`, '.compose.json.tmp-');

  const classes =
    options.classes ??
    (await poolClasses(
      roots,
      selected.map((id) => (union.get(id) as PoolLine).line),
    ));
  const writer = await SyntheticSetWriter.open(out, { classes, logger });
  let copied = 0;
  let alreadyThere = 0;
  let complete = true;
  try {
    const stray = writer.lines().filter((l) => !selectedSet.has(l.id));
    if (stray.length) {
      throw new InvalidArgumentError('out', `${out} holds ${stray.length} image(s) that are not part of this composition`);
    }
    const todo = selected.filter((id) => {
      if (!writer.has(id)) return true;
      alreadyThere++;
      return false;
    });
    let next = 0;
    let failed = false;
    const worker = async () => {
      while (next < todo.length && !failed) {
        if (options.signal?.aborted) {
          complete = false;
          return;
        }
        const { line, root } = union.get(todo[next++] as string) as PoolLine;
        try {
          const file = resolveInside(root, line.path);
          const bytes = await readFile(file);
          const digest = createHash('sha256').update(bytes).digest('hex');
          if (digest !== line.sha256) {
            throw new DatasetFormatError(
              file,
              'does not match its manifest sha256 (pool damaged: re-run its sampler to repair it)',
            );
          }
          const { path: _p, index: _i, v: _v, sourceClassName: _s, targetClassName: _t, sha256: _h, ...job } = line;
          await writer.write(job as SyntheticWriteInput, bytes);
          copied++;
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, todo.length)) }, worker));
  } finally {
    await writer.close();
  }
  const summary: ComposeSummary = {
    out,
    pools,
    union: ids.length,
    duplicates,
    selected: selected.length,
    copied,
    alreadyThere,
    complete,
    seconds: (performance.now() - started) / 1000,
  };
  logger.info('composed', { ...summary, pools: pools.map((p) => `${p.root} (${p.images})`) });
  return summary;
}
