/**
 * Seeded k-shot subsets of a dataset's training split.
 *
 * For class c the picks come from `Rng.fromSeed(seed).split('few-shot').split(c)`, sampled from that
 * class's training records sorted by record id. So the picks of a class depend only on the seed,
 * the class id and that class's own records: adding a class, reordering the listing or changing
 * another class's images leaves them unchanged, and re-running gives the same subset.
 */
import { type Dataset, type DatasetRecord, InvalidArgumentError, Rng } from '@diffmix/core';
import { compareCodePoints } from '../adapters/imagefolder/index.js';

export interface FewShotOptions {
  /** Images per class, a positive integer. */
  shots: number;
  /** Seed for the per-class draws (integer in [0, 2^53), bigint or string). */
  seed: number | bigint | string;
  /** Keep every image of a class that has fewer than `shots` instead of throwing. Default false. */
  allowFewer?: boolean;
}

/** The records of a split grouped by class id (index = class id). Throws on labels outside the class list. */
export function recordsByClass(dataset: Dataset, split: 'train' | 'test' = 'train'): DatasetRecord[][] {
  const out: DatasetRecord[][] = dataset.classes.map(() => []);
  for (const r of dataset[split]) {
    const bucket = Number.isInteger(r.label) ? out[r.label] : undefined;
    if (!bucket) {
      throw new InvalidArgumentError(
        'dataset',
        `${split} record ${JSON.stringify(r.id)} has label ${r.label}, outside 0..${dataset.classes.length - 1}`,
      );
    }
    bucket.push(r);
  }
  return out;
}

/**
 * A copy of `dataset` whose train split holds `shots` images per class (seeded, see the module
 * comment), in the dataset's original order; the test split is unchanged. Throws
 * `InvalidArgumentError` listing every class with fewer than `shots` images unless `allowFewer`.
 */
export function fewShot(dataset: Dataset, options: FewShotOptions): Dataset {
  const { shots, allowFewer = false } = options;
  if (!Number.isSafeInteger(shots) || shots < 1)
    throw new InvalidArgumentError('shots', `must be a positive integer, got ${shots}`);
  const root = Rng.fromSeed(options.seed).split('few-shot');
  const byClass = recordsByClass(dataset);
  const short = dataset.classes.filter((c) => (byClass[c.id]?.length ?? 0) < shots);
  if (short.length > 0 && !allowFewer) {
    const list = short
      .slice(0, 5)
      .map((c) => `${JSON.stringify(c.name)} (id ${c.id}): ${byClass[c.id]?.length ?? 0}`)
      .join(', ');
    throw new InvalidArgumentError(
      'shots',
      `${short.length} class(es) have fewer than ${shots} training images: ${list}${short.length > 5 ? ', …' : ''} (pass allowFewer: true to keep them whole)`,
    );
  }
  const picked = new Set<DatasetRecord>();
  for (const c of dataset.classes) {
    const pool = (byClass[c.id] ?? []).slice().sort((a, b) => compareCodePoints(a.id, b.id));
    const chosen = pool.length <= shots ? pool : root.split(c.id).sample(pool, shots);
    for (const r of chosen) picked.add(r);
  }
  return { ...dataset, train: dataset.train.filter((r) => picked.has(r)) };
}
