/** Statistics and fixtures shared by the strategy and sampler tests (not exported from the package). */
import type { ClassInfo, Dataset, DatasetRecord } from '@diffmix/core';

/** Pearson's chi-square statistic of observed counts against expected counts. */
export function chiSquare(observed: readonly number[], expected: readonly number[]): number {
  let x = 0;
  observed.forEach((o, i) => {
    const e = expected[i] as number;
    x += ((o - e) * (o - e)) / e;
  });
  return x;
}

/**
 * Upper critical values of the chi-square distribution at p = 0.001 by degrees of freedom (tables).
 * A deterministic plan that fails this would be a 1-in-1000 draw if the rule were right.
 */
export const CHI2_CRITICAL_0_001: Record<number, number> = {
  1: 10.828,
  2: 13.816,
  3: 16.266,
  4: 18.467,
  5: 20.515,
  6: 22.458,
  7: 24.322,
  8: 26.124,
  9: 27.877,
  11: 31.264,
  19: 43.82,
};

export function counts(values: readonly number[], k: number): number[] {
  const out = new Array<number>(k).fill(0);
  for (const v of values) out[v] = (out[v] as number) + 1;
  return out;
}

/** A dataset of `sizes[c]` path records per class (no image files: planning never reads pixels). */
export function fakeDataset(sizes: readonly number[], metaclass = 'bird'): Dataset {
  const classes: ClassInfo[] = sizes.map((_, id) => ({ id, name: `Class ${id} name` }));
  const train: DatasetRecord[] = [];
  sizes.forEach((n, c) => {
    for (let i = 0; i < n; i++)
      train.push({ id: `train/c${c}/${String(i).padStart(4, '0')}.jpg`, label: c, path: `/nonexistent/c${c}/${i}.jpg` });
  });
  return { name: 'fake', metaclass, classes, train, test: [] };
}
