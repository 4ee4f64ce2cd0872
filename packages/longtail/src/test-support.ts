/** Helpers shared by the tests (not exported from the package). */
import type { Dataset, DatasetRecord } from '@diffmix/core';

/** A dataset with `sizes[c]` training and `testPerClass` test records for class c, listed class by class. */
export function fakeDataset(sizes: readonly number[], options: { testPerClass?: number; name?: string } = {}): Dataset {
  const train: DatasetRecord[] = [];
  const test: DatasetRecord[] = [];
  sizes.forEach((n, c) => {
    for (let i = 0; i < n; i++)
      train.push({
        id: `c${String(c).padStart(3, '0')}/img_${String(i).padStart(4, '0')}.jpg`,
        path: `/x/${c}/${i}.jpg`,
        label: c,
      });
    for (let i = 0; i < (options.testPerClass ?? 2); i++)
      test.push({ id: `test/c${c}/${i}.jpg`, path: `/t/${c}/${i}.jpg`, label: c });
  });
  return {
    name: options.name ?? 'fake',
    metaclass: 'bird',
    classes: sizes.map((_, id) => ({ id, name: `class ${id}` })),
    train,
    test,
  };
}

/**
 * Upper quantile of the chi-square distribution with `df` degrees of freedom at standard-normal
 * score `z` (Wilson–Hilferty; accurate to a few percent for df ≥ 3). z = 4.265 ↔ p = 1e-5.
 */
export function chiSquareQuantile(df: number, z = 4.265): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

export function chiSquare(observed: readonly number[], expected: readonly number[]): number {
  let s = 0;
  observed.forEach((o, i) => {
    const e = expected[i] as number;
    if (e > 0) s += (o - e) ** 2 / e;
  });
  return s;
}
