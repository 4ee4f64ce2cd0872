/**
 * The long-tail subset manifest: one JSON file that records which training images a long-tailed
 * subset keeps, their labels, the per-class counts and the parameters that produced it, so other
 * packages (and other runs) use exactly the same subset without re-sampling.
 *
 * ```json
 * {
 *   "format": "diffmix-longtail-subset",
 *   "version": 1,
 *   "dataset": {"name": "cub", "numClasses": 200, "trainImages": 5994},
 *   "parameters": {"imbalanceFactor": 100, "formula": "official", "seed": 0, "tieBreak": "class-id",
 *                  "allowFewer": false, "meanPerClass": 29.97},
 *   "total": 1242,
 *   "classes": [
 *     {"id": 0, "name": "Black footed Albatross", "rank": 0, "available": 30, "target": 29, "count": 29},
 *     …
 *   ],
 *   "records": [
 *     {"id": "001.Black_footed_Albatross/Black_Footed_Albatross_0001_796111.jpg", "label": 0},
 *     …
 *   ]
 * }
 * ```
 * `classes` is indexed by class id; `rank` is the class's position by size (0 = largest),
 * `available` its training images in the full set, `target` its n_k and `count` what was kept
 * (`count < target` only with `allowFewer`). `records` are in the full dataset's train order.
 */
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Dataset, type DatasetRecord, DatasetFormatError, NotFoundError } from '@diffmix/core';
import type { LongTailFormula } from './counts.js';
import type { TieBreak } from './subset.js';

export const MANIFEST_FORMAT = 'diffmix-longtail-subset';
export const MANIFEST_VERSION = 1;

export interface LongTailManifestClass {
  id: number;
  name: string;
  rank: number;
  available: number;
  target: number;
  count: number;
}

export interface LongTailManifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  dataset: { name: string; numClasses: number; trainImages: number };
  parameters: {
    imbalanceFactor: number;
    formula: LongTailFormula;
    seed: number | string;
    tieBreak: TieBreak;
    allowFewer: boolean;
    /** n̄ = trainImages / numClasses. */
    meanPerClass: number;
  };
  total: number;
  classes: LongTailManifestClass[];
  records: Array<{ id: string; label: number }>;
}

/** Pretty JSON with one class / one record per line. */
export function serializeLongTailManifest(m: LongTailManifest): string {
  const rows = (items: unknown[]) => items.map((x) => `    ${JSON.stringify(x)}`).join(',\n');
  return [
    '{',
    `  "format": ${JSON.stringify(m.format)},`,
    `  "version": ${JSON.stringify(m.version)},`,
    `  "dataset": ${JSON.stringify(m.dataset)},`,
    `  "parameters": ${JSON.stringify(m.parameters)},`,
    `  "total": ${JSON.stringify(m.total)},`,
    `  "classes": [${m.classes.length ? `\n${rows(m.classes)}\n  ` : ''}],`,
    `  "records": [${m.records.length ? `\n${rows(m.records)}\n  ` : ''}]`,
    '}',
    '',
  ].join('\n');
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and checks a manifest. `source` (a file name) prefixes every error; problems are
 * `DatasetFormatError`s naming the field, e.g. `records[12].label`.
 */
export function parseLongTailManifest(text: string, source = 'long-tail manifest'): LongTailManifest {
  const fail = (problem: string): never => {
    throw new DatasetFormatError(source, problem);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new DatasetFormatError(source, `not valid JSON (${(cause as Error).message})`, { cause });
  }
  if (!isObj(raw)) return fail('must be a JSON object');
  if (raw.format !== MANIFEST_FORMAT) {
    fail(`format must be ${JSON.stringify(MANIFEST_FORMAT)}, got ${JSON.stringify(raw.format)}`);
  }
  if (raw.version !== MANIFEST_VERSION) {
    fail(`unsupported version ${JSON.stringify(raw.version)} (this reader knows ${MANIFEST_VERSION})`);
  }
  const int = (v: unknown, where: string, min = 0): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      fail(`${where} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const str = (v: unknown, where: string): string => {
    if (typeof v !== 'string') fail(`${where} must be a string, got ${JSON.stringify(v)}`);
    return v as string;
  };

  const ds = raw.dataset;
  if (!isObj(ds)) return fail('dataset must be an object');
  const numClasses = int(ds.numClasses, 'dataset.numClasses', 1);
  const dataset = { name: str(ds.name, 'dataset.name'), numClasses, trainImages: int(ds.trainImages, 'dataset.trainImages', 1) };

  const p = raw.parameters;
  if (!isObj(p)) return fail('parameters must be an object');
  if (typeof p.imbalanceFactor !== 'number' || !(p.imbalanceFactor >= 1)) {
    fail(`parameters.imbalanceFactor must be a number ≥ 1, got ${JSON.stringify(p.imbalanceFactor)}`);
  }
  if (p.formula !== 'paper' && p.formula !== 'official')
    fail(`parameters.formula must be "paper" or "official", got ${JSON.stringify(p.formula)}`);
  if (typeof p.seed !== 'number' && typeof p.seed !== 'string')
    fail(`parameters.seed must be a number or string, got ${JSON.stringify(p.seed)}`);
  if (p.tieBreak !== 'class-id' && p.tieBreak !== 'first-appearance') {
    fail(`parameters.tieBreak must be "class-id" or "first-appearance", got ${JSON.stringify(p.tieBreak)}`);
  }
  if (typeof p.allowFewer !== 'boolean') fail(`parameters.allowFewer must be a boolean, got ${JSON.stringify(p.allowFewer)}`);
  if (typeof p.meanPerClass !== 'number' || !(p.meanPerClass > 0)) {
    fail(`parameters.meanPerClass must be a positive number, got ${JSON.stringify(p.meanPerClass)}`);
  }
  const parameters = {
    imbalanceFactor: p.imbalanceFactor as number,
    formula: p.formula as LongTailFormula,
    seed: p.seed as number | string,
    tieBreak: p.tieBreak as TieBreak,
    allowFewer: p.allowFewer as boolean,
    meanPerClass: p.meanPerClass as number,
  };

  if (!Array.isArray(raw.classes)) return fail('classes must be an array');
  if (raw.classes.length !== numClasses) fail(`classes has ${raw.classes.length} entries, dataset.numClasses is ${numClasses}`);
  const ranks = new Set<number>();
  const classes: LongTailManifestClass[] = raw.classes.map((c: unknown, i: number) => {
    const w = `classes[${i}]`;
    if (!isObj(c)) return fail(`${w} must be an object`);
    const id = int(c.id, `${w}.id`);
    if (id !== i) fail(`${w}.id must be ${i} (classes are listed by id), got ${id}`);
    const rank = int(c.rank, `${w}.rank`);
    if (rank >= numClasses || ranks.has(rank)) fail(`${w}.rank ${rank} is out of range or used twice`);
    ranks.add(rank);
    return {
      id,
      name: str(c.name, `${w}.name`),
      rank,
      available: int(c.available, `${w}.available`),
      target: int(c.target, `${w}.target`, 1),
      count: int(c.count, `${w}.count`),
    };
  });

  if (!Array.isArray(raw.records)) return fail('records must be an array');
  const seen = new Set<string>();
  const perClass = new Array<number>(numClasses).fill(0);
  const records = raw.records.map((r: unknown, i: number) => {
    const w = `records[${i}]`;
    if (!isObj(r)) return fail(`${w} must be an object`);
    const id = str(r.id, `${w}.id`);
    if (seen.has(id)) fail(`${w}.id ${JSON.stringify(id)} is listed twice`);
    seen.add(id);
    const label = int(r.label, `${w}.label`);
    if (label >= numClasses) fail(`${w}.label ${label} is outside 0..${numClasses - 1}`);
    perClass[label] = (perClass[label] as number) + 1;
    return { id, label };
  });
  const total = int(raw.total, 'total');
  if (total !== records.length) fail(`total is ${total} but ${records.length} records are listed`);
  classes.forEach((c, i) => {
    if (c.count !== perClass[i]) fail(`classes[${i}].count is ${c.count} but ${perClass[i]} records have label ${i}`);
    if (c.count > c.available) fail(`classes[${i}].count ${c.count} exceeds available ${c.available}`);
  });
  return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, dataset, parameters, total, classes, records };
}

/** Writes the manifest (temp file + rename, so readers never see half a file). Creates the folder. */
export async function writeLongTailManifest(file: string, manifest: LongTailManifest): Promise<void> {
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}-${Date.now().toString(36)}`;
  try {
    await writeFile(tmp, serializeLongTailManifest(manifest), 'utf8');
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** Reads and checks a manifest written by `writeLongTailManifest` (`NotFoundError` / `DatasetFormatError`). */
export async function readLongTailManifest(file: string): Promise<LongTailManifest> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(file, 'long-tail manifest');
    throw err;
  }
  return parseLongTailManifest(text, file);
}

export interface ApplyManifestOptions {
  /** Name used in errors (normally the manifest's file). */
  source?: string;
  /**
   * Require `dataset.train.length` to equal the manifest's `dataset.trainImages` (default true): a
   * different size usually means another split of the dataset (e.g. Flowers' official split instead
   * of the Diff-Mix 50/50 split) and hence another n̄.
   */
  requireSameTrainSize?: boolean;
}

/**
 * The long-tailed dataset a manifest describes, cut from the full `dataset` (train = the listed
 * records in the dataset's order; classes and test unchanged). Throws `DatasetFormatError` when a
 * listed record is missing from `dataset.train` or has another label, or the class count differs.
 */
export function applyLongTailManifest(dataset: Dataset, manifest: LongTailManifest, options: ApplyManifestOptions = {}): Dataset {
  const source = options.source ?? 'long-tail manifest';
  if (dataset.classes.length !== manifest.dataset.numClasses) {
    throw new DatasetFormatError(
      source,
      `written for ${manifest.dataset.numClasses} classes, dataset ${JSON.stringify(dataset.name)} has ${dataset.classes.length}`,
    );
  }
  if ((options.requireSameTrainSize ?? true) && dataset.train.length !== manifest.dataset.trainImages) {
    throw new DatasetFormatError(
      source,
      `written for a train split of ${manifest.dataset.trainImages} images, dataset ${JSON.stringify(dataset.name)} has ${dataset.train.length} (another split? pass requireSameTrainSize: false to apply it anyway)`,
    );
  }
  const byId = new Map<string, DatasetRecord>();
  for (const r of dataset.train) byId.set(r.id, r);
  const keep = new Set<DatasetRecord>();
  for (const { id, label } of manifest.records) {
    const r = byId.get(id);
    if (!r)
      throw new DatasetFormatError(
        source,
        `record ${JSON.stringify(id)} is not in the train split of ${JSON.stringify(dataset.name)}`,
      );
    if (r.label !== label) {
      throw new DatasetFormatError(
        source,
        `record ${JSON.stringify(id)} has label ${label} in the manifest but ${r.label} in the dataset`,
      );
    }
    keep.add(r);
  }
  return { ...dataset, train: dataset.train.filter((r) => keep.has(r)) };
}
