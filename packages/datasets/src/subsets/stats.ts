/** Per-class image counts and how unbalanced they are. */
import type { Dataset } from '@diffmix/core';
import { recordsByClass } from './few-shot.js';

export interface ClassCount {
  id: number;
  name: string;
  train: number;
  test: number;
}

export interface SplitStats {
  /** Number of records in the split. */
  total: number;
  /** Fewest / most images any class has (0 when a class has none). */
  min: number;
  max: number;
  /** Mean images per class (total / number of classes). */
  mean: number;
  /** max / min; `Infinity` when some class has no image, `NaN` for an empty split. */
  imbalanceRatio: number;
}

export interface ClassStats {
  classes: ClassCount[];
  train: SplitStats;
  test: SplitStats;
}

function summarize(counts: number[]): SplitStats {
  const total = counts.reduce((a, b) => a + b, 0);
  if (counts.length === 0) return { total, min: 0, max: 0, mean: 0, imbalanceRatio: Number.NaN };
  const min = Math.min(...counts);
  const max = Math.max(...counts);
  return {
    total,
    min,
    max,
    mean: total / counts.length,
    imbalanceRatio: total === 0 ? Number.NaN : min === 0 ? Number.POSITIVE_INFINITY : max / min,
  };
}

/** Counts per class for train and test, with min/max/mean and the imbalance ratio max/min. */
export function classStats(dataset: Dataset): ClassStats {
  const train = recordsByClass(dataset, 'train').map((r) => r.length);
  const test = recordsByClass(dataset, 'test').map((r) => r.length);
  return {
    classes: dataset.classes.map((c, i) => ({ id: c.id, name: c.name, train: train[i] ?? 0, test: test[i] ?? 0 })),
    train: summarize(train),
    test: summarize(test),
  };
}
