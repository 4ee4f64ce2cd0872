/**
 * Building CUB-LT / Flower-LT style subsets from a balanced dataset.
 *
 * 1. Rank classes by their number of training images, largest first. Ties keep class-id order
 *    (`tieBreak: 'class-id'`, default) or the order in which classes first appear in `dataset.train`
 *    (`'first-appearance'`: what the official code's stable `sorted(label_to_indices.items(),
 *    key=len, reverse=True)` does, its dict being filled in record order). For datasets whose records
 *    are listed class by class the two agree. Ties only decide which of several equally large classes
 *    gets which count; the totals do not depend on them.
 * 2. Class at rank k keeps n_k images (`longTailCounts`).
 * 3. The n_k images are a seeded sample: `Rng.fromSeed(seed).split('long-tail').split(classId)`
 *    samples from the class's records sorted by id. So a class's picks depend only on the seed, its
 *    id, its own records and n_k — not on the listing order or on other classes — and, because
 *    `Rng.sample` is a partial Fisher–Yates shuffle, a smaller n_k picks a prefix of a larger one:
 *    with the same seed the ρ = 100 subset is contained in the ρ = 10 subset.
 *    (The official code uses Python's `random.sample` with the global seed; its picks cannot be
 *    reproduced here, only its counts.)
 * The result keeps the dataset's classes and test split; train holds the picked records in their
 * original order.
 */
import { type Dataset, type DatasetRecord, InvalidArgumentError, Rng } from '@diffmix/core';
import { compareCodePoints, recordsByClass } from '@diffmix/datasets';
import { type LongTailFormula, longTailCounts } from './counts.js';
import { type LongTailManifest, MANIFEST_FORMAT, MANIFEST_VERSION } from './manifest.js';

export type TieBreak = 'class-id' | 'first-appearance';

export interface LongTailOptions {
  /** ρ = n_max / n_min ≥ 1 (100, 20 or 10 in the paper's Table 10). */
  imbalanceFactor: number;
  /** Default `'official'` (the code's N−2 exponent, which reproduces Table 10). */
  formula?: LongTailFormula;
  /** Seed of the per-class samples (integer in [0, 2^53) or string). */
  seed: number | string;
  /** How classes of equal size are ordered; default `'class-id'`. */
  tieBreak?: TieBreak;
  /**
   * When a class has fewer training images than its n_k: `false` (default) throws, as the official
   * code's `random.sample` would; `true` keeps all of that class's images.
   */
  allowFewer?: boolean;
}

export interface LongTailSubset {
  /** The dataset with its train split reduced; classes and test unchanged. */
  dataset: Dataset;
  /** Everything needed to rebuild `dataset` from the full one (`applyLongTailManifest`). */
  manifest: LongTailManifest;
  /** Images per class in the new train split, indexed by class id. */
  trainCounts: number[];
}

/** Images per class in a split, indexed by class id. */
export function classCounts(dataset: Dataset, split: 'train' | 'test' = 'train'): number[] {
  return recordsByClass(dataset, split).map((r) => r.length);
}

/** Class ids ordered from most to fewest training images (ties: see `TieBreak`). */
export function rankClassesBySize(dataset: Dataset, tieBreak: TieBreak = 'class-id'): number[] {
  if (tieBreak !== 'class-id' && tieBreak !== 'first-appearance') {
    throw new InvalidArgumentError('tieBreak', `must be 'class-id' or 'first-appearance', got ${JSON.stringify(tieBreak)}`);
  }
  const counts = classCounts(dataset);
  let order = dataset.classes.map((_, id) => id);
  if (tieBreak === 'first-appearance') {
    const seen = new Set<number>();
    const appearance: number[] = [];
    for (const r of dataset.train) {
      if (!seen.has(r.label)) {
        seen.add(r.label);
        appearance.push(r.label);
      }
    }
    // Classes without training images never appear; they go last in class-id order.
    order = [...appearance, ...order.filter((id) => !seen.has(id))];
  }
  // Array.prototype.sort is stable (ES2019), like Python's sorted(..., reverse=True).
  return order.sort((a, b) => (counts[b] as number) - (counts[a] as number));
}

/** The long-tailed version of `dataset` (see the module comment), with its manifest. */
export function makeLongTail(dataset: Dataset, options: LongTailOptions): LongTailSubset {
  const formula = options.formula ?? 'official';
  const tieBreak = options.tieBreak ?? 'class-id';
  const allowFewer = options.allowFewer ?? false;
  if (typeof options.seed !== 'number' && typeof options.seed !== 'string') {
    throw new InvalidArgumentError('seed', `must be a number or a string, got ${typeof options.seed}`);
  }
  const root = Rng.fromSeed(options.seed).split('long-tail');
  const numClasses = dataset.classes.length;
  dataset.classes.forEach((c, i) => {
    if (c.id !== i) throw new InvalidArgumentError('dataset', `classes[${i}] has id ${c.id}; ids must be 0..N−1 in order`);
  });
  const ids = new Set<string>();
  for (const r of dataset.train) {
    if (ids.has(r.id)) {
      throw new InvalidArgumentError('dataset', `train split lists record id ${JSON.stringify(r.id)} twice; ids must be unique`);
    }
    ids.add(r.id);
  }
  const targets = longTailCounts({
    numClasses,
    totalImages: dataset.train.length,
    imbalanceFactor: options.imbalanceFactor,
    formula,
  });
  const byClass = recordsByClass(dataset);
  const ranking = rankClassesBySize(dataset, tieBreak);

  const short: string[] = [];
  ranking.forEach((classId, rank) => {
    const have = byClass[classId]?.length ?? 0;
    const want = targets[rank] as number;
    if (have < want)
      short.push(`${JSON.stringify(dataset.classes[classId]?.name)} (id ${classId}, rank ${rank}): ${have} < ${want}`);
  });
  if (short.length > 0 && !allowFewer) {
    throw new InvalidArgumentError(
      'dataset',
      `${short.length} class(es) have fewer training images than the long-tail count: ${short.slice(0, 5).join(', ')}${short.length > 5 ? ', …' : ''} (pass allowFewer: true to keep them whole)`,
    );
  }

  const picked = new Set<DatasetRecord>();
  const rankOf = new Array<number>(numClasses);
  const targetOf = new Array<number>(numClasses);
  ranking.forEach((classId, rank) => {
    rankOf[classId] = rank;
    targetOf[classId] = targets[rank] as number;
    const pool = (byClass[classId] ?? []).slice().sort((a, b) => compareCodePoints(a.id, b.id));
    const want = targets[rank] as number;
    const chosen = pool.length <= want ? pool : root.split(classId).sample(pool, want);
    for (const r of chosen) picked.add(r);
  });

  const train = dataset.train.filter((r) => picked.has(r));
  const subset: Dataset = { ...dataset, train };
  const trainCounts = classCounts(subset);
  const manifest: LongTailManifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    dataset: { name: dataset.name, numClasses, trainImages: dataset.train.length },
    parameters: {
      imbalanceFactor: options.imbalanceFactor,
      formula,
      seed: options.seed,
      tieBreak,
      allowFewer,
      meanPerClass: dataset.train.length / numClasses,
    },
    total: train.length,
    classes: dataset.classes.map((c) => ({
      id: c.id,
      name: c.name,
      rank: rankOf[c.id] as number,
      available: byClass[c.id]?.length ?? 0,
      target: targetOf[c.id] as number,
      count: trainCounts[c.id] as number,
    })),
    records: train.map((r) => ({ id: r.id, label: r.label })),
  };
  return { dataset: subset, manifest, trainCounts };
}
